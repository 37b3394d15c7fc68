"""Users' code type-checks against the public API under mypy and pyright, mistakes do not, and
pyright finds every exported symbol's type known (``--verifytypes``).

The user scripts in ``tests/typing/`` are never run: they only have to type-check. Pyright is
basedpyright from PyPI (it brings its own Node.js: nothing is downloaded when it runs).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "typing"
USER = [HERE / "walks_user.py", HERE / "checkout_user.py"]
MISTAKES = [HERE / "walks_user_errors.py", HERE / "checkout_user_errors.py"]
#: (file, line) of every mistake the checkers must report, and nothing else
EXPECTED = [
    ("checkout_user_errors.py", 9),  # recover(wait="no")
    ("checkout_user_errors.py", 12),  # amount_in_cents="12"
    ("checkout_user_errors.py", 15),  # event.kind == "orphan"
    ("walks_user_errors.py", 9),  # sort="created"
    ("walks_user_errors.py", 11),  # pager.position may be None
]


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # pyright finds the environment to check against as the `python` on PATH: the one running
    # the tests goes first, so that a venv's python finds its packages without being activated
    # (--pythonpath does that too, but --verifytypes ignores it)
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return subprocess.run(  # noqa: S603 - our own tools with fixed arguments
        args, capture_output=True, text=True, check=False, cwd=cwd, env={**os.environ, "PATH": path}
    )


@pytest.mark.timeout(120)
def test_user_code_passes_mypy_strict_and_mistakes_do_not() -> None:
    files = [str(f) for f in USER + MISTAKES]
    run = _run(sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *files)
    errors = re.findall(r"^(.+?\.py):(\d+): error:", run.stdout, re.MULTILINE)
    found = sorted({(Path(file).name, int(line)) for file, line in errors})
    assert found == EXPECTED, run.stdout + run.stderr


def _pyright() -> str:
    exe = shutil.which("basedpyright", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("basedpyright is not installed: pip install -e '.[test]'")
    return exe


@pytest.mark.timeout(120)
def test_user_code_passes_pyright_strict_and_mistakes_do_not(tmp_path: Path) -> None:
    config = {"typeCheckingMode": "strict", "pythonVersion": "3.11"}
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(config))
    files = [str(f) for f in USER + MISTAKES]
    run = _run(_pyright(), "--outputjson", *files, cwd=tmp_path)
    report = json.loads(run.stdout)
    errors = [d for d in report["generalDiagnostics"] if d["severity"] == "error"]
    found = sorted({(Path(d["file"]).name, d["range"]["start"]["line"] + 1) for d in errors})
    assert found == EXPECTED, json.dumps(errors, indent=1)[:4000]


@pytest.mark.timeout(120)
def test_every_public_symbol_has_a_known_type() -> None:
    run = _run(_pyright(), "--verifytypes", "leat_async", "--ignoreexternal", "--outputjson")
    report = json.loads(run.stdout)["typeCompleteness"]
    ambiguous = [s["name"] for s in report["symbols"] if s["isExported"] and not s["isTypeKnown"]]
    assert report["completenessScore"] == 1.0, ambiguous
