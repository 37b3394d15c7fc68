"""Pure retry decisions."""

from __future__ import annotations

import math

import aiohttp
import pytest

from leat_async import RetryPolicy
from leat_async._http.retry import Failure, RetryBudget, next_delay
from leat_async._http.transport import Timeouts


def test_full_jitter_is_capped_exponential() -> None:
    p = RetryPolicy(backoff_base=0.5, backoff_cap=8.0)
    assert [p.backoff(n, rand=lambda: 1.0) for n in range(1, 7)] == [0.5, 1, 2, 4, 8, 8]
    assert p.backoff(3, rand=lambda: 0.0) == 0.0
    assert p.backoff(3, rand=lambda: 0.25) == 0.5


@pytest.mark.parametrize("failure", [Failure.TIMEOUT, Failure.DISCONNECTED, Failure.CONNECT])
def test_reads_retry_lost_answers(failure: Failure) -> None:
    assert RetryPolicy().may_retry(idempotent=True, failure=failure)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_reads_retry_transient_statuses(status: int) -> None:
    assert RetryPolicy().may_retry(idempotent=True, failure=Failure.STATUS, status=status)


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_reads_do_not_retry_client_errors(status: int) -> None:
    assert not RetryPolicy().may_retry(idempotent=True, failure=Failure.STATUS, status=status)


def test_money_posts_retry_only_when_provably_unprocessed() -> None:
    p = RetryPolicy()
    post = {"idempotent": False}
    assert p.may_retry(**post, failure=Failure.CONNECT)
    assert p.may_retry(**post, failure=Failure.STATUS, status=429)
    assert p.may_retry(**post, failure=Failure.STATUS, status=503, retry_after=2.0)
    assert not p.may_retry(**post, failure=Failure.STATUS, status=503)
    assert not p.may_retry(**post, failure=Failure.TIMEOUT)
    assert not p.may_retry(**post, failure=Failure.DISCONNECTED)
    for status in (500, 502, 504, 408):
        assert not p.may_retry(**post, failure=Failure.STATUS, status=status)


def test_deadline_stops_retries() -> None:
    p = RetryPolicy(backoff_base=4.0)
    assert next_delay(p, retry=1, left=5.0, rand=lambda: 0.5) == 2.0
    assert next_delay(p, retry=1, left=1.0, rand=lambda: 0.5) is None


def test_budget_limits_retries_to_a_share_of_requests() -> None:
    budget = RetryBudget(ratio=0.5, capacity=2.0)
    assert budget.try_spend() and budget.try_spend()
    assert not budget.try_spend()
    budget.on_request()
    budget.on_request()
    assert budget.try_spend() and not budget.try_spend()


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_an_attempt_opens_its_connection_well_within_its_timeout() -> None:
    t = Timeouts.of(30.0)
    assert (t.total, t.connect) == (30.0, 10.0)
    cut = t.within(left=1.0)  # the deadline leaves one second
    assert cut.total == 1.0 and cut.connect == 0.5 and cut.ceil_threshold == math.inf
    short = Timeouts.of(0.4).within(left=60.0)
    assert short.total == 0.4 and short.connect is not None and short.connect < short.total
    given = Timeouts.of(aiohttp.ClientTimeout(total=20, sock_connect=3, sock_read=7))
    assert (given.total, given.connect, given.sock_read) == (20.0, 3.0, 7)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), True, "5"])
def test_nonsense_timeouts_are_refused(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        Timeouts.of(bad)  # type: ignore[arg-type]
