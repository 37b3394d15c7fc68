"""Receiving Leat's webhook deliveries: the signature first, then the event (issue 22, point 2).

The pure checks run on bytes; the aiohttp handler is served on a real loopback socket and
driven by a real client, as Leat's deliveries would reach it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import leat_async as la
from leat_async.webhooks import (
    GiftcardTransactionCreated,
    WebhookEvent,
    WebhookPayloadError,
    WebhookSignatureError,
    aiohttp_handler,
    construct_event,
    sign,
)

SECRET = "whsec-of-the-subscription"
ROW = {
    "id": 17,
    "uuid": "3f0c8f0e-1d2b-4b6a-9c43-1b2c3d4e5f60",
    "amount_in_cents": -1250,
    "type": "STANDARD",
    "settled": False,
    "created_at": "2026-12-07T10:11:12+00:00",
    "card": {"id": 3, "uuid": "card-uuid", "hash": "ABC-123"},
    "shop": {"id": 1, "uuid": "shop-uuid", "name": "Shop"},
    "settlements": [],
}


def delivery(data: Any, kind: str = "giftcard_transaction_created") -> bytes:
    return json.dumps({"type": kind, "data": data}).encode()


def test_a_signed_delivery_gives_its_transaction() -> None:
    body = delivery({"giftcard_transaction": ROW})
    event = construct_event(body, sign(body, SECRET), SECRET)
    assert isinstance(event, GiftcardTransactionCreated)
    assert event.transaction_uuid == ROW["uuid"]
    assert event.transaction is not None and event.transaction.amount_in_cents == -1250
    assert isinstance(event, la.WebhookEvent) and la.construct_event is construct_event


def test_upper_case_hex_and_bytes_secrets_are_accepted() -> None:
    body = delivery({"uuid": "only-the-uuid"})
    event = construct_event(body, sign(body, SECRET).upper(), SECRET.encode())
    assert isinstance(event, GiftcardTransactionCreated)
    assert event.transaction_uuid == "only-the-uuid" and event.transaction is None


def test_a_payload_of_its_own_shape_still_names_the_uuid_or_nothing() -> None:
    odd = {"giftcard_transaction": {"uuid": "u-1", "amount_in_cents": "12.50"}}
    body = delivery(odd)
    event = construct_event(body, sign(body, SECRET), SECRET)
    assert isinstance(event, GiftcardTransactionCreated)
    assert (event.transaction_uuid, event.transaction) == ("u-1", None)
    fallback = delivery({"giftcard_transaction": {"amount_in_cents": 5}, "uuid": "u-2"})
    event = construct_event(fallback, sign(fallback, SECRET), SECRET)
    assert isinstance(event, GiftcardTransactionCreated)
    assert (event.transaction_uuid, event.transaction) == ("u-2", None)
    empty = delivery({})
    event = construct_event(empty, sign(empty, SECRET), SECRET)
    assert isinstance(event, GiftcardTransactionCreated) and event.transaction_uuid is None


def test_other_event_types_are_plain_events() -> None:
    body = delivery({"voucher": {"uuid": "v"}}, kind="voucher_created")
    event = construct_event(body, sign(body, SECRET), SECRET)
    assert type(event) is WebhookEvent and event.type == "voucher_created"
    assert event.data["voucher"] == {"uuid": "v"}


@pytest.mark.parametrize(
    "signature",
    [None, "", "not-hex", "ab" * 31, "ab" * 33, "0" * 64, "g" * 64],
)
def test_a_missing_or_wrong_signature_is_refused(signature: str | None) -> None:
    body = delivery({"giftcard_transaction": ROW})
    with pytest.raises(WebhookSignatureError) as refused:
        construct_event(body, signature, SECRET)
    assert SECRET not in str(refused.value) and isinstance(refused.value, la.LeatError)


def test_a_truncated_or_altered_real_signature_is_refused() -> None:
    body = delivery({"giftcard_transaction": ROW})
    signature = sign(body, SECRET)
    flipped = ("1" if signature[-1] == "0" else "0") + signature[1:]
    for bad in (signature[:-1], signature[:32], signature + "0", flipped):
        with pytest.raises(WebhookSignatureError):
            construct_event(body, bad, SECRET)


def test_the_errors_are_leat_errors_that_pickle_and_never_tell_the_secret() -> None:
    body = delivery({"giftcard_transaction": ROW})
    errors: list[Exception] = []
    for signature, payload in ((sign(body, "wrong"), body), (sign(b"[]", SECRET), b"[]")):
        try:
            construct_event(payload, signature, SECRET)
        except la.LeatError as exc:
            errors.append(exc)
    signature_error, payload_error = errors
    assert type(signature_error) is la.WebhookSignatureError
    assert type(payload_error) is la.WebhookPayloadError
    for error in errors:
        assert isinstance(error, la.WebhookError)
        text = f"{error!s} {error!r} {pickle.loads(pickle.dumps(error))!s} {vars(error)}"  # noqa: S301
        assert SECRET not in text and sign(body, SECRET) not in text and "ABC-123" not in text


def test_the_names_come_from_leat_async_too() -> None:
    import leat_async.webhooks as webhooks

    for name in (
        "construct_event",
        "aiohttp_handler",
        "WebhookEvent",
        "GiftcardTransactionCreated",
        "WebhookSignatureError",
        "WebhookPayloadError",
    ):
        assert getattr(la, name) is getattr(webhooks, name), name
        assert name in la.__all__ and name in webhooks.__all__
    assert webhooks.__all__ == sorted(webhooks.__all__)
    event = WebhookEvent("voucher_created", {"contact": {"email": "a@b.example"}})
    assert event.data["contact"] == {"email": "a@b.example"} and "a@b" not in repr(event)


def test_one_byte_changed_or_another_secret_is_refused() -> None:
    body = delivery({"giftcard_transaction": ROW})
    signature = sign(body, SECRET)
    with pytest.raises(WebhookSignatureError):
        construct_event(body.replace(b"-1250", b"-9250"), signature, SECRET)
    with pytest.raises(WebhookSignatureError):
        construct_event(body, signature, SECRET + "x")


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"data": {}}', b'{"type": ""}', b'{"type": "x", "data": [1]}'],
)
def test_a_signed_body_that_is_not_an_event_is_a_payload_error(body: bytes) -> None:
    with pytest.raises(WebhookPayloadError):
        construct_event(body, sign(body, SECRET), SECRET)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        construct_event(b"{}", "0" * 64, "")
    with pytest.raises(TypeError, match="raw bytes"):
        construct_event("{}", "0" * 64, SECRET)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="secret"):
        construct_event(b"{}", "0" * 64, 12345)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_bytes"):
        aiohttp_handler(SECRET, _ignore, max_bytes=0)
    with pytest.raises(ValueError, match="secret"):
        aiohttp_handler(b"", _ignore)
    with pytest.raises(TypeError, match="secret"):
        aiohttp_handler(None, _ignore)  # type: ignore[arg-type]


async def _ignore(event: WebhookEvent) -> None:
    return None


# -- the aiohttp handler, over a real socket -----------------------------------------------------


class Receiver:
    def __init__(self) -> None:
        self.events: list[WebhookEvent] = []
        self.fail = False

    async def on_event(self, event: WebhookEvent) -> None:
        if self.fail:
            raise RuntimeError("the app's database is down")
        self.events.append(event)


@pytest.fixture
async def served() -> AsyncIterator[tuple[Receiver, str, aiohttp.ClientSession]]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/leat", aiohttp_handler(SECRET, receiver.on_event, max_bytes=4096))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as http:
        yield receiver, f"http://127.0.0.1:{port}/leat", http
    await runner.cleanup()


async def post(http: aiohttp.ClientSession, url: str, body: bytes, signature: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Signature"] = signature
    async with http.post(url, data=body, headers=headers) as resp:
        return resp.status


async def test_the_handler_takes_a_signed_delivery_once(
    served: tuple[Receiver, str, aiohttp.ClientSession],
) -> None:
    receiver, url, http = served
    body = delivery({"giftcard_transaction": ROW})
    assert await post(http, url, body, sign(body, SECRET)) == 200
    assert [e.transaction_uuid for e in receiver.events] == [ROW["uuid"]]  # type: ignore[attr-defined]


async def test_forged_and_malformed_deliveries_never_reach_the_app(
    served: tuple[Receiver, str, aiohttp.ClientSession],
) -> None:
    receiver, url, http = served
    body = delivery({"giftcard_transaction": ROW})
    assert await post(http, url, body, None) == 401
    assert await post(http, url, body, sign(body, "a guessed secret")) == 401
    assert await post(http, url, b"[]", sign(b"[]", SECRET)) == 400
    assert await post(http, url, b"x" * 5000, sign(b"x" * 5000, SECRET)) == 413
    assert receiver.events == []


async def test_a_delivery_the_app_fails_on_is_answered_500_to_come_again(
    served: tuple[Receiver, str, aiohttp.ClientSession], caplog: pytest.LogCaptureFixture
) -> None:
    receiver, url, http = served
    body = delivery({"giftcard_transaction": ROW})
    receiver.fail = True
    with caplog.at_level(logging.ERROR, logger="leat_async"):
        assert await post(http, url, body, sign(body, SECRET)) == 500
    assert SECRET not in caplog.text and "giftcard_transaction_created" in caplog.text
    receiver.fail = False
    assert await post(http, url, body, sign(body, SECRET)) == 200
    assert len(receiver.events) == 1


async def test_500_concurrent_deliveries_none_lost_or_doubled(
    served: tuple[Receiver, str, aiohttp.ClientSession],
) -> None:
    receiver, url, http = served
    bodies = [delivery({"giftcard_transaction": {**ROW, "uuid": f"tx-{n}"}}) for n in range(500)]
    statuses = await asyncio.gather(*(post(http, url, b, sign(b, SECRET)) for b in bodies))
    assert set(statuses) == {200}
    uuids = [e.transaction_uuid for e in receiver.events]  # type: ignore[attr-defined]
    assert sorted(uuids) == sorted(f"tx-{n}" for n in range(500))


async def test_a_body_past_the_cap_is_refused_before_it_is_all_sent(
    served: tuple[Receiver, str, aiohttp.ClientSession],
) -> None:
    receiver, url, http = served
    release = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:  # chunked: no Content-Length to go by
        for _ in range(3):
            yield b"x" * 3000
        await release.wait()  # the rest would come only after the answer
        yield b"x" * 3000

    answer: Awaitable[int] = post(http, url, endless(), sign(b"", SECRET))  # type: ignore[arg-type]
    try:
        async with asyncio.timeout(30):  # a handler that read it all would wait forever
            assert await answer == 413
        assert not release.is_set() and receiver.events == []
    finally:
        release.set()
