"""A user's walk code type-checks under ``mypy --strict``; typos and unchecked ``None`` do not."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "typing"


@pytest.mark.timeout(120)
def test_user_walk_code_type_checks_and_mistakes_do_not() -> None:
    files = [HERE / "walks_user.py", HERE / "walks_user_errors.py"]
    run = subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    errors = re.findall(r"^(.+?\.py):(\d+): error: .*\[([\w-]+)\]$", run.stdout, re.MULTILINE)
    found = sorted((Path(file).name, int(line), code) for file, line, code in errors)
    assert found == [
        ("walks_user_errors.py", 9, "arg-type"),  # sort="created"
        ("walks_user_errors.py", 11, "union-attr"),  # pager.position may be None
    ], run.stdout + run.stderr
