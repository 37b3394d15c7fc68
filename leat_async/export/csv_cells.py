"""CSV that any reader gets back and no spreadsheet executes.

- RFC 4180: records end in CRLF and a field holding a comma, a quote, CR or LF is quoted. The
  ``csv`` module quotes only the characters of its own line terminator, so the terminator must
  hold both CR and LF for a lone CR inside a field to be quoted.
- CSV injection (OWASP): a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a CR is
  written with a leading ``'``, which spreadsheets show as text instead of running it. A text
  that itself starts with ``'`` gets one more, so :func:`unprotect` (drop one leading ``'``)
  gives back the exact text in every case. Only text columns go through it: numbers are never
  touched (``-1250`` stays a number).
"""

from __future__ import annotations

from typing import Final

__all__ = ["LINE_END", "RISKY_STARTS", "protect", "unprotect"]

LINE_END: Final = "\r\n"
#: first characters that make a spreadsheet read a cell as a formula
RISKY_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
_QUOTED_STARTS: Final = frozenset([*RISKY_STARTS, "'"])


def protect(text: str) -> str:
    """The cell to write for ``text``: a leading ``'`` when a spreadsheet could execute it."""
    return "'" + text if text and text[0] in _QUOTED_STARTS else text


def unprotect(cell: str) -> str:
    """The text a cell written by :func:`protect` holds."""
    return cell[1:] if cell[:1] == "'" else cell
