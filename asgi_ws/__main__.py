"""``python -m asgi_ws serve``: the same as the ``asgi-ws`` command."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
