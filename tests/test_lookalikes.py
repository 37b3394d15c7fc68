"""Look-alike lost requests (same card, shop and amount) never get each other's transaction.

Issue 19, point 2: request A reached Leat and was answered 200 with a body the client could not
read; look-alike B was lost before Leat saw it. ``recover(B)`` used to return A's charge, so
order B showed paid and order A pending for ever.
"""

from __future__ import annotations

import asyncio
import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import leat_async as la
from leat_async import LeatClient
from leat_async._http.lookalike import (
    Ambiguous,
    Candidate,
    Found,
    Lost,
    Missing,
    Nothing,
    Wait,
    decide,
    echo_matches,
)
from leat_async.testing import FakeLeat, Fault

from .conftest import TOKEN, charge

UNREADABLE_200 = Fault(method="POST", status=200, body="<html>ok</html>", when="after")
LOST_BEFORE = Fault(method="POST", drop=True, when="before")
LOST_AFTER = Fault(method="POST", drop=True, when="after")


@pytest.fixture
def card(fake: FakeLeat) -> Any:
    return fake.add_card(balance_in_cents=100_000)


async def lose(
    client: LeatClient, fake: FakeLeat, fault: Fault, card: Any, shop: Any, **kw: Any
) -> la.OutcomeUnknownError:
    fake.add_fault(fault)
    with pytest.raises(la.OutcomeUnknownError) as info:
        await charge(client, card, shop, **kw)
    return info.value


def quick(fake: FakeLeat, **kw: Any) -> LeatClient:
    """A client whose lost requests can land for half a second only."""
    return LeatClient(TOKEN, base_url=fake.url, timeout=0.5, landing_horizon=0, **kw)


@pytest.mark.parametrize("b_first", [True, False])
async def test_a_request_answered_2xx_keeps_its_charge(
    fake: FakeLeat, card: Any, shop: Any, b_first: bool
) -> None:
    async with quick(fake) as client:
        gtx = client.giftcard_transactions
        a = await lose(client, fake, UNREADABLE_200, card, shop)
        b = await lose(client, fake, LOST_BEFORE, card, shop)
        if b_first:
            b_made = await gtx.recover(b)
            a_made = await gtx.recover(a)
        else:
            a_made = await gtx.recover(a)
            b_made = await gtx.recover(b)
    assert a.status == 200 and b.status is None
    assert [tx.uuid for tx in fake.transactions] == [a_made.uuid if a_made else None]
    assert b_made is None


async def test_concurrent_recoveries_of_look_alikes_agree(
    fake: FakeLeat, card: Any, shop: Any
) -> None:
    async with quick(fake) as client:
        gtx = client.giftcard_transactions
        a = await lose(client, fake, UNREADABLE_200, card, shop)
        b = await lose(client, fake, LOST_BEFORE, card, shop)
        b_made, a_made = await asyncio.gather(gtx.recover(b), gtx.recover(a))
    assert b_made is None and a_made is not None
    assert a_made.uuid == fake.transactions[0].uuid and len(fake.transactions) == 1


async def test_look_alikes_that_cannot_be_told_apart_say_so(
    fake: FakeLeat, card: Any, shop: Any
) -> None:
    async with quick(fake) as client:
        gtx = client.giftcard_transactions
        a = await lose(client, fake, LOST_AFTER, card, shop)  # landed, answer lost
        b = await lose(client, fake, LOST_BEFORE, card, shop)  # never reached Leat
        with pytest.raises(la.OutcomeUnknownError) as early:
            await gtx.recover(b, wait=False)  # a may have been b's: still unknown
        assert not isinstance(early.value, la.AmbiguousOutcomeError)
        with pytest.raises(la.AmbiguousOutcomeError) as info:
            await gtx.recover(b)
        group = await gtx.recover_group(info.value.requests)
        with pytest.raises(la.AmbiguousOutcomeError):
            await gtx.recover(a)  # the same answer for every member, after the group too
    err = info.value
    assert err.landed == 1 and not err.landed_for_certain
    assert {e.ticket for e in err.requests} == {a.ticket, b.ticket}
    assert [tx.uuid for tx in err.transactions] == [fake.transactions[0].uuid]
    assert "recover_group" in str(err) and TOKEN not in str(err)
    assert group.landed == 1 and [t.uuid for t in group.transactions] == [err.transactions[0].uuid]
    assert group.known == {}
    again = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own error, for job queues
    assert again.landed == 1 and again.ticket == b.ticket and len(again.requests) == 2


async def test_echoed_attributes_tell_look_alikes_apart() -> None:
    async with FakeLeat(token=TOKEN, echo_custom_attributes=True) as fake:
        card = fake.add_card(balance_in_cents=100_000)
        shop = fake.add_shop(name="Till")
        async with quick(fake, correlation_attribute="leat_async_ref") as client:
            gtx = client.giftcard_transactions
            a = await lose(client, fake, LOST_AFTER, card, shop)
            b = await lose(client, fake, LOST_AFTER, card, shop)
            c = await lose(client, fake, LOST_BEFORE, card, shop)
            started = datetime.now(UTC)
            found = await asyncio.gather(gtx.recover(b), gtx.recover(a))
            waited = datetime.now(UTC) - started
            none = await gtx.recover(c)
    made = {tx.custom_attributes["leat_async_ref"]: tx.uuid for tx in fake.transactions}
    assert [tx.uuid for tx in found if tx] == [
        made[b.sent["custom_attributes"]["leat_async_ref"]],
        made[a.sent["custom_attributes"]["leat_async_ref"]],
    ]
    assert waited < timedelta(seconds=0.5)  # exact: no need to wait out the deadlines
    assert none is None and len(fake.transactions) == 2


async def test_an_error_recovered_in_another_client_is_its_own_group(
    fake: FakeLeat, card: Any, shop: Any
) -> None:
    async with quick(fake) as client:
        lost = await lose(client, fake, LOST_AFTER, card, shop)
    elsewhere = pickle.loads(pickle.dumps(lost))  # noqa: S301
    async with LeatClient(TOKEN, base_url=fake.url) as other:
        found = await other.giftcard_transactions.recover(elsewhere, wait=False)
    assert found is not None and found.uuid == fake.transactions[0].uuid


# -- the decision itself (pure) -----------------------------------------------------------------

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


def tx(n: int) -> la.GiftcardTransaction:
    return la.GiftcardTransaction(
        id=n,
        uuid=f"tx-{n}",
        amount_in_cents=-500,
        type="STANDARD",
        settled=False,
        card=la.CardRef(1, "card"),
        shop=la.Shop(1, "shop", "Shop"),
        settlements=(),
        created_at=T0,
    )


def lost(name: str, *, landed: bool = False, **attrs: Any) -> Lost:
    return Lost(name, landed=landed, low=T0, high=T0 + timedelta(minutes=1), attributes=attrs)


A, A2XX, B, C = lost("a"), lost("a", landed=True), lost("b"), lost("c")
ONE, TWO = Candidate(tx(1)), Candidate(tx(2))


@pytest.mark.parametrize(
    ("target", "group", "candidates", "final", "expected"),
    [
        # alone: one candidate is its; none is nothing once it cannot land; two are too many
        (A, [A], [ONE], False, Found(tx(1))),
        (A, [A], [], False, Wait()),
        (A, [A], [], True, Nothing()),
        (A2XX, [A2XX], [], True, Missing()),
        (A, [A], [ONE, TWO], True, Ambiguous(None, (tx(1), tx(2)))),
        # a 2xx member has first claim on the only candidate, at once
        (A2XX, [A2XX, B], [ONE], False, Found(tx(1))),
        (B, [A2XX, B], [ONE], False, Wait()),
        (B, [A2XX, B], [ONE], True, Nothing()),
        # unknown members: nothing is decided while one may still land
        (A, [A, B], [ONE], False, Wait()),
        (A, [A, B], [ONE], True, Ambiguous(1, (tx(1),))),
        (A, [A, B], [ONE, TWO], True, Ambiguous(2, (tx(1), tx(2)))),
        (A, [A, B], [], True, Nothing()),
        (A2XX, [A2XX, B, C], [ONE, TWO], True, Ambiguous(2, (tx(1), tx(2)))),
        (B, [A2XX, B], [], True, Ambiguous(None, ())),  # a 2xx row missing: trust nothing
    ],
)
def test_the_look_alike_rules(
    target: Lost, group: list[Lost], candidates: list[Candidate], final: bool, expected: Any
) -> None:
    assert decide(target, group, candidates, final=final) == expected


def test_echoed_attributes_decide_exactly() -> None:
    a, b = lost("a", ref="1"), lost("b", ref="2")
    mine, theirs, stranger = (
        Candidate(tx(1), {"ref": "1"}),
        Candidate(tx(2), {"ref": 2}),  # a number may come back as text, and the other way
        Candidate(tx(3), {"ref": "9"}),
    )
    assert decide(a, [a, b], [theirs, stranger, mine], final=False) == Found(tx(1))
    assert decide(b, [a, b], [theirs, stranger, mine], final=False) == Found(tx(2))
    # only a stranger's row: b made nothing, once it can no longer land
    assert decide(b, [a, b], [stranger], final=True) == Nothing()
    assert echo_matches(None, []) and echo_matches({}, {})  # PHP's empty array
    assert echo_matches({"paid": True}, {"paid": "true", "extra": 1})
    assert not echo_matches({"ref": "1"}, {}) and not echo_matches(None, {"ref": "1"})


async def test_look_alikes_recovered_at_once_share_their_searches(
    fake: FakeLeat, card: Any, shop: Any
) -> None:
    async with quick(fake) as client:
        gtx = client.giftcard_transactions
        lost = [await lose(client, fake, LOST_BEFORE, card, shop) for _ in range(20)]
        fake.reset_requests()
        made = await asyncio.gather(*(gtx.recover(e) for e in lost))
    assert made == [None] * 20  # none reached Leat: each is told so, after its deadline
    searches = sum(1 for r in fake.requests if r.method == "GET")
    assert searches <= 10  # one search serves the group, not one per lost request and poll
