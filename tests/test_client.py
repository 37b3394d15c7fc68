"""The four calls against the bundled fake over real loopback HTTP."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest

import leat_async as la
from leat_async import CreatedAt, LeatClient
from leat_async.testing import FakeLeat, Fault

from .conftest import TOKEN


@pytest.fixture
def card(fake: FakeLeat) -> Any:
    return fake.add_card(balance_in_cents=5000, reincrementable=True, max_amount_in_cents=20000)


async def test_create_get_reverse(client: LeatClient, fake: FakeLeat, shop: Any, card: Any) -> None:
    tx = await client.giftcard_transactions.create(
        giftcard_uuid=card.uuid,
        amount_in_cents=-1250,
        shop_uuid=shop.uuid,
        custom_attributes={"order": "A-17", "lines": 3},
    )
    assert isinstance(tx, la.GiftcardTransaction)
    assert tx.amount_in_cents == -1250 and tx.card.uuid == card.uuid and tx.shop.uuid == shop.uuid
    assert tx.created_at.tzinfo is not None
    assert fake.requests[-1].json["custom_attributes"] == {"order": "A-17", "lines": 3}
    assert tx.uuid is not None
    assert await client.giftcard_transactions.get(tx.uuid) == tx
    back = await client.giftcard_transactions.reverse(tx.uuid)
    assert back.amount_in_cents == 1250 and back.uuid != tx.uuid
    assert card.balance_in_cents == 5000


async def test_list_first_page_with_every_filter(client: LeatClient, fake: FakeLeat) -> None:
    program = fake.add_program(name="P")
    s1, s2 = fake.add_shop(name="A"), fake.add_shop(name="B")
    c1 = fake.add_card(balance_in_cents=10**6, program=program)
    c2 = fake.add_card(balance_in_cents=10**6)
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    for i in range(30):
        fake.add_transaction(
            card=c1 if i % 2 else c2,
            shop=s1 if i % 3 else s2,
            amount_in_cents=-(i + 1),
            created_at=t0 + timedelta(hours=i),
        )
    gtx = client.giftcard_transactions
    page = await gtx.list(per_page=5)
    assert isinstance(page, la.Page)
    assert (page.meta.page, page.meta.limit, page.meta.total, page.meta.last_page) == (1, 5, 30, 6)
    assert [tx.amount_in_cents for tx in page.data] == [-1, -2, -3, -4, -5]
    page = await gtx.list(per_page=5, page=2, sort="-created_at")
    assert [tx.amount_in_cents for tx in page.data] == [-25, -24, -23, -22, -21]
    page = await gtx.list(shop_uuid=s2.uuid, giftcard_hash=c2.hash)
    assert {tx.amount_in_cents for tx in page.data} == {-1, -7, -13, -19, -25}
    page = await gtx.list(giftcard_program_uuid=program.uuid)
    assert page.meta.total == 15 and all(tx.card.uuid == c1.uuid for tx in page.data)
    # a '+' offset must arrive as '+': 02:00+02:00 is midnight UTC
    plus2 = timezone(timedelta(hours=2))
    window = CreatedAt(gte=datetime(2024, 5, 1, 5, tzinfo=plus2), lt=t0 + timedelta(hours=6))
    page = await gtx.list(created_at=window)
    assert [tx.amount_in_cents for tx in page.data] == [-4, -5, -6]


async def test_odd_rows_parse(client: LeatClient, fake: FakeLeat, shop: Any) -> None:
    old = fake.add_card(balance_in_cents=100, uuid=FakeLeat.NULL)
    fake.add_transaction(
        card=old,
        shop=shop,
        amount_in_cents=-5,
        uuid=FakeLeat.NULL,
        type="LEGACY_IMPORT",
        created_at=datetime(2016, 11, 29, 18, 42, 34, tzinfo=UTC),
        extra={"brand_new": {"x": 1}},
    )
    (tx,) = (await client.giftcard_transactions.list()).data
    assert tx.uuid is None and tx.card.uuid is None and tx.type == "LEGACY_IMPORT"


@pytest.mark.parametrize(
    ("setup", "amount", "error"),
    [
        ({"balance_in_cents": 100}, -500, la.InsufficientBalanceError),
        ({"balance_in_cents": 100}, 500, la.GiftcardNotIncrementableError),
        ({"reincrementable": True, "max_amount_in_cents": 1000}, 5000, la.MaxAmountExceededError),
        (
            {"balance_in_cents": 900, "expires_at": datetime(2020, 1, 1, tzinfo=UTC)},
            -1,
            la.GiftcardExpiredError,
        ),
    ],
)
async def test_business_rules_become_typed_errors(
    client: LeatClient, fake: FakeLeat, shop: Any, setup: dict[str, Any], amount: int, error: type
) -> None:
    card = fake.add_card(**setup)
    with pytest.raises(error) as info:
        await client.giftcard_transactions.create(
            giftcard_uuid=card.uuid, amount_in_cents=amount, shop_uuid=shop.uuid
        )
    assert info.value.status == 400
    assert "[POST /giftcard-transactions]" in str(info.value)
    assert len(fake.transactions) == 0


async def test_unknown_card_shop_and_transaction(
    client: LeatClient, fake: FakeLeat, shop: Any, card: Any
) -> None:
    gtx = client.giftcard_transactions
    with pytest.raises(la.GiftcardNotFoundError):
        await gtx.create(giftcard_uuid="nope", amount_in_cents=-1, shop_uuid=shop.uuid)
    with pytest.raises(la.ShopNotFoundError):
        await gtx.create(giftcard_uuid=card.uuid, amount_in_cents=-1, shop_uuid="nope")
    with pytest.raises(la.TransactionNotFoundError) as info:
        await gtx.get("0000-missing")
    assert info.value.code == 5010 and info.value.attempts == 1
    with pytest.raises(la.TransactionNotFoundError):
        await gtx.reverse("0000-missing")


async def test_only_the_last_transaction_reverses(client: LeatClient, shop: Any, card: Any) -> None:
    gtx = client.giftcard_transactions
    first = await gtx.create(giftcard_uuid=card.uuid, amount_in_cents=-100, shop_uuid=shop.uuid)
    await gtx.create(giftcard_uuid=card.uuid, amount_in_cents=-100, shop_uuid=shop.uuid)
    assert first.uuid
    with pytest.raises(la.NotLastTransactionError) as info:
        await gtx.reverse(first.uuid)
    assert "last transaction" in str(info.value)


async def test_wrong_token_is_an_authentication_error(fake: FakeLeat, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    async with LeatClient("wrong-token-123", base_url=fake.url) as bad:
        with pytest.raises(la.AuthenticationError) as info:
            await bad.giftcard_transactions.get("abc")
    assert info.value.status == 401
    assert "wrong-token-123" not in str(info.value) + repr(info.value) + caplog.text


@pytest.mark.parametrize(
    ("fault", "error", "code"),
    [
        (
            Fault(status=500, body={"message": "Interne fout. | Internal error.", "code": 1000}),
            la.LeatInternalError,
            1000,
        ),
        (
            Fault(status=400, body={"message": "Bad", "code": 1003, "errors": {"perPage": ["no"]}}),
            la.InvalidInputError,
            1003,
        ),
        (Fault(status=400, body={"message": "Nope", "code": 7015}), la.LeatAPIError, 7015),
        (Fault(status=400, body={"message": "Nope", "code": 1114}), la.LeatAPIError, 1114),
        (Fault(status=401, body={"message": "Unauthenticated."}), la.AuthenticationError, None),
        (
            Fault(status=302, headers={"Location": "http://127.0.0.1:1/elsewhere"}, body=""),
            la.LeatAPIError,
            None,
        ),
    ],
)
async def test_error_answers_over_http(
    client: LeatClient, fake: FakeLeat, fault: Fault, error: type, code: int | None
) -> None:
    fake.add_fault(dataclasses.replace(fault, times=None))
    with pytest.raises(error) as info:
        await client.giftcard_transactions.get("abc")
    assert type(info.value) is error and info.value.code == code
    assert len(fake.requests) == 1 or fault.status == 500  # only 500 is worth retrying


async def test_html_502_on_a_read_says_what_came_back(fake: FakeLeat) -> None:
    fake.add_fault(
        Fault(status=502, body="<html>Bad gateway</html>", content_type="text/html", times=None)
    )
    async with LeatClient(
        TOKEN, base_url=fake.url, retry=la.RetryPolicy(max_attempts=2, backoff_base=0)
    ) as c:
        with pytest.raises(la.LeatAPIError) as info:
            await c.giftcard_transactions.get("abc")
    assert info.value.status == 502 and info.value.attempts == 2
    assert "HTTP 502" in str(info.value) and "2 attempts" in str(info.value)


@pytest.mark.parametrize("body", ["not json", '{"meta": []}', '{"data": {"id": "x"}, "meta": []}'])
async def test_malformed_200_is_an_api_error(client: LeatClient, fake: FakeLeat, body: str) -> None:
    fake.add_fault(Fault(status=200, body=body))
    with pytest.raises(la.LeatAPIError) as info:
        await client.giftcard_transactions.get("abc")
    assert info.value.status == 200


@pytest.mark.parametrize(
    ("call", "exc"),
    [
        ({"amount_in_cents": True}, TypeError),
        ({"amount_in_cents": 1.5}, TypeError),
        ({"amount_in_cents": "100"}, TypeError),
        ({"amount_in_cents": 0}, ValueError),
        ({"giftcard_uuid": ""}, ValueError),
        ({"giftcard_uuid": 12}, TypeError),
        ({"shop_uuid": None}, TypeError),
        ({"custom_attributes": {"a": [1]}}, TypeError),
        ({"custom_attributes": {1: "a"}}, TypeError),
        ({"custom_attributes": ["a"]}, TypeError),
        ({"custom_attributes": {"a": float("nan")}}, ValueError),
    ],
)
async def test_bad_create_input_sends_nothing(
    client: LeatClient, fake: FakeLeat, call: dict[str, Any], exc: type
) -> None:
    args: dict[str, Any] = {
        "giftcard_uuid": "card-1",
        "amount_in_cents": 100,
        "shop_uuid": "shop-1",
    }
    args.update(call)
    with pytest.raises(exc):
        await client.giftcard_transactions.create(**args)
    assert fake.requests == []


@pytest.mark.parametrize("uuid", ["", "../etc", "a/b", "a b", "é", "a?b=1", 5, None])
async def test_unsafe_path_ids_send_nothing(client: LeatClient, fake: FakeLeat, uuid: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        await client.giftcard_transactions.get(uuid)
    with pytest.raises((TypeError, ValueError)):
        await client.giftcard_transactions.reverse(uuid)
    assert fake.requests == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"per_page": 0},
        {"per_page": 101},
        {"per_page": True},
        {"page": 0},
        {"sort": "amount"},
        {"created_at": "2024-01-01"},
        {"shop_uuid": ""},
    ],
)
async def test_bad_list_input_sends_nothing(
    client: LeatClient, fake: FakeLeat, kwargs: dict[str, Any]
) -> None:
    with pytest.raises((TypeError, ValueError)):
        await client.giftcard_transactions.list(**kwargs)
    assert fake.requests == []


@pytest.mark.parametrize("token", ["", "a b", "tab\t", "nl\n", "\x00x"])
def test_bad_tokens(token: str) -> None:
    with pytest.raises(ValueError, match="token"):
        LeatClient(token)


def test_plain_http_only_on_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        LeatClient(TOKEN, base_url="http://api.piggy.eu")
    assert LeatClient(TOKEN, base_url="http://localhost:8080").base_url == "http://localhost:8080"


async def test_token_never_shows(fake: FakeLeat, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    fake.add_fault(Fault(status=503, body="down", times=None))
    client = LeatClient(
        TOKEN, base_url=fake.url, retry=la.RetryPolicy(max_attempts=2, backoff_base=0)
    )
    async with client:
        with pytest.raises(la.LeatError) as info:
            await client.giftcard_transactions.get("abc")
    shown = repr(client) + str(client) + str(info.value) + repr(info.value) + caplog.text
    assert TOKEN not in shown
    assert all(TOKEN not in str(a) for a in info.value.args)


async def test_borrowed_session_stays_open(fake: FakeLeat, card: Any, shop: Any) -> None:
    async with aiohttp.ClientSession() as session:
        async with LeatClient(TOKEN, base_url=fake.url, session=session) as c:
            await c.giftcard_transactions.list()
        assert not session.closed
        async with session.get(fake.url + "/api/v3/oauth/clients/giftcard-transactions") as r:
            assert r.status == 401  # the borrowed session carries no token of ours


async def test_a_borrowed_sessions_own_headers_never_replace_ours(fake: FakeLeat) -> None:
    headers = {"Authorization": "Bearer someone-elses", "Accept": "text/html"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with LeatClient(TOKEN, base_url=fake.url, session=session) as c:
            assert (await c.giftcard_transactions.list()).meta.page == 1  # our token went
        async with LeatClient(TOKEN, base_url=fake.url) as c:  # and the client's own session
            assert (await c.giftcard_transactions.list()).meta.page == 1


async def test_owned_session_closes_and_client_refuses_after(fake: FakeLeat) -> None:
    client = LeatClient(TOKEN, base_url=fake.url)
    await client.giftcard_transactions.list()
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await client.giftcard_transactions.list()


async def test_maintenance_503_on_a_read(fake: FakeLeat) -> None:
    fake.add_fault(Fault(status=503, body={"message": "Be right back."}, times=None))
    policy = la.RetryPolicy(max_attempts=2, backoff_base=0)
    async with LeatClient(TOKEN, base_url=fake.url, retry=policy) as c:
        with pytest.raises(la.ServiceUnavailableError) as info:
            await c.giftcard_transactions.get("abc")
    assert info.value.status == 503 and info.value.attempts == 2
    assert str(info.value).startswith("Be right back. (HTTP 503)")
