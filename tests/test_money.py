"""Every charge confirmed, refused or recoverable (issue 9), over real loopback HTTP.

One section per way a charge used to go missing: cancellation, per-call timeouts, connections
never opened, the retry deadline, unreadable answers, concurrent recoveries, late landings,
errors that cross process boundaries, and counts that drift from the wire.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import logging
import pickle
import socket
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import leat_async as la
from leat_async import LeatClient, RateInfo, RetryPolicy
from leat_async._http.pacing import SendLog
from leat_async.testing import FakeLeat, Fault

from .conftest import FAST_RETRY, TOKEN, charge, posts


@pytest.fixture
def card(fake: FakeLeat) -> Any:
    return fake.add_card(balance_in_cents=100_000)


# -- 1. cancellation ----------------------------------------------------------------------------


async def test_a_cancelled_charge_finishes_in_the_background_and_reports(
    fake: FakeLeat, card: Any, shop: Any, caplog: Any
) -> None:
    caplog.set_level(logging.WARNING, logger="leat_async")
    landed, release = asyncio.Event(), asyncio.Event()
    fake.add_fault(Fault(method="POST", when="after", applied=landed, hold=release))
    events: list[la.Event] = []
    client = LeatClient(TOKEN, base_url=fake.url, on_event=events.append)
    checkout = asyncio.ensure_future(charge(client, card, shop, custom_attributes={"o": "42"}))
    await landed.wait()  # the card is charged; its answer is held back
    checkout.cancel()  # the customer went away
    with pytest.raises(asyncio.CancelledError):
        await checkout
    release.set()
    await client.aclose()  # waits for the charge still under way
    (orphan,) = [e for e in events if e.kind == "orphaned"]
    assert isinstance(orphan.outcome, la.GiftcardTransaction)
    assert orphan.outcome.uuid == fake.transactions[0].uuid
    assert orphan.sent is not None and orphan.sent["custom_attributes"] == {"o": "42"}  # order
    assert client.stats.orphaned == 1 and card.balance_in_cents == 99_500
    assert "after its caller was cancelled" in caplog.text and TOKEN not in caplog.text


async def test_a_timed_out_handler_still_learns_of_a_lost_charge(
    fake: FakeLeat, card: Any, shop: Any
) -> None:
    landed, release = asyncio.Event(), asyncio.Event()
    fake.add_fault(Fault(method="POST", when="after", applied=landed, hold=release, drop=True))
    events: list[la.Event] = []
    async with LeatClient(TOKEN, base_url=fake.url, on_event=events.append) as client:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):  # the web handler's own time limit
                await charge(client, card, shop)
        assert landed.is_set()
        release.set()  # the answer is then lost: the background task ends unknown
    (orphan,) = [e for e in events if e.kind == "orphaned"]
    assert isinstance(orphan.outcome, la.OutcomeUnknownError)
    assert client.stats.outcome_unknown == 1
    async with LeatClient(TOKEN, base_url=fake.url) as again:
        found = await again.giftcard_transactions.recover(orphan.outcome)
    assert found is not None and found.uuid == fake.transactions[0].uuid


def test_a_charge_whose_loop_stops_without_aclose_is_recorded(caplog: Any) -> None:
    """asyncio.run ends (the app returns, or is stopped) while a charge's answer is awaited,
    and nobody closed the client: the outcome is an OutcomeUnknownError that can be recovered,
    and a WARNING says what was sent, never "None"."""
    caplog.set_level(logging.WARNING, logger="leat_async")
    events: list[la.Event] = []
    servers = [FakeLeat(token=TOKEN)]
    held = asyncio.Event()  # never set: the answer never comes

    async def app() -> None:
        fake = servers[0]
        await fake.start()
        landed = asyncio.Event()
        fake.add_fault(Fault(method="POST", when="after", applied=landed, hold=held))
        card, shop = fake.add_card(balance_in_cents=10_000), fake.add_shop()
        client = LeatClient(TOKEN, base_url=fake.url, on_event=events.append)
        asyncio.ensure_future(charge(client, card, shop, amount=-700))  # noqa: RUF006
        await landed.wait()  # charged; then the app returns, the loop stops: no aclose()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # the session and server nobody closed
        asyncio.run(app())
        (made,) = servers[0].transactions
        servers.clear()  # and with it, the server's sockets
        gc.collect()
    (orphan,) = [e for e in events if e.kind == "orphaned"]
    lost = orphan.outcome
    assert isinstance(lost, la.OutcomeUnknownError) and lost.sent["amount_in_cents"] == -700
    assert made.card.uuid is not None and made.card.uuid in caplog.text and "-700" in caplog.text

    async def later() -> la.GiftcardTransaction | None:
        """The next day, another process (and a server holding what the first one made)."""
        async with FakeLeat(token=TOKEN) as server:
            shop = server.add_shop(uuid=made.shop.uuid)
            again = server.add_card(uuid=made.card.uuid, balance_in_cents=10_000)
            server.add_transaction(
                card=again,
                shop=shop,
                amount_in_cents=-700,
                uuid=made.uuid,
                created_at=made.created_at,
            )
            async with LeatClient(TOKEN, base_url=server.url) as client:
                return await client.giftcard_transactions.recover(lost, wait=False)

    found = asyncio.run(later())
    assert found is not None and found.uuid == made.uuid


async def test_a_charge_cancelled_before_it_left_is_never_sent(
    fake: FakeLeat, card: Any, shop: Any
) -> None:
    arrived, release = asyncio.Event(), asyncio.Event()
    fake.add_fault(Fault(method="GET", applied=arrived, hold=release))
    events: list[la.Event] = []
    async with LeatClient(
        TOKEN, base_url=fake.url, max_concurrency=1, on_event=events.append
    ) as client:
        busy = asyncio.ensure_future(client.giftcard_transactions.list())
        await arrived.wait()  # the only slot is taken
        checkout = asyncio.ensure_future(charge(client, card, shop))
        await asyncio.sleep(0)  # let it queue for the slot
        checkout.cancel()
        with pytest.raises(asyncio.CancelledError):
            await checkout
        release.set()
        await busy
    assert posts(fake) == 0 and not any(e.kind == "orphaned" for e in events)
    assert client.stats.orphaned == 0


# -- 2. per-call timeouts -----------------------------------------------------------------------


async def test_a_call_takes_its_own_timeout(fake: FakeLeat, card: Any, shop: Any) -> None:
    fake.add_fault(Fault(method="POST", delay=1.0))
    async with LeatClient(TOKEN, base_url=fake.url, timeout=30.0) as client:
        started = time.monotonic()
        with pytest.raises(la.OutcomeUnknownError) as info:
            await charge(client, card, shop, timeout=0.2)
        assert time.monotonic() - started < 0.9
        assert "no answer within 0.2 s" in str(info.value)
        with pytest.raises(ValueError, match="timeout"):
            await charge(client, card, shop, timeout=0)
    assert client.stats.requests == 1


# -- 3. a connection never opened ---------------------------------------------------------------


@contextlib.contextmanager
def stalled_listener() -> Iterator[int]:
    """A port whose accept queue is full: a connection to it is never opened (SYNs dropped)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        yield port
    finally:
        for s in [*fillers, server]:
            s.close()


async def test_a_connection_never_opened_is_not_an_unknown_outcome() -> None:
    policy = RetryPolicy(max_attempts=2, backoff_base=0.01)
    with stalled_listener() as port:
        async with LeatClient(
            TOKEN, base_url=f"http://127.0.0.1:{port}", timeout=0.6, retry=policy
        ) as client:
            with pytest.raises(la.LeatConnectionError) as info:
                await client.giftcard_transactions.create(
                    giftcard_uuid="c", amount_in_cents=-1, shop_uuid="s"
                )
    assert not isinstance(info.value, la.OutcomeUnknownError)
    assert "nothing was sent" in str(info.value) and info.value.attempts == 2
    assert client.stats.outcome_unknown == 0


# -- 4. the retry deadline bounds the whole call ------------------------------------------------


async def test_the_deadline_bounds_every_attempt_and_says_so(fake: FakeLeat) -> None:
    fake.add_fault(Fault(method="GET", delay=5.0, times=None))
    policy = RetryPolicy(deadline=1.0, backoff_base=0.05, backoff_cap=0.05)
    async with LeatClient(TOKEN, base_url=fake.url, retry=policy, timeout=0.6) as client:
        started = time.monotonic()
        with pytest.raises(la.LeatTimeoutError):
            await client.giftcard_transactions.get("abc")
        assert time.monotonic() - started < 1.15


async def test_the_deadline_bounds_the_wait_for_a_slot(
    fake: FakeLeat, card: Any, shop: Any
) -> None:
    arrived, release = asyncio.Event(), asyncio.Event()
    fake.add_fault(Fault(method="GET", applied=arrived, hold=release))
    policy = RetryPolicy(deadline=0.5)
    async with LeatClient(TOKEN, base_url=fake.url, retry=policy, max_concurrency=1) as client:
        busy = asyncio.ensure_future(client.giftcard_transactions.list())
        await arrived.wait()
        started = time.monotonic()
        with pytest.raises(la.LeatTimeoutError) as info:
            await charge(client, card, shop)
        assert 0.45 < time.monotonic() - started < 0.8
        assert "deadline of 0.5 s" in str(info.value) and "nothing was sent" in str(info.value)
        release.set()
        with contextlib.suppress(la.LeatError):  # its own deadline may have run out too
            await busy
    assert posts(fake) == 0


# -- 5. unreadable answers ----------------------------------------------------------------------


#: 200 answers no parser should turn into anything but our own errors (built when used: a
#: 5,000-deep literal is more than pytest's own reporting can take)
UNREADABLE = {
    "deep": lambda: b'{"data": ' + b"[" * 5000 + b"]" * 5000 + b', "meta": []}',
    "bad-utf8": lambda: b'{"data": {"uuid": "\xff\xfe"}, "meta": []}',
    "huge-number": lambda: b'{"data": {"amount_in_cents": 1' + b"0" * 40 + b"}}",
}


@pytest.mark.parametrize("kind", sorted(UNREADABLE))
async def test_unreadable_answers_are_our_errors(
    client: LeatClient, fake: FakeLeat, card: Any, shop: Any, kind: str
) -> None:
    body = UNREADABLE[kind]()
    fake.add_fault(Fault(method="GET", status=200, body=body, times=2))
    with pytest.raises(la.LeatAPIError) as read:
        await client.giftcard_transactions.get("abc")
    assert read.value.status == 200 and "Content-Type" in read.value.headers  # the answer's
    with pytest.raises(la.LeatAPIError):
        await client.giftcard_transactions.list()
    fake.add_fault(Fault(method="POST", status=200, body=body, when="after"))
    with pytest.raises(la.OutcomeUnknownError) as info:
        await charge(client, card, shop)
    assert "HTTP 200" in str(info.value) and "without a Leat error body" not in str(info.value)
    assert len(fake.transactions) == 1  # it landed: recover() will find it


async def test_an_unusable_200_says_what_was_wrong(
    client: LeatClient, fake: FakeLeat, card: Any, shop: Any
) -> None:
    fake.add_fault(Fault(method="POST", status=200, body="<html>ok</html>", when="after"))
    with pytest.raises(la.OutcomeUnknownError) as info:
        await charge(client, card, shop)
    assert "not JSON" in info.value.message and "<html>ok</html>" in info.value.message


@pytest.mark.parametrize(
    "args",
    [
        {"amount_in_cents": 2**64},
        {"amount_in_cents": -(2**63) - 1},
        {"custom_attributes": {"n": 2**70}},
        {"custom_attributes": {"note": "\ud800"}},
    ],
)
async def test_what_cannot_be_encoded_is_refused_before_anything_counts(
    client: LeatClient, fake: FakeLeat, args: dict[str, Any]
) -> None:
    call = {"giftcard_uuid": "c", "amount_in_cents": -1, "shop_uuid": "s", **args}
    with pytest.raises(ValueError, match=r"64-bit|Unicode"):
        await client.giftcard_transactions.create(**call)
    assert fake.requests == [] and client.stats.requests == 0


# -- 6. concurrent recoveries -------------------------------------------------------------------


async def test_two_recoveries_never_share_a_transaction(
    fake: FakeLeat, card: Any, shop: Any
) -> None:
    other = fake.add_card(balance_in_cents=10**9)
    for _ in range(150):  # the search spans two pages
        fake.add_transaction(card=other, shop=shop, amount_in_cents=-500)
    fake.add_fault(Fault(method="POST", drop=True, when="after", times=2))
    async with LeatClient(TOKEN, base_url=fake.url, timeout=0.5, landing_horizon=0) as client:
        gtx = client.giftcard_transactions
        errors = []
        for _ in range(2):
            with pytest.raises(la.OutcomeUnknownError) as info:
                await charge(client, card, shop)
            errors.append(info.value)
        # both landed, and nothing tells which made which: each is told so, never given one
        found = await asyncio.gather(*(gtx.recover(e) for e in errors), return_exceptions=True)
        group = await gtx.recover_group(errors)
    mine = {tx.uuid for tx in fake.transactions if tx.card is card}
    assert len(mine) == 2
    for answer in found:
        assert isinstance(answer, la.AmbiguousOutcomeError)
        assert answer.landed == 2 and answer.landed_for_certain
        assert {tx.uuid for tx in answer.transactions} == mine
    assert group.landed == 2 and {tx.uuid for tx in group.transactions} == mine


class _SaysWaiting(logging.Handler):
    """Sets an event when recover() says it waits for a look-alike request under way."""

    def __init__(self, event: asyncio.Event) -> None:
        super().__init__()
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        if "under way" in record.getMessage():
            self.event.set()


async def test_recover_never_takes_what_a_slow_create_will_return(
    fake: FakeLeat, card: Any, shop: Any, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="leat_async")
    landed, release = asyncio.Event(), asyncio.Event()
    fake.add_fault(Fault(method="POST", when="after", applied=landed, hold=release))
    waiting = _SaysWaiting(release)
    logging.getLogger("leat_async").addHandler(waiting)
    try:
        async with LeatClient(TOKEN, base_url=fake.url, landing_horizon=0) as client:
            await client.giftcard_transactions.list()  # the first answer paces the rest
            slow = asyncio.ensure_future(charge(client, card, shop))
            await landed.wait()  # the first charge landed; its answer is on its way
            fake.add_fault(Fault(method="POST", drop=True, when="after"))
            with pytest.raises(la.OutcomeUnknownError) as info:
                await charge(client, card, shop)
            async with asyncio.timeout(10):
                found = await client.giftcard_transactions.recover(info.value)
                release.set()
                first = await slow
    finally:
        logging.getLogger("leat_async").removeHandler(waiting)
    assert found is not None and found.uuid != first.uuid
    assert {found.uuid, first.uuid} == {tx.uuid for tx in fake.transactions}


async def test_recover_without_waiting_answers_at_once(
    fake: FakeLeat, card: Any, shop: Any
) -> None:
    async with LeatClient(TOKEN, base_url=fake.url, timeout=0.2, landing_horizon=0) as client:
        gtx = client.giftcard_transactions
        fake.add_fault(Fault(method="POST", status=502, body="", when="after"))
        with pytest.raises(la.OutcomeUnknownError) as landed:
            await charge(client, card, shop)  # it landed; the gateway lost its answer
        found = await gtx.recover(landed.value, wait=False)
        assert found is not None and found.uuid == fake.transactions[0].uuid

        fake.add_fault(Fault(method="POST", drop=True, when="before"))
        with pytest.raises(la.OutcomeUnknownError) as lost:
            await charge(client, card, shop)  # never reached the handler
        started = time.monotonic()
        with pytest.raises(la.OutcomeUnknownError):  # may still land: still unknown
            await gtx.recover(lost.value, wait=False, margin=0)
        assert time.monotonic() - started < 0.5
        left = (lost.value.deadline - datetime.now(UTC)).total_seconds()
        await asyncio.sleep(max(0.0, left))  # let the deadline pass
        assert await gtx.recover(lost.value, wait=False, margin=0) is None
    assert len(fake.transactions) == 1


# -- 7. late landings ---------------------------------------------------------------------------


async def test_recover_waits_until_a_late_charge_has_landed(
    fake: FakeLeat, card: Any, shop: Any
) -> None:
    fake.add_fault(Fault(method="POST", delay=1.5))  # the server works on after we gave up
    async with LeatClient(TOKEN, base_url=fake.url, timeout=0.3, landing_horizon=3.0) as client:
        with pytest.raises(la.OutcomeUnknownError) as info:
            await charge(client, card, shop)
        assert (info.value.deadline - info.value.sent_at).total_seconds() >= 3.0
        assert fake.transactions == []
        found = await client.giftcard_transactions.recover(info.value, margin=0.5)
    assert found is not None and found.uuid == fake.transactions[0].uuid


def test_the_default_horizon_is_a_minute() -> None:
    assert LeatClient(TOKEN)._dispatcher._horizon >= 60.0


# -- 8. errors cross process boundaries ---------------------------------------------------------


def _refused_in_a_worker(url: str, card: str, shop: str) -> None:
    async def go() -> None:
        async with LeatClient(TOKEN, base_url=url) as client:
            await client.giftcard_transactions.create(
                giftcard_uuid=card, amount_in_cents=-(10**9), shop_uuid=shop
            )

    asyncio.run(go())


async def test_errors_pickle_for_process_pools_and_queues(
    fake: FakeLeat, card: Any, shop: Any
) -> None:
    loop = asyncio.get_running_loop()
    with (
        concurrent.futures.ProcessPoolExecutor(1) as pool,
        pytest.raises(la.InsufficientBalanceError) as refused,
    ):
        await loop.run_in_executor(pool, _refused_in_a_worker, fake.url, card.uuid, shop.uuid)
    assert refused.value.code == 5003 and refused.value.method == "POST"
    fake.add_fault(Fault(method="POST", drop=True, when="after"))
    async with LeatClient(TOKEN, base_url=fake.url, landing_horizon=0) as client:
        with pytest.raises(la.OutcomeUnknownError) as info:
            await charge(client, card, shop)
    blob = pickle.dumps(info.value)
    assert TOKEN.encode() not in blob
    queued = pickle.loads(blob)  # noqa: S301 - our own bytes
    assert type(queued) is la.OutcomeUnknownError and queued.sent == info.value.sent
    async with LeatClient(TOKEN, base_url=fake.url) as another:  # another client, "elsewhere"
        found = await another.giftcard_transactions.recover(queued)
    assert found is not None and found.uuid == fake.transactions[-1].uuid


# -- 9. counts that match the wire --------------------------------------------------------------


class _SlowFirstAdmissions:
    """A rate state whose first answers come back late, as a far-away or busy home's would."""

    def __init__(self, late: int, delay: float) -> None:
        self.inner = la.LocalRateState()
        self.late = late
        self.delay = delay

    def bind(self, namespace: str) -> None:
        self.inner.bind(namespace)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def admit(self, *, rate_limit: int | None, inflight: int) -> tuple[float, float]:
        verdict = await self.inner.admit(rate_limit=rate_limit, inflight=inflight)
        if verdict[0] <= 0 and self.late > 0:
            self.late -= 1
            await asyncio.sleep(self.delay)
        return verdict

    async def unsend(self, at: float) -> None:
        await self.inner.unsend(at)

    async def on_answer(self, info: RateInfo, *, sent_at: float, others: int) -> None:
        await self.inner.on_answer(info, sent_at=sent_at, others=others)

    async def pause(self, seconds: float) -> None:
        await self.inner.pause(seconds)


async def test_the_cap_counts_sends_not_admissions(fake: FakeLeat) -> None:
    state = _SlowFirstAdmissions(late=5, delay=0.5)
    async with LeatClient(TOKEN, base_url=fake.url, rate_limit=5, rate_state=state) as client:
        await asyncio.gather(*(client.giftcard_transactions.list() for _ in range(10)))
    assert len(fake.requests) == 10
    assert fake.max_in_window(1.0) <= 5


async def test_aiohttp_never_resends_behind_our_back(fake: FakeLeat) -> None:
    async with LeatClient(TOKEN, base_url=fake.url, retry=FAST_RETRY) as client:
        await client.giftcard_transactions.list()  # a kept-alive connection to reuse
        fake.add_fault(Fault(method="GET", drop=True, when="after"))
        await client.giftcard_transactions.list()
    assert client.stats.requests == len(fake.requests) == 3
    assert client.stats.retries == 1


# -- found in review -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "9" * 400},
        {"X-RateLimit-Reset": "9" * 400},
        {"Date": "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"},
        {"Retry-After": "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"},
    ],
)
async def test_absurd_headers_never_lose_a_charge(
    client: LeatClient, fake: FakeLeat, card: Any, shop: Any, headers: dict[str, str]
) -> None:
    fake.add_fault(Fault(method="POST", when="after", headers=headers))
    tx = await charge(client, card, shop)
    assert tx.uuid == fake.transactions[0].uuid


async def test_recover_finds_a_charge_on_a_server_whose_clock_is_behind(
    card: Any, shop: Any
) -> None:
    behind = timedelta(seconds=-8)
    async with FakeLeat(token=TOKEN, clock=lambda: datetime.now(UTC) + behind) as fake:
        card = fake.add_card(balance_in_cents=10_000)
        shop = fake.add_shop()
        fake.add_fault(Fault(method="POST", when="after", drop=True))
        async with LeatClient(TOKEN, base_url=fake.url, landing_horizon=1.0) as client:
            with pytest.raises(la.OutcomeUnknownError) as info:
                await charge(client, card, shop)  # the client has seen no Date yet
            found = await client.giftcard_transactions.recover(info.value, margin=0.5)
    assert found is not None and found.uuid == fake.transactions[0].uuid


async def test_a_2xx_whose_transaction_is_not_found_is_never_called_none(
    fake: FakeLeat, card: Any, shop: Any
) -> None:
    # a 200 the client cannot read says the server did it; not finding it must not become
    # "none was made", or the app charges again
    fake.add_fault(Fault(method="POST", status=200, body="<html>ok</html>"))
    async with LeatClient(TOKEN, base_url=fake.url, timeout=0.2, landing_horizon=0) as client:
        with pytest.raises(la.OutcomeUnknownError) as info:
            await charge(client, card, shop)
        assert info.value.status == 200
        with pytest.raises(la.OutcomeUnknownError):
            await client.giftcard_transactions.recover(info.value, margin=0)


def test_two_lost_requests_are_two_owners_even_at_the_same_instant() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    made = [
        la.OutcomeUnknownError(
            "lost",
            operation="create",
            method="POST",
            path="/giftcard-transactions",
            sent={"amount_in_cents": -500},
            sent_at=when,
            deadline=when,
        )
        for _ in range(2)
    ]
    assert made[0].ticket != made[1].ticket
    assert pickle.loads(pickle.dumps(made[0])).ticket == made[0].ticket  # noqa: S301


async def test_a_borrowed_sessions_own_settings_do_not_hide_answers(
    fake: FakeLeat, shop: Any
) -> None:
    import aiohttp

    poor = fake.add_card(balance_in_cents=100)
    calls = 0

    async def refresh_once_on_401(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        nonlocal calls
        calls += 1
        response = await handler(request)
        if response.status == 401:  # a token refresh that tries again
            response.release()
            return await handler(request)
        return response

    fake.add_fault(Fault(method="POST", status=401, body={"message": "Unauthenticated."}))
    async with (
        aiohttp.ClientSession(raise_for_status=True, middlewares=(refresh_once_on_401,)) as s,
        LeatClient(TOKEN, base_url=fake.url, session=s) as client,
    ):
        tx = await charge(client, fake.add_card(balance_in_cents=1000), shop)
        with pytest.raises(la.InsufficientBalanceError):
            await charge(client, poor, shop)
    assert tx.uuid == fake.transactions[0].uuid and calls == 2


async def test_no_create_is_sent_once_the_deadline_is_spent(
    fake: FakeLeat, card: Any, shop: Any
) -> None:
    def slow_hook(event: la.Event) -> None:
        if event.kind == "request" and event.method == "POST":
            time.sleep(0.6)  # a slow synchronous hook eats the whole deadline

    policy = RetryPolicy(deadline=0.5)
    async with LeatClient(TOKEN, base_url=fake.url, on_event=slow_hook, retry=policy) as client:
        await client.giftcard_transactions.list()
        with pytest.raises(la.LeatTimeoutError, match="nothing was sent"):
            await charge(client, card, shop)
    assert posts(fake) == 0


def test_sends_whose_answer_never_came_are_forgotten() -> None:
    sends = SendLog()
    for n in range(2000):  # each times out: no answer ever comes back for it
        sends.settle(n * 0.01, inflight=1)
        sends.add(n * 0.01)
    # the one answer that does come counts the other requests in flight: one, not 1,999
    assert sends.answered(1999 * 0.01, now=20.0) == 1
