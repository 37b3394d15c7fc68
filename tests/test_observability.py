"""What a user can see of the client at work, and proxies from the environment (issue 13)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import leat_async as la
from leat_async import LeatClient
from leat_async.testing import FakeLeat, Fault

from .conftest import FAST_RETRY, TOKEN, charge


async def test_an_error_carries_the_answers_headers_and_request_id(
    client: LeatClient, fake: FakeLeat
) -> None:
    fake.add_fault(
        Fault(
            method="GET",
            status=400,
            headers={"X-Request-Id": "req-7f3a", "X-Extra": "1"},
            body={"message": "Transactie niet gevonden. | Transaction not found.", "code": 5010},
        )
    )
    with pytest.raises(la.TransactionNotFoundError) as info:
        await client.giftcard_transactions.get("abc")
    error = info.value
    assert error.request_id == "req-7f3a" and error.headers["x-extra"] == "1"
    assert "request id req-7f3a" in str(error)


async def test_events_tell_each_attempt_cheaply_and_never_the_token(
    fake: FakeLeat, shop: Any, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG, logger="leat_async")
    card = fake.add_card(balance_in_cents=1000)
    events: list[la.Event] = []
    fake.add_fault(Fault(method="GET", status=503, body="down", times=1))
    async with LeatClient(
        TOKEN, base_url=fake.url, retry=FAST_RETRY, on_event=events.append
    ) as client:
        await client.giftcard_transactions.list()
        await charge(client, card, shop)
    kinds = [e.kind for e in events]
    read = ["request", "response", "retry", "request", "response"]  # a 503, then a 200
    assert kinds == [*read, "request", "response"]  # then the charge
    first, answered = events[1], events[-1]
    assert (first.status, first.path, first.attempt) == (503, "/giftcard-transactions", 1)
    assert answered.status == 200 and answered.method == "POST" and answered.elapsed is not None
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("POST /giftcard-transactions attempt 1: HTTP 200 in" in line for line in lines)
    assert any("GET /giftcard-transactions?perPage=" in line and "page=1" in line for line in lines)
    assert TOKEN not in caplog.text and all(TOKEN not in repr(e) for e in events)


async def test_debug_lines_tell_pages_apart_and_never_show_a_card_code(
    fake: FakeLeat, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG, logger="leat_async")
    card = fake.add_card(balance_in_cents=1000, hash="CODE-ON-THE-CARD")
    async with LeatClient(TOKEN, base_url=fake.url, retry=FAST_RETRY) as client:
        await client.giftcard_transactions.list(giftcard_hash=card.hash)
        await client.giftcards.find_by_hash(card.hash)
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("giftcard_hash=REDACTED" in line for line in lines), lines
    assert any("hash=REDACTED" in line and "find-one-by" in line for line in lines), lines
    assert "CODE-ON-THE-CARD" not in caplog.text


async def test_events_and_debug_lines_carry_the_query_the_request_id_and_what_a_charge_sent(
    caplog: Any,
) -> None:
    # issue 25 point 3: an orphaned or doubted charge maps back to its order from the events,
    # and a line of -vv can be quoted to support with the server's request id
    caplog.set_level(logging.DEBUG, logger="leat_async")
    events: list[la.Event] = []
    async with (
        FakeLeat(token=TOKEN, request_ids=True) as fake,
        LeatClient(TOKEN, base_url=fake.url, on_event=events.append) as client,
    ):
        card = fake.add_card(balance_in_cents=1000, hash="CODE-ON-THE-CARD")
        shop = fake.add_shop()
        tx = await charge(client, card, shop, custom_attributes={"order": "1234"})
        await client.giftcard_transactions.list(giftcard_hash=card.hash)
        with pytest.raises(la.TransactionNotFoundError) as info:
            await client.giftcard_transactions.get("no-such-transaction")
    posted, listed, missing = (e for e in events if e.kind == "response")
    assert posted.sent == {
        "giftcard_uuid": card.uuid,
        "amount_in_cents": -500,
        "shop_uuid": shop.uuid,
        "custom_attributes": {"order": "1234"},
    }
    assert all(e.sent is None for e in events if e.method == "GET")
    assert ("giftcard_hash", "REDACTED") in listed.query and ("page", "1") in listed.query
    ids = [e.request_id for e in (posted, listed, missing)]
    assert all(ids) and len(set(ids)) == 3  # the fake's X-Request-Id, one per answer
    assert info.value.request_id == missing.request_id  # the error quotes the same id
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any(f"(request id {posted.request_id})" in line for line in lines), lines
    assert tx.uuid is not None and "CODE-ON-THE-CARD" not in caplog.text + repr(events)


async def test_a_hook_that_raises_never_breaks_a_charge(
    fake: FakeLeat, shop: Any, caplog: Any
) -> None:
    card = fake.add_card(balance_in_cents=1000)

    def broken(event: la.Event) -> None:
        raise RuntimeError("the hook is broken")

    async with LeatClient(TOKEN, base_url=fake.url, on_event=broken) as client:
        tx = await charge(client, card, shop)
    assert tx.amount_in_cents == -500 and card.balance_in_cents == 500
    assert "on_event hook raised" in caplog.text


@pytest.mark.parametrize("trust_env", [True, False])
async def test_the_clients_own_session_takes_a_proxy_from_the_environment(
    fake: FakeLeat, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, trust_env: bool
) -> None:
    # nothing listens at the base URL: only through the proxy (the fake, serving absolute-form
    # requests as proxies do) can the request arrive; a netrc's credentials are not mixed in
    netrc = tmp_path / "netrc"
    netrc.write_text("default login someone password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HTTP_PROXY", fake.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    policy = la.RetryPolicy(max_attempts=1)
    async with LeatClient(
        TOKEN, base_url="http://127.0.0.1:9", trust_env=trust_env, retry=policy
    ) as client:
        if trust_env:
            assert (await client.giftcard_transactions.list()).meta.total == 0
        else:
            with pytest.raises(la.LeatConnectionError):
                await client.giftcard_transactions.list()
    assert len(fake.requests) == (1 if trust_env else 0)
