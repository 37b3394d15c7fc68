"""The money checks on unreadable and unencodable JSON, with the standard library's json alone.

Where orjson and msgspec cannot be installed (PyPy), the client reads and writes JSON with the
standard library. Those checks run again here in a fresh interpreter in which neither package
can be imported, so they exercise the client's real fallback, not a patched one.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKS = [
    "tests/test_money.py::test_unreadable_answers_are_our_errors",
    "tests/test_money.py::test_what_cannot_be_encoded_is_refused_before_anything_counts",
    "tests/test_money.py::test_an_unusable_200_says_what_was_wrong",
]
WITHOUT_C_PARSERS = """
import sys
sys.modules["orjson"] = sys.modules["msgspec"] = None  # "import orjson" fails, as on PyPy
import pytest
code = pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]])
assert sys.modules["orjson"] is None and sys.modules["msgspec"] is None, "C parsers loaded"
sys.exit(code)
"""


def test_the_money_checks_hold_with_the_standard_librarys_json() -> None:
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", WITHOUT_C_PARSERS, *CHECKS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
