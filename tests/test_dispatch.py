"""The dispatcher over real HTTP: retries, pauses, money never sent twice, recover, gates."""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import leat_async as la
from leat_async import LeatClient, RetryPolicy
from leat_async.testing import FakeLeat, Fault

from .conftest import FAST_RETRY, TOKEN, charge, posts

CREATE = "/giftcard-transactions"
INTERNAL = {"message": "Interne fout. | Internal error.", "code": 1000, "status_code": 500}


@pytest.fixture
def card(fake: FakeLeat) -> Any:
    return fake.add_card(balance_in_cents=10_000)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
async def test_reads_ride_out_transient_statuses(
    client: LeatClient, fake: FakeLeat, status: int, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="leat_async")
    fake.add_fault(
        Fault(
            method="GET", status=status, body="<html>oops</html>", content_type="text/html", times=2
        )
    )
    page = await client.giftcard_transactions.list()
    assert page.meta.total == 0
    assert len(fake.requests) == 3 and client.stats.retries == 2
    assert f"HTTP {status}" in caplog.text and "retry" in caplog.text


async def test_reads_ride_out_dropped_connections(client: LeatClient, fake: FakeLeat) -> None:
    fake.add_fault(Fault(method="GET", drop=True, times=2))
    assert (await client.giftcard_transactions.list()).meta.total == 0
    assert client.stats.retries >= 1  # aiohttp itself may retry a GET on a reused connection


async def test_reads_give_up_after_max_attempts(fake: FakeLeat) -> None:
    fake.add_fault(Fault(method="GET", drop=True, times=None))
    policy = RetryPolicy(max_attempts=3, backoff_base=0.001)
    async with LeatClient(TOKEN, base_url=fake.url, retry=policy) as c:
        with pytest.raises(la.LeatConnectionError) as info:
            await c.giftcard_transactions.list()
    assert info.value.attempts == 3 and len(fake.requests) >= 3
    assert "3 attempts" in str(info.value)


async def test_read_timeout_is_a_timeout_error(fake: FakeLeat) -> None:
    fake.add_fault(Fault(method="GET", delay=2.0, times=None))
    policy = RetryPolicy(max_attempts=2, backoff_base=0.001)
    async with LeatClient(TOKEN, base_url=fake.url, retry=policy, timeout=0.2) as c:
        with pytest.raises(la.LeatTimeoutError):
            await c.giftcard_transactions.list()


@pytest.mark.parametrize(
    "fault",
    [
        Fault(method="POST", status=502, body="<html>Bad gateway</html>", content_type="text/html"),
        Fault(method="POST", status=504, body=""),
        Fault(method="POST", status=500, body="Server Error", content_type="text/plain"),
        Fault(method="POST", drop=True, when="before"),
        Fault(method="POST", drop=True, when="after"),
        Fault(method="POST", status=200, body="not json", when="after"),
        # gateways answer JSON with a "message" too: that proves nothing
        Fault(method="POST", status=504, body={"message": "The upstream server is timing out"}),
        Fault(method="POST", status=502, body={"message": "Bad gateway", "code": 1000}),
        Fault(method="POST", status=500, body={"message": "Server Error"}, when="after"),
        # a 5xx is never proof, whatever its body: PHP can fail after the charge was written
        Fault(method="POST", status=500, body=INTERNAL, when="after"),
        Fault(method="POST", status=500, body=INTERNAL),
        Fault(method="POST", status=504, body={"message": "Timeout", "code": 1000}),
    ],
)
async def test_money_post_is_never_resent(
    client: LeatClient, fake: FakeLeat, card: Any, shop: Any, fault: Fault
) -> None:
    fake.add_fault(fault)
    with pytest.raises(la.OutcomeUnknownError) as info:
        await charge(client, card, shop)
    err = info.value
    assert posts(fake) == 1
    assert err.operation == "create" and err.sent["amount_in_cents"] == -500
    assert err.sent["giftcard_uuid"] == card.uuid and err.deadline > err.sent_at
    assert "recover()" in str(err) and TOKEN not in str(err)
    assert client.stats.outcome_unknown == 1


async def test_money_post_4xx_leat_error_body_is_that_error(
    client: LeatClient, fake: FakeLeat, card: Any, shop: Any
) -> None:
    fake.add_fault(Fault(method="POST", status=400, body={"message": "Nee | No", "code": 7015}))
    with pytest.raises(la.LeatAPIError) as info:
        await charge(client, card, shop)
    assert not isinstance(info.value, la.OutcomeUnknownError) and info.value.code == 7015
    assert posts(fake) == 1 and fake.transactions == []


@pytest.mark.parametrize("operation", ["create", "reverse"])
async def test_a_500_after_the_charge_landed_is_unknown_and_recovered(
    client: LeatClient, fake: FakeLeat, card: Any, shop: Any, operation: str
) -> None:
    gtx = client.giftcard_transactions
    original = await charge(client, card, shop)
    fake.add_fault(Fault(method="POST", status=500, body=INTERNAL, when="after"))
    again = charge(client, card, shop) if operation == "create" else gtx.reverse(original.uuid)
    with pytest.raises(la.OutcomeUnknownError) as info:
        await again
    err = info.value
    assert err.status == 500 and "Internal error" in str(err) and "recover()" in str(err)
    assert posts(fake) == 2 and len(fake.transactions) == 2  # landed, and never sent again
    found = await gtx.recover(err, wait=False)
    assert found is not None and found.uuid == fake.transactions[-1].uuid
    assert card.balance_in_cents == (9_000 if operation == "create" else 10_000)


async def test_a_maintenance_503_with_a_leat_body_is_refused_and_retried(
    client: LeatClient, fake: FakeLeat, card: Any, shop: Any
) -> None:
    body = {"message": "Onderhoud | Maintenance", "code": 503}
    fake.add_fault(Fault(method="POST", status=503, body=body, headers={"Retry-After": "0"}))
    tx = await charge(client, card, shop)
    assert posts(fake) == 2 and [t.uuid for t in fake.transactions] == [tx.uuid]


@pytest.mark.parametrize(
    "fault",
    [
        Fault(
            method="POST",
            status=429,
            headers={"Retry-After": "0"},
            body={"message": "Too Many Attempts."},
        ),
        Fault(
            method="POST",
            status=503,
            headers={"Retry-After": "0"},
            body="<html>maintenance</html>",
            content_type="text/html",
        ),
    ],
)
async def test_money_post_retried_when_provably_unprocessed(
    client: LeatClient, fake: FakeLeat, card: Any, shop: Any, fault: Fault
) -> None:
    fake.add_fault(fault)
    tx = await charge(client, card, shop)
    assert posts(fake) == 2 and [t.uuid for t in fake.transactions] == [tx.uuid]
    assert client.stats.pauses == 1


async def test_money_post_connect_refused_sends_nothing() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    policy = RetryPolicy(max_attempts=2, backoff_base=0.001)
    async with LeatClient(TOKEN, base_url=f"http://127.0.0.1:{port}", retry=policy) as c:
        with pytest.raises(la.LeatConnectionError) as info:
            await c.giftcard_transactions.create(
                giftcard_uuid="c", amount_in_cents=-1, shop_uuid="s"
            )
    assert not isinstance(info.value, la.OutcomeUnknownError)
    assert info.value.attempts == 2


async def test_recover_finds_a_charge_whose_answer_was_lost(
    client: LeatClient, fake: FakeLeat, card: Any, shop: Any
) -> None:
    other = fake.add_card(balance_in_cents=10_000)
    await charge(client, other, shop)  # same amount, other card: must not be mistaken for ours
    fake.add_fault(Fault(method="POST", drop=True, when="after"))
    with pytest.raises(la.OutcomeUnknownError) as info:
        await charge(client, card, shop)
    started = datetime.now(UTC)
    found = await client.giftcard_transactions.recover(info.value)
    # found at once, in the very second it was made: no waiting out the 5 s deadline
    assert datetime.now(UTC) < info.value.deadline
    assert (datetime.now(UTC) - started).total_seconds() < 2.0
    assert found is not None and found.card.uuid == card.uuid and found.amount_in_cents == -500
    assert found.uuid == fake.transactions[-1].uuid
    assert card.balance_in_cents == 9_500


async def test_recover_says_none_only_after_the_deadline(
    fake: FakeLeat, card: Any, shop: Any
) -> None:
    async with LeatClient(TOKEN, base_url=fake.url, timeout=0.3, landing_horizon=0.5) as client:
        await charge(client, card, shop)  # an identical earlier charge by this client
        fake.add_fault(Fault(method="POST", drop=True, when="before"))
        with pytest.raises(la.OutcomeUnknownError) as info:
            await charge(client, card, shop)
        assert await client.giftcard_transactions.recover(info.value, margin=0.2) is None
        # it answered only once the lost request could no longer land
        assert datetime.now(UTC) >= info.value.deadline + timedelta(seconds=0.2)


async def test_recover_waits_for_a_request_that_lands_late(
    fake: FakeLeat, card: Any, shop: Any
) -> None:
    fake.add_fault(Fault(method="POST", delay=0.8))  # held 0.8 s before it is processed
    async with LeatClient(TOKEN, base_url=fake.url, timeout=0.3, landing_horizon=1.0) as client:
        with pytest.raises(la.OutcomeUnknownError) as info:
            await charge(client, card, shop)
        assert fake.transactions == []  # nothing yet when the client gave up
        found = await client.giftcard_transactions.recover(info.value, margin=1.0)
    assert found is not None and found.uuid == fake.transactions[0].uuid


async def test_a_401_on_a_charge_is_a_refusal_not_an_unknown(
    fake: FakeLeat, card: Any, shop: Any
) -> None:
    async with LeatClient("not-the-token", base_url=fake.url) as client:
        with pytest.raises(la.AuthenticationError):
            await charge(client, card, shop)
    assert fake.transactions == []


async def test_recover_a_lost_reversal(
    client: LeatClient, fake: FakeLeat, card: Any, shop: Any
) -> None:
    tx = await charge(client, card, shop)
    assert tx.uuid
    fake.add_fault(Fault(method="POST", status=504, body="", when="after"))
    with pytest.raises(la.OutcomeUnknownError) as info:
        await client.giftcard_transactions.reverse(tx.uuid)
    assert info.value.operation == "reverse" and info.value.sent == {"uuid": tx.uuid}
    found = await client.giftcard_transactions.recover(info.value)
    assert found is not None and found.amount_in_cents == 500


async def test_long_429_raises_instead_of_sleeping(client: LeatClient, fake: FakeLeat) -> None:
    fake.add_fault(
        Fault(status=429, headers={"Retry-After": "3600"}, body={"message": "Too Many Attempts."})
    )
    with pytest.raises(la.RateLimitedError) as info:
        await client.giftcard_transactions.list()
    assert info.value.retry_after == 3600 and "retry after 3600" in str(info.value)


async def test_429_pauses_every_request_of_the_client(fake: FakeLeat, card: Any, shop: Any) -> None:
    events: list[la.Event] = []
    fake.add_fault(
        Fault(
            method="GET",
            status=429,
            headers={"Retry-After": "1"},
            body={"message": "Too Many Attempts."},
        )
    )
    async with LeatClient(
        TOKEN, base_url=fake.url, retry=FAST_RETRY, on_event=events.append, max_concurrency=1
    ) as c:
        await asyncio.gather(*(c.giftcard_transactions.list() for _ in range(4)))
    assert fake.requests[0].status == 429
    # the refused request and the three queued behind it go only after the pause
    later = [r.at - fake.requests[0].at for r in fake.requests if r.status == 200]
    assert len(later) == 4 and min(later) >= 0.95
    assert any(e.kind == "pause" and e.cause == "HTTP 429" for e in events)


async def test_concurrency_cap() -> None:
    now = peak = 0

    async def start(*_: Any) -> None:
        nonlocal now, peak
        now += 1
        peak = max(peak, now)

    async def end(*_: Any) -> None:
        nonlocal now
        now -= 1

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(start)
    trace.on_request_end.append(end)
    async with (
        FakeLeat(token=TOKEN, latency=0.02) as fake,
        aiohttp.ClientSession(trace_configs=[trace]) as session,
        LeatClient(TOKEN, base_url=fake.url, session=session, max_concurrency=3) as c,
    ):
        await asyncio.gather(*(c.giftcard_transactions.list() for _ in range(12)))
    assert peak == 3 and len(fake.requests) == 12


async def test_client_rate_limit_holds_in_every_second(fake: FakeLeat) -> None:
    async with LeatClient(TOKEN, base_url=fake.url, rate_limit=5) as c:
        await asyncio.gather(*(c.giftcard_transactions.list() for _ in range(11)))
    assert len(fake.requests) == 11
    assert fake.max_in_window(1.0) <= 5


async def test_server_headers_pace_the_client(card: Any, shop: Any) -> None:
    async with FakeLeat(token=TOKEN, rate_limit=6, rate_window=1.0) as server:
        async with LeatClient(TOKEN, base_url=server.url, retry=FAST_RETRY) as c:
            await asyncio.gather(*(c.giftcard_transactions.list() for _ in range(20)))
        assert server.status_counts[200] == 20
        # the first answer tells the budget before any burst; at most a probe learns the window
        assert server.status_counts[429] <= 1
        refused = [r.at for r in server.requests if r.status == 429]
        assert all(at - server.requests[0].at < 1.0 for at in refused)


async def test_cancelled_call_frees_its_slot(fake: FakeLeat) -> None:
    fake.add_fault(Fault(method="GET", query={"page": "7"}, delay=30.0))
    sent = asyncio.Event()

    async def on_sent(*_: Any) -> None:
        sent.set()

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(on_sent)
    async with (
        aiohttp.ClientSession(trace_configs=[trace]) as session,
        LeatClient(TOKEN, base_url=fake.url, session=session, max_concurrency=1) as c,
    ):
        slow = asyncio.ensure_future(c.giftcard_transactions.list(page=7))
        await sent.wait()
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        page = await asyncio.wait_for(c.giftcard_transactions.list(), 2.0)
    assert page.meta.total == 0
    assert c.stats.retries == 0


# -- answers too large to read ------------------------------------------------------------------

SMALL_CAP = 64 * 1024
HUGE = b'{"data": [' + b'"x", ' * 400_000 + b'"x"]}'  # 2 MB: far past the cap, valid JSON


async def test_a_huge_answer_to_a_read_is_refused_unread(fake: FakeLeat) -> None:
    fake.add_fault(Fault(method="GET", status=200, body=HUGE, times=None))
    async with LeatClient(TOKEN, base_url=fake.url, max_answer_bytes=SMALL_CAP) as client:
        with pytest.raises(la.LeatAPIError) as info:
            await client.giftcard_transactions.list()
    assert not isinstance(info.value, la.OutcomeUnknownError)
    assert info.value.status == 200 and f"larger than {SMALL_CAP:,} bytes" in str(info.value)
    assert len(fake.requests) == 1  # a huge answer is not asked for again


async def test_a_huge_answer_to_a_charge_is_an_unknown_outcome_it_landed(
    fake: FakeLeat, card: Any, shop: Any
) -> None:
    fake.add_fault(Fault(method="POST", status=200, body=HUGE, when="after"))
    async with LeatClient(TOKEN, base_url=fake.url, max_answer_bytes=SMALL_CAP) as client:
        with pytest.raises(la.OutcomeUnknownError) as info:
            await charge(client, card, shop)
        assert info.value.status == 200 and "larger than" in str(info.value)
        found = await client.giftcard_transactions.recover(info.value, wait=False)
    assert posts(fake) == 1 and found is not None and found.uuid == fake.transactions[0].uuid


async def test_an_endless_answer_is_cut_off_at_the_cap() -> None:
    """A body that never ends (chunked, no length) is refused once past the cap, not read on."""
    sent = 0

    async def endless(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        chunk = b" " * 65536
        while True:  # until the client goes away
            await response.write(chunk)
            sent += len(chunk)

    app = web.Application()
    app.router.add_get("/{tail:.*}", endless)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with LeatClient(
            TOKEN, base_url=f"http://127.0.0.1:{port}", max_answer_bytes=SMALL_CAP, timeout=30
        ) as client:
            with pytest.raises(la.LeatAPIError, match="larger than"):
                await client.giftcard_transactions.get("abc")
    finally:
        await runner.cleanup()
    assert sent < 64 * SMALL_CAP  # the client stopped reading: the server could not go on


def test_the_answer_cap_is_checked_and_far_above_a_page() -> None:
    for bad in (0, -1, 1.5, True, "1"):
        with pytest.raises((TypeError, ValueError), match="max_answer_bytes"):
            LeatClient(TOKEN, max_answer_bytes=bad)  # type: ignore[arg-type]
    assert la.DEFAULT_MAX_ANSWER_BYTES >= 100 * 100_000  # a 100-row page is ~50 kB
