"""conformance.versions: what a run stood on, and whether uv.lock pins it."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from conformance.versions import disagreements, installed, locked, normalise

LOCK = """\
version = 1
requires-python = ">=3.11"

[[package]]
name = "Hypercorn"
version = "0.18.0"

[[package]]
name = "numpy"
version = "2.3.0"
resolution-markers = ["python_full_version < '3.12'"]

[[package]]
name = "numpy"
version = "2.4.1"
resolution-markers = ["python_full_version >= '3.12'"]

[[package]]
name = "asgi-ws"
source = { editable = "." }
"""


def test_names_compare_as_pep_503_says() -> None:
    assert normalise("prometheus_client") == "prometheus-client"
    assert normalise("Zope.Interface") == "zope-interface"
    assert normalise("a__b--c") == "a-b-c"


def test_the_lock_gives_every_version_of_every_package(tmp_path: Path) -> None:
    lock = tmp_path / "uv.lock"
    lock.write_text(LOCK)
    assert locked(lock) == {"hypercorn": {"0.18.0"}, "numpy": {"2.3.0", "2.4.1"}}


def test_a_record_agrees_with_any_version_the_lock_pins() -> None:
    pinned = {"hypercorn": {"0.18.0"}, "numpy": {"2.3.0", "2.4.1"}}
    assert disagreements({"Hypercorn": "0.18.0", "numpy": "2.4.1"}, pinned) == {}


def test_a_record_that_the_lock_does_not_pin_is_named_with_both_versions() -> None:
    pinned = {"hypercorn": {"0.18.0"}, "numpy": {"2.3.0", "2.4.1"}}
    found = disagreements({"hypercorn": "0.17.3", "numpy": "2.2.0", "h11": "0.16.0"}, pinned)
    assert found == {
        "hypercorn": "0.17.3 (uv.lock: 0.18.0)",
        "numpy": "2.2.0 (uv.lock: 2.3.0, 2.4.1)",
        "h11": "0.16.0 (not in uv.lock)",
    }


def test_installed_follows_requirements_but_not_extras() -> None:
    # pytest requires pluggy and iniconfig; its "dev" extra (argcomplete, hypothesis, ...) is not followed
    # unless something else brings it in, and pytest itself is named.
    found = installed(["pytest"])
    assert found["pytest"] == metadata.version("pytest")
    assert found["pluggy"] == metadata.version("pluggy")
    assert found["iniconfig"] == metadata.version("iniconfig")
    assert "argcomplete" not in found
    assert list(found) == sorted(found)


def test_installed_skips_what_is_not_installed() -> None:
    assert installed(["no-such-distribution-here"]) == {}
