"""The fake's giftcard endpoints, driven with a raw aiohttp.ClientSession (no client code)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from leat_async.testing import FakeLeat

API = "/api/v3/oauth/clients"
T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
CARD_KEYS = [
    *("uuid", "hash", "type", "amount_in_cents", "active", "upgradeable", "expiration_date"),
    *("giftcard_program", "id"),
]
PROGRAM_KEYS = [
    *("uuid", "name", "active", "max_amount_in_cents", "min_amount_in_cents", "expiration_days"),
    *("calculator_flow", "card_count", "id"),
]


@pytest.fixture
async def fake() -> AsyncIterator[FakeLeat]:
    async with FakeLeat(clock=lambda: T0) as server:
        yield server


async def call(fake: FakeLeat, method: str, path: str, **kw: Any) -> tuple[int, Any]:
    """One request with the fake's token; the status and the JSON answer."""
    headers = {"Authorization": f"Bearer {fake.token}", "Accept": "application/json"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.request(method, fake.url + API + path, **kw) as resp,
    ):
        assert resp.headers["Content-Type"] == "application/json"
        return resp.status, json.loads(await resp.read())


async def test_a_card_by_hash_and_by_uuid(fake: FakeLeat) -> None:
    program = fake.add_program(name="Krabby Card")
    card = fake.add_card(
        balance_in_cents=2500,
        program=program,
        hash="K-42",
        type="DIGITAL",
        reincrementable=True,
        expires_at=datetime(2030, 5, 6, 7, 8, 9, 123, tzinfo=UTC),
    )
    status, found = await call(fake, "GET", "/giftcards/find-one-by", params={"hash": "K-42"})
    assert status == 200 and found["meta"] == []
    assert list(found["data"]) == CARD_KEYS
    assert found["data"] == {
        "uuid": card.uuid,
        "hash": "K-42",
        "type": "DIGITAL",
        "amount_in_cents": 2500,
        "active": True,
        "upgradeable": True,
        "expiration_date": "2030-05-06T07:08:09+00:00",
        "giftcard_program": {"uuid": program.uuid, "name": "Krabby Card"},
        "id": card.id,
    }
    assert await call(fake, "GET", f"/giftcards/{card.uuid}") == (200, found)
    assert fake.get_card_by_hash("K-42") is card


@pytest.mark.parametrize("code", ["a+b c", "x&hash=y", "a/b?c#d", "Ünïcødé-ß", "100%;=", " "])
async def test_odd_hashes_arrive_intact(fake: FakeLeat, code: str) -> None:
    card = fake.add_card(hash=code)
    fake.add_card(hash="a")  # a decoy a half-read code would find
    status, found = await call(fake, "GET", "/giftcards/find-one-by", params={"hash": code})
    assert (status, found["data"]["uuid"]) == (200, card.uuid)
    assert fake.requests[-1].query == [("hash", code)]


async def test_unknown_card_and_missing_hash(fake: FakeLeat) -> None:
    fake.add_card(hash="known")
    for path, params in [("/giftcards/find-one-by", {"hash": "nope"}), ("/giftcards/nope", {})]:
        status, answer = await call(fake, "GET", path, params=params)
        assert (status, answer["code"]) == (400, 5001)
        assert answer["message"].endswith("Giftcard not found.")
    status, answer = await call(fake, "GET", "/giftcards/find-one-by")
    assert (status, answer["code"], list(answer["errors"])) == (400, 1003, ["hash"])


async def test_card_listing_pages_and_program_filter(fake: FakeLeat) -> None:
    krabby, other = fake.add_program(name="Krabby"), fake.add_program(name="Other")
    cards = [fake.add_card(program=(krabby, other)[i % 3 == 0]) for i in range(70)]
    status, page = await call(fake, "GET", "/giftcards")
    assert status == 200
    assert page["meta"] == {"page": 1, "per_page": 30, "last_page": 3, "total": 70}
    assert [c["id"] for c in page["data"]] == [c.id for c in cards[:30]]
    mine = [c.uuid for c in cards if c.program is krabby]
    seen = []
    for number in (1, 2, 3):
        params = {"giftcard_program_uuid": krabby.uuid, "page": str(number), "limit": "20"}
        _, page = await call(fake, "GET", "/giftcards", params=params)
        assert page["meta"] == {"page": number, "per_page": 20, "last_page": 3, "total": 46}
        seen += [c["uuid"] for c in page["data"]]
    assert seen == mine
    _, page = await call(fake, "GET", "/giftcards", params={"page": "9", "limit": "100"})
    assert page["data"] == [] and page["meta"]["last_page"] == 1


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"giftcard_program_uuid": "nope"}, 1100),
        ({"limit": "101"}, 1003),
        ({"limit": "0"}, 1003),
        ({"limit": "x"}, 1003),
        ({"page": "0"}, 1003),
    ],
)
async def test_card_listing_refusals(fake: FakeLeat, params: dict[str, str], code: int) -> None:
    status, answer = await call(fake, "GET", "/giftcards", params=params)
    assert (status, answer["code"]) == (400, code)


async def test_create_a_card(fake: FakeLeat) -> None:
    program = fake.add_program(name="P", max_amount_in_cents=10_000, expiration_days=365)
    body = {"giftcard_program_uuid": program.uuid, "type": 1}
    status, made = await call(fake, "POST", "/giftcards", json=body)
    assert status == 200 and made["meta"] == []
    data = made["data"]
    assert (data["type"], data["amount_in_cents"], data["upgradeable"]) == ("DIGITAL", 0, True)
    assert data["expiration_date"] == "2025-01-01T03:04:05+00:00"
    assert data["giftcard_program"] == {"uuid": program.uuid, "name": "P"}
    card = fake.get_card_by_hash(data["hash"])
    assert card is not None and card.uuid == data["uuid"] and card.max_amount_in_cents == 10_000
    form = {"giftcard_program_uuid": program.uuid, "type": "0"}
    _, made = await call(fake, "POST", "/giftcards", data=form)
    assert made["data"]["type"] == "PHYSICAL" and made["data"]["expiration_date"] is not None


@pytest.mark.parametrize(
    ("body", "code", "fields"),
    [
        ({"type": 0}, 1003, ["giftcard_program_uuid"]),
        ({"giftcard_program_uuid": "P", "type": 2}, 1003, ["type"]),
        ({"giftcard_program_uuid": "P", "type": True}, 1003, ["type"]),
        ({"giftcard_program_uuid": "P", "type": "DIGITAL"}, 1003, ["type"]),
        ({"giftcard_program_uuid": "P", "type": [1]}, 1003, ["type"]),
        ({"giftcard_program_uuid": "P"}, 1003, ["type"]),
        ({"giftcard_program_uuid": "nope", "type": 0}, 1100, None),
    ],
)
async def test_create_refusals(
    fake: FakeLeat,
    body: dict[str, Any],
    code: int,
    fields: list[str] | None,
) -> None:
    fake.add_program(uuid="P")
    status, answer = await call(fake, "POST", "/giftcards", json=body)
    assert (status, answer["code"], answer.get("errors") and list(answer["errors"])) == (
        400,
        code,
        fields,
    )
    assert not fake.cards


async def test_programs_with_card_counts(fake: FakeLeat) -> None:
    full = fake.add_program(name="Full", active=False, min_amount_in_cents=500, calculator_flow="X")
    fake.add_program(name="Empty")
    for _ in range(3):
        fake.add_card(program=full)
    fake.add_card()
    status, answer = await call(fake, "GET", "/giftcard-programs")
    assert status == 200 and answer["meta"] == []
    first, second = answer["data"]
    assert list(first) == PROGRAM_KEYS
    assert first == {
        "uuid": full.uuid,
        "name": "Full",
        "active": False,
        "max_amount_in_cents": None,
        "min_amount_in_cents": 500,
        "expiration_days": None,
        "calculator_flow": "X",
        "card_count": 3,
        "id": full.id,
    }
    assert (second["name"], second["card_count"], second["active"]) == ("Empty", 0, True)
    await call(fake, "POST", "/giftcards", json={"giftcard_program_uuid": full.uuid, "type": 0})
    _, answer = await call(fake, "GET", "/giftcard-programs")
    assert answer["data"][0]["card_count"] == 4


async def test_extra_serves_the_loose_shapes(fake: FakeLeat) -> None:
    loose = {
        "active": "true",
        "expiration_date": "",
        "id": FakeLeat.ABSENT,
        "display_amount": "€ 1",
    }
    card = fake.add_card(hash="L", extra=loose | {"giftcard_program": {"name": "Only a name"}})
    fake.add_program(name="Bare", extra={"active": "false", "card_count": FakeLeat.ABSENT})
    _, found = await call(fake, "GET", f"/giftcards/{card.uuid}")
    assert "id" not in found["data"]
    assert (found["data"]["active"], found["data"]["expiration_date"]) == ("true", "")
    assert found["data"]["giftcard_program"] == {"name": "Only a name"}
    assert found["data"]["display_amount"] == "€ 1"
    _, programs = await call(fake, "GET", "/giftcard-programs")
    assert "card_count" not in programs["data"][0] and programs["data"][0]["active"] == "false"
    card.extra = None  # extras may change at any time
    _, found = await call(fake, "GET", f"/giftcards/{card.uuid}")
    assert found["data"]["active"] is True and found["data"]["id"] == card.id


async def test_absent_removes_a_transaction_key_too(fake: FakeLeat) -> None:
    shop, card = fake.add_shop(), fake.add_card(balance_in_cents=10)
    fake.add_transaction(card=card, shop=shop, amount_in_cents=-1, extra={"uuid": FakeLeat.ABSENT})
    _, page = await call(fake, "GET", "/giftcard-transactions")
    assert "uuid" not in page["data"][0] and page["data"][0]["amount_in_cents"] == -1
