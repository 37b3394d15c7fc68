"""Tests of the fake Leat server itself, driven with a raw aiohttp.ClientSession."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yarl

from leat_async import LeatClient
from leat_async.testing import FakeLeat, Fault, RecordedRequest
from leat_async.testing._listing import page_meta, parse_iso_bound_us
from leat_async.testing._ratelimit import FixedWindow
from leat_async.testing._records import transaction_json
from leat_async.testing._render import Renderer

pytest_plugins = ["leat_async.testing.pytest_plugin"]

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "test-token"
LIST = "/api/v3/oauth/clients/giftcard-transactions"
T0 = datetime(2024, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
TX_KEYS = {"id", "uuid", "amount_in_cents", "type", "settled", "card", "shop", "settlements"}


class Clock:
    """A hand-moved wall clock and monotonic clock."""

    def __init__(self) -> None:
        self.now = T0
        self.mono = 1000.0

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeLeat]:
    async with FakeLeat(clock=clock.wall) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
    async with aiohttp.ClientSession(headers=headers) as session:
        yield session


async def call(
    http: aiohttp.ClientSession, fake: FakeLeat, method: str, path: str = "", **kw: Any
) -> tuple[int, Any, dict[str, str]]:
    async with http.request(method, fake.url + LIST + path, **kw) as resp:
        body = (
            await resp.json(content_type=None)
            if resp.content_type == "application/json"
            else (await resp.text())
        )
        return resp.status, body, dict(resp.headers)


def world(fake: FakeLeat, balance: int = 5000, **card: Any) -> tuple[Any, Any]:
    shop = fake.add_shop(name="Krusty Krab")
    return shop, fake.add_card(balance_in_cents=balance, **card)


def create_body(card: Any, shop: Any, amount: Any) -> dict[str, Any]:
    return {"giftcard_uuid": card.uuid, "amount_in_cents": amount, "shop_uuid": shop.uuid}


# -- auth, routing, shapes ----------------------------------------------------------------------


async def test_auth_is_checked_first_and_token_is_never_recorded(fake: FakeLeat) -> None:
    async with aiohttp.ClientSession() as anon:
        status, body, _ = await call(anon, fake, "GET")
        assert (status, body) == (401, {"message": "Unauthenticated."})
        wrong = {"Authorization": "Bearer nope"}
        status, _, _ = await call(anon, fake, "POST", "/x/reverse", headers=wrong)
        assert status == 401
    assert [r.authorized for r in fake.requests] == [False, False]
    assert [r.path for r in fake.requests] == [
        "/giftcard-transactions",
        "/giftcard-transactions/x/reverse",
    ]
    assert TOKEN not in repr(fake.requests)


async def test_unknown_routes_are_json_404(fake: FakeLeat, http: aiohttp.ClientSession) -> None:
    for method, path in [("GET", "/a/b"), ("DELETE", ""), ("GET", "/"), ("POST", "/x")]:
        status, body, _ = await call(http, fake, method, path)
        assert (status, body) == (404, {"message": "Not found."})
    async with http.get(fake.url + "/api/v3/other", allow_redirects=False) as resp:
        assert resp.status == 404


async def test_create_get_shapes_and_frozen_clock(
    fake: FakeLeat, http: aiohttp.ClientSession
) -> None:
    shop, card = world(fake, reincrementable=True)
    body = create_body(card, shop, 250) | {"custom_attributes": {"till": 3}}
    status, created, headers = await call(http, fake, "POST", json=body)
    assert status == 200
    assert created["meta"] == []
    data = created["data"]
    assert set(data) == TX_KEYS | {"created_at"}
    assert data["card"] == {"id": card.id, "uuid": card.uuid}
    assert data["shop"] == {"id": shop.id, "uuid": shop.uuid, "name": "Krusty Krab"}
    assert (data["type"], data["settled"], data["settlements"]) == ("STANDARD", False, [])
    assert data["created_at"] == "2024-01-02T03:04:05+00:00"
    assert headers["Date"] == "Tue, 02 Jan 2024 03:04:05 GMT"
    assert card.balance_in_cents == 5250
    record = fake.get_transaction(data["uuid"])
    assert record is not None
    assert record.custom_attributes == {"till": 3}
    assert fake.requests[0].json == body
    status, got, _ = await call(http, fake, "GET", "/" + data["uuid"])
    assert (status, got) == (200, created)


async def test_form_encoded_create(fake: FakeLeat, http: aiohttp.ClientSession) -> None:
    shop, card = world(fake)
    form = create_body(card, shop, "-100") | {"custom_attributes[order]": "A1"}
    status, _, _ = await call(http, fake, "POST", data=form)
    assert status == 200
    assert fake.transactions[-1].custom_attributes == {"order": "A1"}


async def test_extra_fields_and_null_uuids_render(
    fake: FakeLeat, http: aiohttp.ClientSession
) -> None:
    shop, card = world(fake, uuid=FakeLeat.NULL)
    fake.add_transaction(
        card=card,
        shop=shop,
        amount_in_cents=5,
        uuid=FakeLeat.NULL,
        type="BONUS",
        extra={"new_field": 1},
    )
    _, listed, _ = await call(http, fake, "GET")
    row = listed["data"][0]
    assert (row["uuid"], row["card"]["uuid"], row["type"], row["new_field"]) == (
        None,
        None,
        "BONUS",
        1,
    )
    assert card.balance_in_cents == 5005


async def test_rendered_bytes_match_json_dumps_and_see_changes(
    fake: FakeLeat, http: aiohttp.ClientSession
) -> None:
    fake.seed(300, seed=5)
    shop, card = world(fake)

    class Cents(IntEnum):
        FIVE = 5

    fake.add_transaction(card=card, shop=shop, amount_in_cents=Cents.FIVE)  # the generic path
    txs = fake.transactions

    async def raw(path: str = "", **params: str) -> bytes:
        async with http.get(fake.url + LIST + path, params=params) as resp:
            assert resp.headers["Content-Type"] == "application/json"
            return await resp.read()

    def expected(rows: Any, page: int) -> bytes:
        meta = page_meta(total=len(txs), per_page=100, page=page, count=len(rows))
        return json.dumps({"data": [transaction_json(t) for t in rows], "meta": meta}).encode()

    for _ in range(2):  # cold, then from the row cache
        for page in range(1, 5):
            assert await raw(perPage="100", page=str(page)) == expected(
                txs[(page - 1) * 100 :][:100], page
            )
        assert (
            await raw("/" + str(txs[-2].uuid))
            == json.dumps({"data": transaction_json(txs[-2]), "meta": []}).encode()
        )
    # settled, settlements and extra may change, even in place; shops and card uuids too.
    tx = txs[0]
    tx.settled = not tx.settled
    tx.settlements[0]["id"] = 99  # type: ignore[index]
    txs[1].settlements = ({"id": 7},)
    txs[2].extra = {"type": "BONUS"}
    fake.shops[0].name = "Renamed"
    txs[3].card.uuid = "card-uuid"
    assert await raw(perPage="100") == expected(txs[:100], 1)
    txs[2].extra["type"] = "OTHER"
    assert json.loads(await raw(perPage="3"))["data"][2]["type"] == "OTHER"


def test_row_cache_is_bounded() -> None:
    fake = FakeLeat()
    fake.seed(500)
    render = Renderer(max_rows=64)
    for tx in fake.transactions:
        assert render.single(tx) == json.dumps({"data": transaction_json(tx), "meta": []}).encode()
        assert len(render) <= 64


async def test_latency_does_not_serialize_requests(http: aiohttp.ClientSession) -> None:
    async with FakeLeat(latency=0.3) as fake:
        fake.seed(1000)
        started = time.perf_counter()
        await asyncio.gather(*(call(http, fake, "GET", params={"page": str(p)}) for p in range(8)))
        assert time.perf_counter() - started < 0.55


# -- validation and business rules -----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"giftcard_uuid", "amount_in_cents", "shop_uuid"}),
        (
            {"giftcard_uuid": 1, "amount_in_cents": True, "shop_uuid": "s"},
            {"giftcard_uuid", "amount_in_cents"},
        ),
        ({"giftcard_uuid": "g", "amount_in_cents": 1.0, "shop_uuid": "s"}, {"amount_in_cents"}),
        ({"giftcard_uuid": "g", "amount_in_cents": 0, "shop_uuid": "s"}, {"amount_in_cents"}),
        (
            {
                "giftcard_uuid": "g",
                "amount_in_cents": 5,
                "shop_uuid": "s",
                "custom_attributes": "x",
            },
            {"custom_attributes"},
        ),
    ],
)
async def test_create_validation(
    fake: FakeLeat, http: aiohttp.ClientSession, body: dict[str, Any], fields: set[str]
) -> None:
    status, answer, _ = await call(http, fake, "POST", json=body)
    assert status == 400
    assert (answer["code"], answer["status_code"]) == (1003, 400)
    assert set(answer["errors"]) == fields


async def test_json_without_json_content_type_is_no_input(
    fake: FakeLeat, http: aiohttp.ClientSession
) -> None:
    _shop, _card = world(fake)
    raw = b'{"giftcard_uuid": "a", "amount_in_cents": -1, "shop_uuid": "b"}'
    _, answer, _ = await call(http, fake, "POST", data=raw, headers={"Content-Type": "text/plain"})
    assert answer["code"] == 1003


@pytest.mark.parametrize(
    ("card_kw", "amount", "code"),
    [
        ({"expires_at": T0}, -1, 5002),
        ({}, 1, 5006),
        ({"reincrementable": True, "max_amount_in_cents": 6000}, 1001, 5008),
        ({}, -5001, 5003),
    ],
)
async def test_create_business_rules(
    fake: FakeLeat, http: aiohttp.ClientSession, card_kw: dict[str, Any], amount: int, code: int
) -> None:
    shop, card = world(fake, **card_kw)
    status, answer, _ = await call(http, fake, "POST", json=create_body(card, shop, amount))
    assert (status, answer["code"], answer["status_code"]) == (400, code, 400)
    assert " | " in answer["message"]
    assert card.balance_in_cents == 5000
    assert not fake.transactions


async def test_unknown_card_before_unknown_shop(
    fake: FakeLeat, http: aiohttp.ClientSession
) -> None:
    _shop, card = world(fake)
    body = {"giftcard_uuid": "nope", "amount_in_cents": -1, "shop_uuid": "nope"}
    assert (await call(http, fake, "POST", json=body))[1]["code"] == 5001
    body["giftcard_uuid"] = str(card.uuid)
    assert (await call(http, fake, "POST", json=body))[1]["code"] == 1008
    status, answer, _ = await call(http, fake, "GET", "/nope")
    assert (status, answer["code"]) == (400, 5010)


async def test_reverse_rules(fake: FakeLeat, http: aiohttp.ClientSession, clock: Clock) -> None:
    shop, card = world(fake, max_amount_in_cents=5500)
    _, first, _ = await call(http, fake, "POST", json=create_body(card, shop, -1000))
    _, second, _ = await call(http, fake, "POST", json=create_body(card, shop, -600))
    assert card.balance_in_cents == 3400
    status, answer, _ = await call(http, fake, "POST", f"/{first['data']['uuid']}/reverse")
    assert (status, answer["code"]) == (400, 55025)
    status, refund, _ = await call(http, fake, "POST", f"/{second['data']['uuid']}/reverse")
    assert status == 200
    assert refund["data"]["amount_in_cents"] == 600
    assert refund["data"]["shop"]["id"] == shop.id
    assert card.balance_in_cents == 4000
    assert fake.requests[-1].path == f"/giftcard-transactions/{second['data']['uuid']}/reverse"
    # Reversing the refund is a redemption again; a capped card refuses a refund over the cap.
    over = fake.add_transaction(card=card, shop=shop, amount_in_cents=-1600)
    card.balance_in_cents = 5000
    status, answer, _ = await call(http, fake, "POST", f"/{over.uuid}/reverse")
    assert answer["code"] == 5008
    top = fake.add_transaction(card=card, shop=shop, amount_in_cents=2000)
    card.balance_in_cents = 100
    assert (await call(http, fake, "POST", f"/{top.uuid}/reverse"))[1]["code"] == 5003
    clock.now = T0 + timedelta(days=1)
    card.expires_at = T0
    assert (await call(http, fake, "POST", f"/{top.uuid}/reverse"))[1]["code"] == 5002
    assert (await call(http, fake, "POST", "/nope/reverse"))[1]["code"] == 5010


# -- listing ----------------------------------------------------------------------------------


def history(fake: FakeLeat, n: int = 25) -> list[Any]:
    shop_a, shop_b = fake.add_shop(name="A"), fake.add_shop(name="B")
    program = fake.add_program()
    cards = [fake.add_card(program=program), fake.add_card()]
    return [
        fake.add_transaction(
            card=cards[i % 2],
            shop=(shop_a, shop_b)[i % 3 == 0],
            amount_in_cents=100 + i,
            created_at=T0 + timedelta(seconds=i // 2),
        )
        for i in range(n)
    ]


async def test_list_pagination_meta(fake: FakeLeat, http: aiohttp.ClientSession) -> None:
    history(fake)
    status, page, _ = await call(http, fake, "GET")
    assert status == 200
    assert [r["id"] for r in page["data"]] == list(range(1, 11))
    assert page["meta"] == page_meta(total=25, per_page=10, page=1, count=10)
    assert page["meta"] == {
        "page": 1,
        "limit": 10,
        "viewing_from": 1,
        "viewing_to": 10,
        "last_page": 3,
        "total": 25,
    }
    _, page, _ = await call(http, fake, "GET", params={"perPage": "10", "page": "3"})
    assert page["meta"] | {} == {
        "page": 3,
        "limit": 10,
        "viewing_from": 21,
        "viewing_to": 25,
        "last_page": 3,
        "total": 25,
    }
    status, page, _ = await call(http, fake, "GET", params={"page": "9"})
    assert status == 200
    assert page["data"] == []
    assert (page["meta"]["viewing_from"], page["meta"]["viewing_to"]) == (None, None)
    _, page, _ = await call(http, fake, "GET", params={"shop_uuid": "none"})
    assert page["meta"]["last_page"] == 1
    assert page["meta"]["total"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"perPage": "0"},
        {"perPage": "101"},
        {"perPage": "x"},
        {"page": "0"},
        {"page": "1.5"},
        {"sort": "id"},
        {"created_at": "2024"},
        {"created_at[eq]": "2024-01-01T00:00:00Z"},
        {"created_at[gte]": "yesterday"},
    ],
)
async def test_list_validation(
    fake: FakeLeat, http: aiohttp.ClientSession, params: dict[str, str]
) -> None:
    status, answer, _ = await call(http, fake, "GET", params=params)
    assert (status, answer["code"]) == (400, 1003)
    assert answer["errors"]


async def test_unencoded_plus_is_a_space(fake: FakeLeat, http: aiohttp.ClientSession) -> None:
    history(fake)
    raw = yarl.URL(fake.url + LIST + "?created_at%5Bgte%5D=2024-01-02T03:04:07+00:00", encoded=True)
    async with http.get(raw) as resp:
        assert resp.status == 400
        assert (await resp.json())["code"] == 1003
    assert fake.requests[-1].query == [("created_at[gte]", "2024-01-02T03:04:07 00:00")]
    _, page, _ = await call(
        http, fake, "GET", params={"created_at[gte]": "2024-01-02T03:04:07+00:00"}
    )
    assert page["meta"]["total"] == 21


async def test_list_filters_sorts_and_bounds(fake: FakeLeat, http: aiohttp.ClientSession) -> None:
    rows = history(fake)
    card, program, shop_b = rows[0].card, fake.programs[0], fake.shops[1]

    async def ids(**params: str) -> list[int]:
        _, page, _ = await call(http, fake, "GET", params={"perPage": "100", **params})
        return [r["id"] for r in page["data"]]

    assert await ids(giftcard_hash=card.hash) == list(range(1, 26, 2))
    assert await ids(giftcard_program_uuid=program.uuid) == list(range(1, 26, 2))
    assert await ids(shop_uuid=shop_b.uuid) == list(range(1, 26, 3))
    assert await ids(sort="-created_at") == list(range(25, 0, -1))
    assert await ids(sort="created_at") == list(range(1, 26))
    # Rows i and i+1 share a second: bounds are whole seconds, fractions round the right way.
    assert await ids(**{"created_at[gt]": "2024-01-02T03:04:06+00:00"}) == list(range(5, 26))
    assert await ids(**{"created_at[gte]": "2024-01-02T03:04:06.5Z"}) == list(range(5, 26))
    assert await ids(**{"created_at[lt]": "2024-01-02T04:04:06+01:00"}) == [1, 2]
    assert await ids(
        **{
            "created_at[lte]": "2024-01-02T03:04:06.9+00:00",
            "created_at[gt]": "2024-01-02T03:04:05+00:00",
        }
    ) == [3, 4]
    # A row inserted out of time order: sorts by (created_at, id), no sort keeps id order.
    late = fake.add_transaction(card=card, shop=shop_b, amount_in_cents=1, created_at=T0)
    assert (await ids(sort="created_at", shop_uuid=shop_b.uuid))[:3] == [1, late.id, 4]
    assert (await ids(sort="-created_at"))[-3:] == [late.id, 2, 1]
    assert await ids(**{"created_at[lte]": "2024-01-02T03:04:05Z"}) == [1, 2, late.id]


async def test_list_cache_sees_writes_and_hooks_insert_between_pages(
    fake: FakeLeat, http: aiohttp.ClientSession
) -> None:
    rows = history(fake, 12)
    card, shop = rows[0].card, rows[0].shop
    params = {"perPage": "5", "giftcard_hash": card.hash}

    def insert(request: RecordedRequest) -> None:
        if request.query and request.method == "GET":
            fake.add_transaction(card=card, shop=shop, amount_in_cents=-1)

    fake.add_hook(insert)
    _, page, _ = await call(http, fake, "GET", params=params)
    assert page["meta"]["total"] == 6  # the hook runs after the answer is made
    _, page, _ = await call(http, fake, "GET", params=params | {"page": "2"})
    assert page["meta"]["total"] == 7  # ... and before it is sent
    assert page["data"][-1]["amount_in_cents"] == -1
    assert len(fake.transactions) == 14


# -- rate limit -------------------------------------------------------------------------------


async def test_rate_limit_fixed_window(clock: Clock, http: aiohttp.ClientSession) -> None:
    async with FakeLeat(
        rate_limit=2, rate_window=1.5, clock=clock.wall, monotonic=clock.monotonic
    ) as fake:
        shop, card = world(fake)
        seen = [(await call(http, fake, "GET"))[2] for _ in range(2)]
        assert [(h["X-RateLimit-Limit"], h["X-RateLimit-Remaining"]) for h in seen] == [
            ("2", "1"),
            ("2", "0"),
        ]
        clock.mono += 0.2
        status, body, headers = await call(http, fake, "POST", json=create_body(card, shop, -1))
        assert (status, body) == (429, {"message": "Too Many Attempts."})
        assert headers["Retry-After"] == "2"
        assert headers["X-RateLimit-Remaining"] == "0"
        assert headers["X-RateLimit-Reset"] == str(int(T0.timestamp()) + 2)
        assert not fake.transactions  # not processed
        async with aiohttp.ClientSession() as anon:  # not counted, no headers
            assert "X-RateLimit-Limit" not in (await call(anon, fake, "GET"))[2]
        clock.mono += 1.3
        status, _, headers = await call(http, fake, "GET")
        assert (status, headers["X-RateLimit-Remaining"]) == (200, "1")
        assert fake.status_counts == {200: 3, 429: 1, 401: 1}


def test_fixed_window_unit() -> None:
    w = FixedWindow(1, 1.0)
    assert w.hit("t", 0.0).allowed
    refused = w.hit("t", 0.999)
    assert (refused.allowed, refused.retry_after, refused.remaining) == (False, 1, 0)
    assert w.hit("t", 1.0).allowed
    with pytest.raises(ValueError, match="rate_limit"):
        FixedWindow(0, 1.0)


# -- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "body", "header"),
    [
        (
            Fault(status=502, body="<html>Bad gateway</html>", content_type="text/html"),
            502,
            "<html>Bad gateway</html>",
            ("Content-Type", "text/html"),
        ),
        (
            Fault(status=503, headers={"Retry-After": "2"}, body={"message": "Maintenance"}),
            503,
            {"message": "Maintenance"},
            ("Retry-After", "2"),
        ),
        (
            Fault(
                status=500,
                body={
                    "message": "Interne fout. | Internal error.",
                    "code": 1000,
                    "status_code": 500,
                },
            ),
            500,
            None,
            None,
        ),
        (Fault(status=429, headers={"Retry-After": "1"}), 429, None, ("Retry-After", "1")),
    ],
)
async def test_answer_faults_before_handler(
    fake: FakeLeat,
    http: aiohttp.ClientSession,
    fault: Fault,
    status: int,
    body: Any,
    header: tuple[str, str] | None,
) -> None:
    shop, card = world(fake)
    fake.add_fault(fault)
    got_status, got_body, headers = await call(http, fake, "POST", json=create_body(card, shop, -1))
    assert got_status == status
    if body is not None:
        assert got_body == body
    if header is not None:
        assert headers[header[0]] == header[1]
    assert not fake.transactions
    assert (await call(http, fake, "POST", json=create_body(card, shop, -1)))[0] == 200  # times=1
    assert [r.status for r in fake.requests] == [status, 200]


async def test_drop_before_and_after(fake: FakeLeat, http: aiohttp.ClientSession) -> None:
    shop, card = world(fake)
    fake.add_fault(Fault(method="post", path="/giftcard-transactions", drop=True))
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(http, fake, "POST", json=create_body(card, shop, -1))
    assert not fake.transactions
    fake.add_fault(Fault(method="POST", drop=True, when="after"))
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(http, fake, "POST", json=create_body(card, shop, -1))
    assert len(fake.transactions) == 1
    assert card.balance_in_cents == 4999
    assert fake.status_counts == {0: 2}


async def test_slow_answer_after_processing(fake: FakeLeat, http: aiohttp.ClientSession) -> None:
    shop, card = world(fake)
    fake.add_fault(Fault(method="POST", delay=30.0, when="after"))
    with pytest.raises(asyncio.TimeoutError):
        await call(
            http,
            fake,
            "POST",
            json=create_body(card, shop, -1),
            timeout=aiohttp.ClientTimeout(total=0.3),
        )
    assert len(fake.transactions) == 1  # it happened; the answer is still on its way


async def test_delayed_page_is_overtaken(fake: FakeLeat, http: aiohttp.ClientSession) -> None:
    history(fake)
    fake.add_fault(Fault(query={"page": "2"}, delay=0.2, headers={"X-Fault": "yes"}))
    done: list[str] = []

    async def fetch(page: str) -> dict[str, str]:
        headers = (await call(http, fake, "GET", params={"page": page}))[2]
        done.append(page)
        return headers

    slow, _ = await asyncio.gather(fetch("2"), fetch("3"))
    assert done == ["3", "2"]
    assert slow["X-Fault"] == "yes"
    assert [r.query for r in fake.requests] == [[("page", "3")], [("page", "2")]]


async def test_fault_matching_and_clear(fake: FakeLeat, http: aiohttp.ClientSession) -> None:
    fake.add_fault(Fault(path=r"/giftcard-transactions/[^/]+", status=500, times=None))
    for _ in range(3):
        assert (await call(http, fake, "GET", "/abc"))[0] == 500
    assert (await call(http, fake, "GET"))[0] == 200
    fake.clear_faults()
    assert (await call(http, fake, "GET", "/abc"))[0] == 400
    with pytest.raises(ValueError, match="when"):
        Fault(when="later")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="status"):
        Fault(body="x")
    with pytest.raises(ValueError, match="both"):
        Fault(drop=True, status=500)


# -- seeding, bookkeeping, the command line ---------------------------------------------------


async def test_seed_shape(fake: FakeLeat, http: aiohttp.ClientSession) -> None:
    started = time.perf_counter()
    fake.seed(2000, seed=7)
    assert time.perf_counter() - started < 1.0
    txs = fake.transactions
    assert len(txs) == 2000
    assert [t.id for t in txs] == list(range(1, 2001))
    assert 3 <= len(fake.shops) <= 6
    assert 2 <= len(fake.programs) <= 3
    assert len(fake.cards) >= 50
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(txs))
    assert T0 - timedelta(days=366) < txs[0].created_at <= txs[-1].created_at <= T0
    assert any(t.uuid is None for t in txs[:100])
    assert all(t.uuid for t in txs[-100:])
    assert {t.amount_in_cents > 0 for t in txs} == {True, False}
    assert all(c.balance_in_cents >= 0 for c in fake.cards)
    for card in fake.cards:
        assert card.balance_in_cents == sum(t.amount_in_cents for t in txs if t.card is card)
    uuid = str(txs[1500].uuid)
    assert fake.get_transaction(uuid) is txs[1500]
    assert fake.get_transaction(uuid[:-1] + "0" if uuid[-1] != "0" else uuid[:-1] + "1") is None
    status, got, _ = await call(http, fake, "GET", "/" + uuid)
    assert status == 200
    assert got["data"]["id"] == 1501
    _, page, _ = await call(http, fake, "GET", params={"perPage": "100", "page": "20"})
    assert page["data"][-1]["id"] == 2000
    assert page["meta"]["last_page"] == 20
    async with FakeLeat(clock=lambda: T0) as twin:
        twin.seed(2000, seed=7)
        assert [t.uuid for t in twin.transactions] == [t.uuid for t in txs]


def test_max_in_window_and_pure_helpers(clock: Clock) -> None:
    fake = FakeLeat(clock=clock.wall)
    fake.requests.extend(
        RecordedRequest("GET", "/", [], None, True, 200, at) for at in [0, 0.5, 0.99, 1.0, 1.2]
    )
    assert fake.max_in_window(1.0) == 4
    assert fake.max_in_window(0.2) == 2
    fake.reset_requests()
    assert fake.max_in_window() == 0
    assert not fake.status_counts
    assert parse_iso_bound_us("2024-01-01T00:00:00 00:00") is None
    assert parse_iso_bound_us("1970-01-01T01:00:00.25+01:00") == 250_000
    with pytest.raises(RuntimeError):
        _ = fake.url


async def test_pytest_plugin_fixture(leat_fake: FakeLeat) -> None:
    assert leat_fake.url.startswith("http://127.0.0.1:")
    assert leat_fake.token == TOKEN


async def test_command_line_serves_until_interrupted() -> None:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "leat_async.testing",
        "--port",
        "0",
        "--seed",
        "50",
        "--rate-limit",
        "5",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    url = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode().strip()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session, session.get(url + LIST) as resp:
        assert resp.status == 200
        assert (await resp.json())["meta"]["total"] == 50
        assert resp.headers["X-RateLimit-Limit"] == "5"
    proc.send_signal(signal.SIGINT)
    _, stderr = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0
    assert b"Traceback" not in stderr
    said = stderr.decode().splitlines()  # for a person: the token, and codes that work
    assert said[0].startswith(f"token: {TOKEN} ") and said[1].startswith("cards to try: ")


async def test_a_hook_removed_is_called_no_more() -> None:
    seen: list[str] = []

    def hook(request: RecordedRequest) -> None:
        seen.append(request.path)

    async with FakeLeat() as fake, LeatClient(fake.token, base_url=fake.url) as client:
        fake.add_hook(hook)
        await client.giftcard_transactions.list()
        fake.remove_hook(hook)
        await client.giftcard_transactions.list()
        assert seen == ["/giftcard-transactions"]
        with pytest.raises(ValueError, match=r"not in list"):
            fake.remove_hook(hook)


# -- a bounded request log (a long-running standalone fake) --------------------------------------


async def test_a_bounded_fake_keeps_only_the_latest_requests() -> None:
    async with (
        FakeLeat(token=TOKEN, keep_requests=3) as fake,
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http,
    ):
        for number in range(1, 6):
            async with http.get(fake.url + LIST, params={"page": str(number)}) as resp:
                assert resp.status == 200
        assert [dict(r.query)["page"] for r in fake.requests] == ["3", "4", "5"]
        assert fake.requests_handled == 5
        fake.reset_requests()
        assert fake.requests == [] and fake.requests_handled == 5


async def test_an_in_process_fake_keeps_every_request() -> None:
    async with (
        FakeLeat(token=TOKEN) as fake,
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http,
    ):
        for _ in range(12):
            async with http.get(fake.url + LIST) as resp:
                assert resp.status == 200
        assert len(fake.requests) == fake.requests_handled == 12


def test_the_standalone_fake_keeps_a_bounded_log() -> None:
    from leat_async.testing.__main__ import _parser, fake_from

    assert fake_from(_parser().parse_args([])).keep_requests == 10_000
    assert fake_from(_parser().parse_args(["--keep-requests", "5"])).keep_requests == 5
    assert fake_from(_parser().parse_args(["--keep-requests", "0"])).keep_requests == 0
    with pytest.raises(ValueError, match="keep_requests"):
        FakeLeat(keep_requests=-1)
