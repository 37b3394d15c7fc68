"""Reading a list endpoint's query and laying out a page (pure)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

from ._errors import validation_error

__all__ = [
    "ListQuery",
    "last_page",
    "page_meta",
    "parse_iso_bound_us",
    "parse_list_query",
    "parse_paging",
]

SORTS: Final = ("created_at", "-created_at")
DEFAULT_PER_PAGE: Final = 10
MAX_PER_PAGE: Final = 100
_US: Final = 1_000_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_INT: Final = re.compile(r"-?[0-9]{1,18}")
_ISO: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:(Z)|([+-])(\d{2}):?(\d{2}))"
)
_BOUNDS: Final = ("gt", "gte", "lt", "lte")


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A validated list query. ``lo_ts``/``hi_ts`` are inclusive bounds in whole seconds."""

    per_page: int = DEFAULT_PER_PAGE
    page: int = 1
    giftcard_hash: str | None = None
    program_uuid: str | None = None
    shop_uuid: str | None = None
    sort: str | None = None
    lo_ts: int | None = None
    hi_ts: int | None = None

    @property
    def filters(self) -> tuple[str | None, str | None, str | None]:
        return (self.giftcard_hash, self.program_uuid, self.shop_uuid)


def parse_iso_bound_us(value: str) -> int | None:
    """Microseconds since the epoch of an ISO 8601 datetime with an offset, or None."""
    m = _ISO.fullmatch(value)
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = m.groups()
    try:
        offset = timedelta(hours=int(off_h or 0), minutes=int(off_m or 0))
        if sign == "-":
            offset = -offset
        tz = UTC if zulu else timezone(offset)
        micro = int((frac or "0").ljust(6, "0")[:6])
        dt = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tz
        )
    except ValueError:
        return None
    return (dt - _EPOCH) // timedelta(microseconds=1)


def _int_or_none(value: str) -> int | None:
    return int(value) if _INT.fullmatch(value) else None


def parse_paging(
    q: dict[str, str], errors: dict[str, list[str]], *, size_key: str, default_size: int
) -> tuple[int, int]:
    """The page size (under ``size_key``, 1..100) and page number (>= 1), as Laravel checks them.

    A bad value is added to ``errors`` and its default returned.
    """
    size, page = default_size, 1
    label = "per page" if size_key == "perPage" else size_key
    if size_key in q:
        n = _int_or_none(q[size_key])
        if n is None:
            errors[size_key] = [f"The {label} must be an integer."]
        elif not 1 <= n <= MAX_PER_PAGE:
            errors[size_key] = [f"The {label} must be between 1 and {MAX_PER_PAGE}."]
        else:
            size = n
    if "page" in q:
        n = _int_or_none(q["page"])
        if n is None:
            errors["page"] = ["The page must be an integer."]
        elif n < 1:
            errors["page"] = ["The page must be at least 1."]
        else:
            page = n
    return size, page


def parse_list_query(items: Sequence[tuple[str, str]]) -> ListQuery:
    """Validate the query like Laravel does; a repeated key keeps its last value (PHP)."""
    q = dict(items)
    errors: dict[str, list[str]] = {}
    per_page, page = parse_paging(q, errors, size_key="perPage", default_size=DEFAULT_PER_PAGE)
    sort = q.get("sort")
    if sort is not None and sort not in SORTS:
        errors["sort"] = ["The selected sort is invalid."]
    lo, hi = _created_at_bounds(q, errors)
    if errors:
        raise validation_error(errors)
    return ListQuery(
        per_page=per_page,
        page=page,
        giftcard_hash=q.get("giftcard_hash"),
        program_uuid=q.get("giftcard_program_uuid"),
        shop_uuid=q.get("shop_uuid"),
        sort=sort,
        lo_ts=lo,
        hi_ts=hi,
    )


def _created_at_bounds(
    q: dict[str, str], errors: dict[str, list[str]]
) -> tuple[int | None, int | None]:
    lo: int | None = None
    hi: int | None = None
    for key, value in q.items():
        if not key.startswith("created_at"):
            continue
        op = key[len("created_at") :]
        if not (op.startswith("[") and op.endswith("]") and op[1:-1] in _BOUNDS):
            errors["created_at"] = ["The created at must be an array of gt, gte, lt, lte."]
            continue
        op = op[1:-1]
        us = parse_iso_bound_us(value)
        if us is None:
            errors[f"created_at.{op}"] = [f"The created_at.{op} is not a valid date."]
            continue
        # Rows hold whole seconds: turn each bound into an inclusive whole-second bound.
        floor_s, ceil_s = us // _US, -(-us // _US)
        if op == "gt":
            lo = max(lo, floor_s + 1) if lo is not None else floor_s + 1
        elif op == "gte":
            lo = max(lo, ceil_s) if lo is not None else ceil_s
        elif op == "lt":
            hi = min(hi, ceil_s - 1) if hi is not None else ceil_s - 1
        else:
            hi = min(hi, floor_s) if hi is not None else floor_s
    return lo, hi


def page_meta(*, total: int, per_page: int, page: int, count: int) -> dict[str, Any]:
    """Laravel-style meta; ``viewing_from``/``viewing_to`` are null on an empty page."""
    start = (page - 1) * per_page
    return {
        "page": page,
        "limit": per_page,
        "viewing_from": start + 1 if count else None,
        "viewing_to": start + count if count else None,
        "last_page": last_page(total, per_page),
        "total": total,
    }


def last_page(total: int, per_page: int) -> int:
    """Laravel's last page: at least 1, even when nothing matches."""
    return max(1, -(-total // per_page))
