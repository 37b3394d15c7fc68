"""``partner_id=`` and ``giftcards.send_by_email`` (issue 22, point 5), over real sockets."""

from __future__ import annotations

import aiohttp
import pytest

from leat_async import (
    ClientCredentials,
    GiftcardNotFoundError,
    InvalidInputError,
    LeatClient,
    OutcomeUnknownError,
)
from leat_async.testing import FakeLeat, Fault, SentEmail

from .conftest import FAST_RETRY, TOKEN

CONTACT = "0e9f1c36-6a54-4b1b-9b53-2b8a3f6d9c01"
EMAIL = "5d3c2b1a-0000-4000-8000-00000000e001"


async def test_the_partner_id_goes_with_every_request(fake: FakeLeat) -> None:
    shop = fake.add_shop(name="Krusty Krab")
    card = fake.add_card(balance_in_cents=5000)
    async with LeatClient(TOKEN, base_url=fake.url, partner_id="partner-42") as client:
        await client.giftcards.get(card.uuid)
        await client.giftcard_transactions.create(
            giftcard_uuid=card.uuid, amount_in_cents=-100, shop_uuid=shop.uuid
        )
        await client.giftcards.send_by_email(card.uuid, contact_uuid=CONTACT)
    assert len(fake.requests) == 3
    assert {r.partner_id for r in fake.requests} == {"partner-42"}


async def test_a_borrowed_session_and_a_signed_in_client_send_it_too() -> None:
    async with FakeLeat(client_id=7, client_secret="s3cr3t") as fake:
        card = fake.add_card(balance_in_cents=1)
        creds = ClientCredentials(7, "s3cr3t", token_url=fake.token_url)
        async with aiohttp.ClientSession() as session:
            client = LeatClient(creds, base_url=fake.url, session=session, partner_id="p-1")
            async with client:
                await client.giftcards.get(card.uuid)
        async with LeatClient(fake.token, base_url=fake.url) as plain:
            await plain.giftcard_programs.list()
    assert [(r.path, r.partner_id) for r in fake.requests] == [
        ("/oauth/token", None),  # the sign-in is not an API request
        (f"/giftcards/{card.uuid}", "p-1"),
        ("/giftcard-programs", None),  # without partner_id: no header
    ]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("", ValueError),
        ("  ", ValueError),
        ("a\nb", ValueError),
        (" p", ValueError),
        (5, TypeError),
    ],
)
def test_a_bad_partner_id_is_refused(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="partner_id"):
        LeatClient(TOKEN, partner_id=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("shape", ["documented", "flat"])
async def test_a_card_is_sent_by_email(fake: FakeLeat, client: LeatClient, shape: str) -> None:
    card = fake.add_card(balance_in_cents=2500)
    fake.emails.answer_shape = shape  # type: ignore[assignment]
    result = await client.giftcards.send_by_email(
        card.uuid,
        contact_uuid=CONTACT,
        email_uuid=EMAIL,
        merge_tags={"custom.greeting": "Happy birthday", "custom.amount": 25},
    )
    assert result is None
    assert fake.emails.sent == [
        SentEmail(
            card.uuid, CONTACT, EMAIL, {"custom.greeting": "Happy birthday", "custom.amount": 25}
        )
    ]
    (request,) = fake.requests
    assert (request.method, request.path) == ("POST", f"/giftcards/{card.uuid}/send-by-email")
    assert request.json == {
        "contact_uuid": CONTACT,
        "email_uuid": EMAIL,
        "merge_tags": {"custom.greeting": "Happy birthday", "custom.amount": 25},
    }


async def test_only_what_is_given_is_sent(fake: FakeLeat, client: LeatClient) -> None:
    card = fake.add_card(balance_in_cents=1)
    await client.giftcards.send_by_email(card.uuid, contact_uuid=CONTACT)
    assert fake.requests[0].json == {"contact_uuid": CONTACT}
    assert fake.emails.sent == [SentEmail(card.uuid, CONTACT)]


async def test_an_unknown_card_is_not_found(fake: FakeLeat, client: LeatClient) -> None:
    with pytest.raises(GiftcardNotFoundError) as caught:
        await client.giftcards.send_by_email("no-such-card", contact_uuid=CONTACT)
    assert caught.value.attempts == 1
    assert fake.emails.sent == []


@pytest.mark.parametrize(
    ("kw", "error", "text"),
    [
        ({"merge_tags": {"greeting": "hi"}}, ValueError, "custom."),
        ({"merge_tags": {"custom.": "hi"}}, ValueError, "custom."),
        ({"merge_tags": {"custom.x": None}}, TypeError, "merge_tags"),
        ({"merge_tags": ["custom.x"]}, TypeError, "merge_tags"),
        ({"contact_uuid": ""}, ValueError, "contact_uuid"),
        ({"email_uuid": ""}, ValueError, "email_uuid"),
        ({"uuid": "a/b"}, ValueError, "uuid"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_sent(
    fake: FakeLeat, client: LeatClient, kw: dict[str, object], error: type[Exception], text: str
) -> None:
    card = fake.add_card(balance_in_cents=1)
    args: dict[str, object] = {"uuid": card.uuid, "contact_uuid": CONTACT, **kw}
    uuid = args.pop("uuid")
    with pytest.raises(error, match=text):
        await client.giftcards.send_by_email(uuid, **args)  # type: ignore[arg-type]
    assert fake.requests == []


async def test_the_fake_refuses_what_the_api_refuses(fake: FakeLeat) -> None:
    card = fake.add_card(balance_in_cents=1)
    async with aiohttp.ClientSession() as session:
        url = f"{fake.url}{FakeLeat.PREFIX}/giftcards/{card.uuid}/send-by-email"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with session.post(url, json={"merge_tags": {"x": 1}}, headers=headers) as resp:
            body = await resp.json()
    assert resp.status == 400
    assert body["code"] == 1003
    assert set(body["errors"]) == {"contact_uuid", "merge_tags"}
    assert fake.emails.sent == []


async def test_a_lost_answer_is_never_resent(fake: FakeLeat) -> None:
    card = fake.add_card(balance_in_cents=1)
    fake.add_fault(Fault(method="POST", drop=True, when="after"))
    async with LeatClient(TOKEN, base_url=fake.url, retry=FAST_RETRY, timeout=5.0) as client:
        with pytest.raises(OutcomeUnknownError) as caught:
            await client.giftcards.send_by_email(card.uuid, contact_uuid=CONTACT)
    assert caught.value.operation == "giftcards.send_by_email"
    assert len(fake.requests) == 1
    assert len(fake.emails.sent) == 1  # it went out once; the client cannot know


async def test_a_refused_request_may_be_resent(fake: FakeLeat) -> None:
    card = fake.add_card(balance_in_cents=1)
    fake.add_fault(Fault(method="POST", status=429, headers={"Retry-After": "0"}))
    async with LeatClient(TOKEN, base_url=fake.url, retry=FAST_RETRY, timeout=5.0) as client:
        await client.giftcards.send_by_email(card.uuid, contact_uuid=CONTACT)
    assert [r.status for r in fake.requests] == [429, 200]
    assert len(fake.emails.sent) == 1


async def test_an_unexpected_success_answer_is_an_unknown_outcome(fake: FakeLeat) -> None:
    card = fake.add_card(balance_in_cents=1)
    fake.add_fault(Fault(method="POST", status=200, body={"data": "queued"}))
    async with LeatClient(TOKEN, base_url=fake.url, retry=FAST_RETRY, timeout=5.0) as client:
        with pytest.raises(OutcomeUnknownError, match="Email successfully sent"):
            await client.giftcards.send_by_email(card.uuid, contact_uuid=CONTACT)
    assert len(fake.requests) == 1


async def test_invalid_input_from_the_server_is_reported(fake: FakeLeat) -> None:
    card = fake.add_card(balance_in_cents=1)
    body = {"message": "The given data was invalid.", "code": 1003, "errors": {"x": ["bad"]}}
    fake.add_fault(Fault(method="POST", status=400, body=body))
    async with LeatClient(TOKEN, base_url=fake.url, retry=FAST_RETRY, timeout=5.0) as client:
        with pytest.raises(InvalidInputError):
            await client.giftcards.send_by_email(card.uuid, contact_uuid=CONTACT)
