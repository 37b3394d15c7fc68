"""Input checks made before anything is sent (CreatedAt and friends, as pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leat_async import CreatedAt

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_created_at_query_is_iso_8601() -> None:
    q = CreatedAt(gte=T0, lt=T0 + timedelta(days=1)).query()
    assert q == [
        ("created_at[gte]", "2024-01-01T00:00:00+00:00"),
        ("created_at[lt]", "2024-01-02T00:00:00+00:00"),
    ]


def test_naive_datetime_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CreatedAt(gte=datetime(2024, 1, 1))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"gt": T0, "gte": T0},
        {"lt": T0, "lte": T0},
        {"gte": T0, "lt": T0},
        {"gt": T0, "lte": T0},
        {"gte": T0 + timedelta(seconds=1), "lte": T0},
    ],
)
def test_ranges_that_hold_nothing_or_double_bounds(kwargs: dict[str, datetime]) -> None:
    with pytest.raises(ValueError, match="created_at"):
        CreatedAt(**kwargs)


def test_single_instant_range_is_allowed() -> None:
    assert CreatedAt(gte=T0, lte=T0).contains(T0)


@given(
    a=st.datetimes(timezones=st.just(UTC)),
    b=st.datetimes(timezones=st.just(UTC)),
    probe=st.datetimes(timezones=st.just(UTC)),
)
def test_contains_agrees_with_the_bounds(a: datetime, b: datetime, probe: datetime) -> None:
    low, high = min(a, b), max(a, b)
    if low == high:
        return
    r = CreatedAt(gte=low, lt=high)
    assert r.contains(probe) == (low <= probe < high)
