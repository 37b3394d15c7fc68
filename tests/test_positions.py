"""Exact positions: a checkpoint after any row resumes every row not yet handed out, none twice."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from leat_async import CreatedAt, LeatClient, Position
from leat_async.testing import FakeLeat

from .conftest import LONG_AGO, seed_rows


async def take(pager: Any, n: int) -> list[int]:
    """The ids of the first ``n`` rows of a walk, leaving it as a user's ``break`` does."""
    got: list[int] = []
    async for tx in pager:
        got.append(tx.id)
        if len(got) == n:
            break
    return got


@pytest.mark.parametrize("cut", [1, 10, 99, 100, 101, 249])
@pytest.mark.parametrize("sort", [None, "-created_at"])
async def test_a_checkpoint_after_any_row_resumes_every_row_exactly_once(
    client: LeatClient, fake: FakeLeat, cut: int, sort: Any
) -> None:
    seed_rows(fake, 250)
    expected = [t.id for t in fake.transactions]
    if sort == "-created_at":
        expected.reverse()
    pager = client.giftcard_transactions.list(per_page=100, sort=sort)
    first = await take(pager, cut)
    saved = json.dumps(pager.position.to_dict() if pager.position else None)
    resume = Position.from_dict(json.loads(saved))
    rest = [tx.id async for tx in client.giftcard_transactions.list(sort=sort, resume=resume)]
    assert first + rest == expected


async def test_resuming_again_and_again_hands_out_each_row_once(
    client: LeatClient, fake: FakeLeat
) -> None:
    seed_rows(fake, 230)
    got: list[int] = []
    position: Position | None = None
    while True:  # a job that stops every 37 rows and is started again from its checkpoint
        pager = client.giftcard_transactions.list(per_page=50, resume=position)
        chunk = await take(pager, 37)
        got += chunk
        position = pickle.loads(pickle.dumps(pager.position))  # noqa: S301 - our own bytes
        if len(chunk) < 37:
            break
    assert got == [t.id for t in fake.transactions]


async def test_a_position_read_between_pages_and_at_the_end(
    client: LeatClient, fake: FakeLeat
) -> None:
    seed_rows(fake, 25)
    pager = client.giftcard_transactions.list(per_page=10)
    assert pager.position is None  # before a walk fixes its snapshot: nothing handed out
    pages = pager.pages()
    await anext(pages)
    after_one = pager.position
    assert after_one is not None and after_one.page == 2 and pages.position == after_one
    async for _ in pages:
        pass
    end = pager.position
    assert end is not None and end.page == 4
    fake.reset_requests()
    assert [tx async for tx in client.giftcard_transactions.list(per_page=10, resume=end)] == []
    assert len(fake.requests) == 1  # the page after the last: empty
    rest = client.giftcard_transactions.list(per_page=10, resume=after_one)
    assert rest.position == after_one  # a resumed pager starts where its position says
    assert [tx.id async for tx in rest] == [t.id for t in fake.transactions[10:]]


async def test_rows_shifted_by_a_backdated_insert_are_not_handed_out_twice(
    client: LeatClient, fake: FakeLeat
) -> None:
    seed_rows(fake, 250)
    pager = client.giftcard_transactions.list(per_page=100, sort="created_at")
    first = await take(pager, 110)
    position = pager.position
    assert position is not None
    shop, card = fake.shops[0], fake.cards[0]
    for _ in range(7):  # inside the snapshot, before the position: every later row moves on
        fake.add_transaction(
            card=card, shop=shop, amount_in_cents=-1, created_at=LONG_AGO - timedelta(hours=1)
        )
    rest = [
        tx.id
        async for tx in client.giftcard_transactions.list(
            per_page=100, sort="created_at", resume=position
        )
    ]
    assert len(first + rest) == len(set(first + rest)) == 250
    assert first + rest == [t.id for t in fake.transactions[:250]]


async def test_a_position_pickles_and_round_trips_through_json(
    client: LeatClient, fake: FakeLeat
) -> None:
    seed_rows(fake, 30)
    window = CreatedAt(gte=LONG_AGO)
    shop = fake.shops[0].uuid
    pager = client.giftcard_transactions.list(per_page=10, created_at=window, shop_uuid=shop)
    await take(pager, 13)
    position = pager.position
    assert position is not None
    assert pickle.loads(pickle.dumps(position)) == position  # noqa: S301 - our own bytes
    doc = json.loads(json.dumps(position.to_dict()))
    assert Position.from_dict(doc) == position
    assert position.page == 2 and len(position.seen) == 13
    assert position.snapshot.microsecond == 0 and position.snapshot.tzinfo is not None
    assert repr(position).endswith("seen=<13 keys>, listing='giftcard-transactions')")
    assert hash(Position.from_dict(doc)) == hash(position) and len({position, position}) == 1
    with pytest.raises(AttributeError, match="immutable"):
        position.page = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "doc",
    [
        None,
        {},
        {"format": 99},
        {"format": 1, "listing": 3, "parameters": [], "page": 1, "snapshot": "x", "seen": []},
        {"format": 1, "listing": "l", "parameters": [], "page": 0, "snapshot": "x", "seen": []},
        {"format": 1, "listing": "l", "parameters": [], "page": 1, "snapshot": "x", "seen": []},
        {
            "format": 1,
            "listing": "l",
            "parameters": [],
            "page": 1,
            "snapshot": "2024-01-01T00:00:00",
            "seen": [],
        },
        {
            "format": 1,
            "listing": "l",
            "parameters": [["a"]],
            "page": 1,
            "snapshot": "2024-01-01T00:00:00+00:00",
            "seen": [],
        },
        {
            "format": 1,
            "listing": "l",
            "parameters": [],
            "page": 1,
            "snapshot": "2024-01-01T00:00:00+00:00",
            "seen": [1.5],
        },
    ],
)
def test_a_damaged_position_is_a_clear_value_error(doc: Any) -> None:
    with pytest.raises(ValueError, match="position"):
        Position.from_dict(doc)


async def test_resuming_with_other_filters_is_refused_before_sending(
    client: LeatClient, fake: FakeLeat
) -> None:
    seed_rows(fake, 30)
    since = datetime(2024, 1, 1, tzinfo=UTC)
    pager = client.giftcard_transactions.list(per_page=10, created_at=CreatedAt(gte=since))
    await take(pager, 5)
    position = pager.position
    assert position is not None
    fake.reset_requests()
    gtx = client.giftcard_transactions
    with pytest.raises(ValueError, match=r"other filters.*shop_uuid"):
        gtx.list(per_page=10, created_at=CreatedAt(gte=since), shop_uuid="x", resume=position)
    with pytest.raises(ValueError, match=r"other filters.*perPage"):
        gtx.list(per_page=20, created_at=CreatedAt(gte=since), resume=position)
    with pytest.raises(ValueError, match=r"created_at\[gte\]"):
        gtx.list(per_page=10, resume=position)
    with pytest.raises(ValueError, match="resume= gives the page"):
        gtx.list(per_page=10, created_at=CreatedAt(gte=since), page=2, resume=position)
    with pytest.raises(TypeError, match="Position"):
        gtx.list(resume=position.to_dict())  # type: ignore[arg-type]
    assert fake.requests == []
    # the same instant in another zone is the same filter
    cet = since.astimezone(timezone(timedelta(hours=2)))
    same = gtx.list(per_page=10, created_at=CreatedAt(gte=cet), resume=position)
    assert len([tx async for tx in same]) == 25
