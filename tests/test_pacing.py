"""Pacing decisions with an injected clock: no sleeping."""

from __future__ import annotations

import pytest

from leat_async._api.answers import RateInfo
from leat_async._http.pacing import RESET_MARGIN, LocalRateState, ServerBudget, SlidingWindow


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_sliding_window_never_exceeds_the_cap_even_after_idle() -> None:
    w = SlidingWindow(limit=3, period=1.0)
    sends: list[float] = []
    t = 0.0
    while t < 5.0:  # a greedy sender that sends whenever allowed
        wait = w.wait(t)
        if wait == 0:
            w.record(t)
            sends.append(t)
        else:
            t += wait
            continue
        t += 0.001 if len(sends) % 7 else 1.7  # bursts and idles
    for s in sends:
        assert sum(1 for x in sends if s <= x < s + 1.0) <= 3


def test_rate_limit_caps_admissions() -> None:
    clock = Clock()
    state = LocalRateState(clock=clock)
    admitted = [state.admit_sync(rate_limit=5, inflight=0)[0] for _ in range(7)]
    assert admitted[:5] == [0.0] * 5
    # the cap holds over 1 + margin seconds, so jitter cannot squeeze 6 into a second
    assert admitted[5] == pytest.approx(1.05) and admitted[6] == pytest.approx(1.05)
    clock.t += 1.05
    assert state.admit_sync(rate_limit=5, inflight=0)[0] == 0.0


def test_pause_holds_every_request() -> None:
    clock = Clock()
    state = LocalRateState(clock=clock)
    state.pause_sync(2.0)
    wait, _ = state.admit_sync(rate_limit=None, inflight=0)
    assert wait >= 2.0
    clock.t += 2.0 + RESET_MARGIN
    assert state.admit_sync(rate_limit=None, inflight=0)[0] == 0.0


def test_budget_counts_inflight_against_remaining() -> None:
    b = ServerBudget()
    b.on_answer(RateInfo(limit=10, remaining=3), sent_at=0.0, now=0.01, others=2)
    assert b.tokens == 1
    assert b.wait(0.02, inflight=2) == 0.0
    b.on_send()
    # spent, window end unknown: only a lone probe may go
    assert b.wait(0.03, inflight=3) > 0
    assert b.wait(0.03, inflight=0) == 0.0


def test_budget_learns_the_window_from_a_429_and_then_waits_it_out() -> None:
    b = ServerBudget()
    # a fresh window: the first answer says 9 of 10 left
    b.on_answer(RateInfo(limit=10, remaining=9), sent_at=0.0, now=0.02, others=0)
    assert b.window_start == 0.01
    # 0.4 s into the window, a 429 asks for 1 s (Laravel rounds up): the window is 1 s
    b.on_refused(1.0, now=0.4)
    assert b.window == 1.0
    assert b.wait(0.5, inflight=0) > 0.8
    # after the reset the budget refills; the next window's start fixes its end
    assert b.wait(1.45, inflight=0) == 0.0
    b.on_answer(RateInfo(limit=10, remaining=9), sent_at=1.45, now=1.47, others=0)
    assert b.reset_at is not None and abs(b.reset_at - (1.46 + 1.0 + RESET_MARGIN)) < 1e-9
    for _ in range(9):
        b.on_send()
    assert b.wait(1.6, inflight=0) > 0.8  # spent: wait for the known end, no probe


async def test_unsend_gives_the_slot_back() -> None:
    clock = Clock()
    state = LocalRateState(clock=clock)
    _, at = state.admit_sync(rate_limit=1, inflight=0)
    assert state.admit_sync(rate_limit=1, inflight=0)[0] > 0
    await state.unsend(at)
    assert state.admit_sync(rate_limit=1, inflight=0)[0] == 0.0


def test_a_429_right_after_a_whole_second_teaches_nothing() -> None:
    b = ServerBudget()
    b.on_answer(RateInfo(limit=20, remaining=19), sent_at=0.0, now=0.002, others=0)
    # the cap let the 21st go just as our clock passed 1 s; the server's window had not rolled
    # over yet and Laravel rounds the remaining few ms up to "Retry-After: 1"
    b.on_refused(1.0, now=1.004)
    assert b.window is None  # not a 2-second window
    assert b.wait(1.5, inflight=0) > 0.5  # the pause itself is still honoured


def test_the_latest_clear_lesson_replaces_an_earlier_one() -> None:
    b = ServerBudget()
    b.on_answer(RateInfo(limit=5, remaining=4), sent_at=0.0, now=0.002, others=0)
    b.on_refused(2.0, now=0.5)  # says 2 s
    assert b.window == 2.0
    b.on_answer(RateInfo(limit=5, remaining=4), sent_at=3.0, now=3.002, others=0)
    b.on_refused(1.0, now=3.4)  # a later, clear lesson: 1 s
    assert b.window == 1.0
