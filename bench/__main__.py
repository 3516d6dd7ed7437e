"""``python -m bench``: see :mod:`bench.run`; without the bench extra, the line that installs it.

:mod:`bench.run` imports the load generator (picows on uvloop) and the peers'
libraries as it loads, so on an install without the extra even ``--help``
would end in a traceback: this says what to install instead.
"""

import sys

OWN_PACKAGES = ("asgi_ws", "bench", "conformance")  # a module of these missing is a bug, not a missing extra
INSTALL = "scripts/uv sync --locked --extra bench"  # the extra from uv.lock, as the README installs it

try:
    from .run import main
except ModuleNotFoundError as missing:
    package = (missing.name or "").partition(".")[0]
    if not package or package in OWN_PACKAGES:
        raise
    sys.exit(
        f"python -m bench needs the bench extra, and {package} is not installed for {sys.executable}.\n"
        f"Install it from uv.lock with `{INSTALL}`, then run `.venv/bin/python -m bench`; "
        "or `pip install -e '.[bench]'`."
    )

raise SystemExit(main())
