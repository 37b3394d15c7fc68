"""The server's clock as the client learns it from ``Date``: a lower bound, never ahead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from hypothesis import given
from hypothesis import strategies as st

from leat_async._http.clock import ServerClock

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def date_header(when: datetime) -> str:
    return format_datetime(when.replace(microsecond=0), usegmt=True)


def test_unknown_until_an_answer_with_a_date() -> None:
    clock = ServerClock(monotonic=Monotonic())
    assert clock.now() is None and clock.snapshot() is None
    clock.observe(None)
    clock.observe("not a date")
    assert clock.snapshot() is None


def test_the_snapshot_is_a_whole_second_the_server_has_left() -> None:
    mono = Monotonic()
    clock = ServerClock(monotonic=mono, drift=0.0)
    clock.observe(date_header(T0))  # stamped somewhere in 12:00:00.000-12:00:00.999
    assert clock.snapshot() == T0  # rows of 11:59:59 and before are final
    mono.now += 0.9
    assert clock.snapshot() == T0
    mono.now += 0.2  # 1.1 s after an answer stamped at 12:00:00 at the earliest
    assert clock.snapshot() == T0 + timedelta(seconds=1)


def test_the_tightest_recent_answer_counts() -> None:
    mono = Monotonic()
    clock = ServerClock(monotonic=mono, drift=0.0)
    clock.observe(date_header(T0))
    mono.now += 0.5
    clock.observe(date_header(T0 + timedelta(seconds=1)))  # the server was 0.5 s further on
    assert clock.now() == T0 + timedelta(seconds=1)
    mono.now += 0.25
    clock.observe(date_header(T0 + timedelta(seconds=1)))  # the same text again: nothing new
    clock.observe(date_header(T0))  # a slower answer (say, from a queue): a looser bound
    assert clock.now() == T0 + timedelta(seconds=1.25)


def test_an_old_answer_is_not_trusted_for_ever() -> None:
    mono = Monotonic()
    clock = ServerClock(monotonic=mono, max_age=60.0, drift=0.0)
    clock.observe(date_header(T0))
    mono.now += 61
    assert clock.now() is None  # the walk will learn the clock again from its first page
    clock.observe(date_header(T0 + timedelta(seconds=30)))  # a server clock set back: believed
    assert clock.snapshot() == T0 + timedelta(seconds=30)


def test_a_newer_looser_answer_takes_over_when_the_best_expires() -> None:
    mono = Monotonic()
    clock = ServerClock(monotonic=mono, max_age=60.0, drift=0.0)
    clock.observe(date_header(T0))
    mono.now += 50
    clock.observe(date_header(T0 + timedelta(seconds=49)))  # one second looser: kept aside
    assert clock.now() == T0 + timedelta(seconds=50)
    mono.now += 20  # the first answer is 70 s old, the second 20 s
    assert clock.now() == T0 + timedelta(seconds=69)


def test_local_time_counts_at_a_discount_for_drift() -> None:
    mono = Monotonic()
    clock = ServerClock(monotonic=mono, drift=1e-3)
    clock.observe(date_header(T0))
    mono.now += 200
    assert clock.now() == T0 + timedelta(seconds=199.8)


@given(
    server_rate=st.floats(min_value=0.9995, max_value=1.002),
    answers=st.lists(
        st.tuples(st.floats(0, 120), st.floats(0, 2)),  # (stamped at, then in flight for)
        min_size=1,
        max_size=20,
    ),
    start_fraction=st.floats(0, 0.999),
)
def test_never_ahead_of_the_server(
    server_rate: float, answers: list[tuple[float, float]], start_fraction: float
) -> None:
    """Whatever the latencies, and with the two clocks' rates up to 500 ppm apart."""
    mono = Monotonic()
    base = mono.now
    clock = ServerClock(monotonic=mono)

    def server_at(local: float) -> datetime:
        return T0 + timedelta(seconds=start_fraction + (local - base) * server_rate)

    arrivals = sorted((stamp + flight, stamp) for stamp, flight in answers)
    checks = [arrival + later for arrival, _ in arrivals for later in (0.0, 0.5, 3.0, 250.0)]
    timeline = sorted([(t, 1, 0.0) for t in checks] + [(a, 0, s) for a, s in arrivals])
    for at, is_check, stamp in timeline:  # local time only moves forward
        mono.now = base + at
        if not is_check:
            clock.observe(date_header(server_at(base + stamp)))
            continue
        now, snapshot = clock.now(), clock.snapshot()
        assert now is not None and now <= server_at(mono.now)
        assert snapshot is not None and snapshot <= server_at(mono.now)
