"""``python -m bench`` (bench/__main__.py): without the bench extra it names the install, not a traceback.

Each check runs ``python -m bench --help`` in a child process in which one
module is made unimportable (``sys.modules[name] = None``, which makes
``import name`` raise ModuleNotFoundError), as on an install without the extra.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def bench_help_without(module: str) -> subprocess.CompletedProcess[str]:
    code = (
        f"import runpy, sys; sys.modules[{module!r}] = None; sys.argv = ['bench', '--help']; "
        "runpy.run_module('bench', run_name='__main__', alter_sys=True)"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("module", ["uvloop", "picows", "websockets"])
def test_without_the_extra_it_prints_the_install_line(module: str) -> None:
    done = bench_help_without(module)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr
    assert f"python -m bench needs the bench extra, and {module} is not installed" in done.stderr
    assert "scripts/uv sync --locked --extra bench" in done.stderr
    assert done.stdout == ""


def test_the_extra_it_names_is_the_one_pyproject_defines() -> None:
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    done = bench_help_without("uvloop")
    assert "--extra bench" in done.stderr
    assert "uvloop" in " ".join(extras["bench"])


def test_a_missing_module_of_the_project_itself_is_not_taken_for_a_missing_extra() -> None:
    done = bench_help_without("bench.loadgen")
    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert "ModuleNotFoundError" in done.stderr
    assert "bench extra" not in done.stderr


def test_with_the_extra_help_is_argparse_s() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--help"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m bench")
