"""Client-credentials sign-in (issue 22, point 4), over real sockets against the bundled fake."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from leat_async import (
    AuthenticationError,
    ClientCredentials,
    Event,
    LeatClient,
    LeatConnectionError,
)
from leat_async._http.signin import SignIn, read_token, renew_at
from leat_async._http.transport import Timeouts
from leat_async.testing import FakeLeat, Fault

from .conftest import FAST_RETRY, ONE_TRY

CLIENT_ID = 4711
SECRET = "cl13nt-s3cr3t-VALUE"


@pytest.fixture
async def oauth_fake() -> AsyncIterator[FakeLeat]:
    async with FakeLeat(client_id=CLIENT_ID, client_secret=SECRET) as server:
        yield server


def credentials(fake: FakeLeat, secret: str = SECRET) -> ClientCredentials:
    return ClientCredentials(CLIENT_ID, secret, token_url=fake.token_url)


def signed_in(fake: FakeLeat, **kw: object) -> LeatClient:
    return LeatClient(
        credentials(fake),
        base_url=fake.url,
        retry=kw.pop("retry", FAST_RETRY),  # type: ignore[arg-type]
        timeout=5.0,
        **kw,  # type: ignore[arg-type]
    )


def token_requests(fake: FakeLeat) -> int:
    return sum(1 for r in fake.requests if r.path == "/oauth/token")


async def test_a_signed_in_client_charges_a_card(oauth_fake: FakeLeat) -> None:
    shop = oauth_fake.add_shop(name="Krusty Krab")
    card = oauth_fake.add_card(balance_in_cents=5000)
    async with signed_in(oauth_fake) as client:
        tx = await client.giftcard_transactions.create(
            giftcard_uuid=card.uuid, amount_in_cents=-1250, shop_uuid=shop.uuid
        )
        assert (await client.giftcard_transactions.get(tx.uuid)).uuid == tx.uuid
    assert card.balance_in_cents == 3750
    assert oauth_fake.oauth.issued == 1
    sign_in = next(r for r in oauth_fake.requests if r.path == "/oauth/token")
    assert sign_in.method == "POST"
    assert sign_in.json == {
        "grant_type": "client_credentials",
        "client_id": str(CLIENT_ID),
        "client_secret": "***",  # the fake's record never keeps it
    }
    assert all(r.authorized for r in oauth_fake.requests if r.path != "/oauth/token")


async def test_concurrent_first_calls_share_one_sign_in(oauth_fake: FakeLeat) -> None:
    card = oauth_fake.add_card(balance_in_cents=100)
    async with signed_in(oauth_fake, max_concurrency=4) as client:
        cards = await asyncio.gather(*(client.giftcards.get(card.uuid) for _ in range(20)))
    assert {c.uuid for c in cards} == {card.uuid}
    assert oauth_fake.oauth.issued == 1
    assert token_requests(oauth_fake) == 1


async def test_a_create_answered_401_once_is_charged_exactly_once(oauth_fake: FakeLeat) -> None:
    shop = oauth_fake.add_shop(name="Krusty Krab")
    card = oauth_fake.add_card(balance_in_cents=5000)
    events: list[Event] = []
    async with signed_in(oauth_fake, retry=ONE_TRY, on_event=events.append) as client:
        await client.giftcards.get(card.uuid)  # signed in
        oauth_fake.oauth.expire_all()  # the server forgets the token: the next call gets a 401
        tx = await client.giftcard_transactions.create(
            giftcard_uuid=card.uuid, amount_in_cents=-1000, shop_uuid=shop.uuid
        )
        assert client.stats.retries == 1
    creates = [r for r in oauth_fake.requests if r.path == "/giftcard-transactions"]
    assert [r.status for r in creates] == [401, 200]
    assert [t.uuid for t in oauth_fake.transactions] == [tx.uuid]
    assert card.balance_in_cents == 4000
    assert oauth_fake.oauth.issued == 2
    assert [e.kind for e in events if e.path == "/giftcard-transactions"] == [
        "request",
        "response",
        "retry",
        "request",
        "response",
    ]


async def test_a_second_401_is_an_authentication_error(oauth_fake: FakeLeat) -> None:
    shop = oauth_fake.add_shop(name="Krusty Krab")
    card = oauth_fake.add_card(balance_in_cents=5000)
    oauth_fake.add_fault(Fault(method="POST", path="/giftcard-transactions", status=401, times=2))
    async with signed_in(oauth_fake) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.giftcard_transactions.create(
                giftcard_uuid=card.uuid, amount_in_cents=-1000, shop_uuid=shop.uuid
            )
    assert caught.value.attempts == 2  # one resend, no more
    assert oauth_fake.transactions == []
    assert card.balance_in_cents == 5000
    assert oauth_fake.oauth.issued == 2


async def test_bad_credentials_are_refused_and_nothing_else_is_sent(
    oauth_fake: FakeLeat, caplog: pytest.LogCaptureFixture
) -> None:
    card = oauth_fake.add_card(balance_in_cents=5000)
    shop = oauth_fake.add_shop(name="Krusty Krab")
    wrong = "not-the-s3cr3t"
    async with LeatClient(
        credentials(oauth_fake, wrong), base_url=oauth_fake.url, timeout=5.0
    ) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.giftcard_transactions.create(
                giftcard_uuid=card.uuid, amount_in_cents=-1000, shop_uuid=shop.uuid
            )
        with pytest.raises(AuthenticationError):
            await client.giftcards.get(card.uuid)
    assert [r.path for r in oauth_fake.requests] == ["/oauth/token", "/oauth/token"]
    assert oauth_fake.oauth.issued == 0
    assert card.balance_in_cents == 5000
    text = str(caught.value)
    assert "invalid_client" in text
    assert "client id and secret" in text
    assert wrong not in text
    assert wrong not in caplog.text


async def test_the_token_url_must_answer(oauth_fake: FakeLeat) -> None:
    # a connection refused: nothing reached the API
    creds = ClientCredentials(CLIENT_ID, SECRET, token_url="http://127.0.0.1:9/oauth/token")
    async with LeatClient(creds, base_url=oauth_fake.url, timeout=2.0) as client:
        with pytest.raises(LeatConnectionError, match="sign-in failed"):
            await client.giftcard_programs.list()
    assert oauth_fake.requests == []


async def test_neither_secret_nor_token_is_ever_shown(
    oauth_fake: FakeLeat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="leat_async")
    card = oauth_fake.add_card(balance_in_cents=100)
    events: list[Event] = []
    creds = credentials(oauth_fake)
    errors: list[str] = []
    async with signed_in(oauth_fake, on_event=events.append, retry=ONE_TRY) as client:
        await client.giftcards.get(card.uuid)
        oauth_fake.oauth.expire_all()
        await client.giftcards.get(card.uuid)  # a 401, a new token, a resend
        oauth_fake.add_fault(Fault(path="/giftcards/.*", status=401, times=2))
        try:
            await client.giftcards.get(card.uuid)
        except AuthenticationError as error:
            errors.append(str(error))
            errors.append(repr(error))
        shown = [repr(client), repr(creds), str(creds), caplog.text, *errors, repr(events)]
    assert len(errors) == 2
    assert oauth_fake.oauth.issued == 3
    assert "client_secret=***" in repr(creds)
    assert "token=***" in repr(client)
    assert "sign-in" in caplog.text  # the sign-in is logged, by client id only
    issued = {r.json.get("access_token") for r in oauth_fake.requests if isinstance(r.json, dict)}
    assert issued == {None}  # the fake never records what it issued
    secrets = [SECRET, *oauth_fake.oauth.issued_tokens]
    assert len(secrets) == 4
    for text in shown:
        for secret in secrets:
            assert secret not in text


async def test_a_token_is_renewed_before_it_expires(oauth_fake: FakeLeat) -> None:
    oauth_fake.oauth.expires_in = 600
    now = [1000.0]
    async with aiohttp.ClientSession() as session:
        signin = SignIn(
            credentials(oauth_fake),
            session=lambda: session,
            timeouts=Timeouts.of(5.0),
            clock=lambda: now[0],
        )
        first = await signin.authorization()
        now[0] += 500  # 100 s before expiry: still more than the margin left
        assert await signin.authorization() == first
        now[0] += 45  # 55 s left: within the 60 s margin
        second = await signin.authorization()
    assert second != first
    assert oauth_fake.oauth.issued == 2
    # the old token still worked when the new one was asked for: no request ever met a 401
    assert second.removeprefix("Bearer ") in oauth_fake.oauth.tokens
    assert first.removeprefix("Bearer ") in oauth_fake.oauth.tokens


async def test_a_401_renews_once_for_all_who_met_it(oauth_fake: FakeLeat) -> None:
    async with aiohttp.ClientSession() as session:
        signin = SignIn(credentials(oauth_fake), session=lambda: session, timeouts=Timeouts.of(5))
        stale = await signin.authorization()
        signin.refused(stale)
        renewed = await asyncio.gather(*(signin.authorization() for _ in range(5)))
        signin.refused(stale)  # a late 401 of the old token: the new one stays
        assert await signin.authorization() == renewed[0]
    assert len(set(renewed)) == 1
    assert renewed[0] != stale
    assert oauth_fake.oauth.issued == 2


def test_when_a_token_is_renewed() -> None:
    assert renew_at(100.0, 3600) == 100.0 + 3600 - 60
    assert renew_at(100.0, 10) == 105.0  # a short life: renewed at its half
    assert renew_at(100.0, None) == float("inf")  # no lifetime said: renewed after a 401 only


def test_the_token_answer_is_read_without_quoting_it() -> None:
    assert read_token(200, b'{"access_token": "abc", "expires_in": 3600}') == ("abc", 3600.0)
    assert read_token(200, b'{"access_token": "abc"}') == ("abc", None)
    with pytest.raises(AuthenticationError, match="invalid_client"):
        read_token(401, b'{"error": "invalid_client"}')
    with pytest.raises(AuthenticationError):
        read_token(400, b'{"error": "invalid_grant"}')
    with pytest.raises(Exception, match="no usable access_token") as caught:
        read_token(200, b'{"acces_token": "leaked-value"}')
    assert "leaked-value" not in str(caught.value)


@pytest.mark.parametrize(
    ("args", "kw", "error", "text"),
    [
        ((0, SECRET), {}, ValueError, "client_id"),
        ((True, SECRET), {}, TypeError, "client_id"),
        (("", SECRET), {}, ValueError, "client_id"),
        ((1, ""), {}, ValueError, "client_secret"),
        ((1, "a b"), {}, ValueError, "client_secret"),
        ((1, None), {}, TypeError, "client_secret"),
        ((1, SECRET), {"token_url": "http://api.piggy.eu/oauth/token"}, ValueError, "loopback"),
        ((1, SECRET), {"token_url": "ftp://x/oauth/token"}, ValueError, "token_url"),
        ((1, SECRET), {"token_url": "https://u:p@x/oauth/token"}, ValueError, "token_url"),
    ],
)
def test_bad_credentials_are_refused_before_anything_is_sent(
    args: tuple[object, object], kw: dict[str, str], error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text) as caught:
        ClientCredentials(*args, **kw)  # type: ignore[arg-type]
    assert SECRET not in str(caught.value)


def test_credentials_default_to_leat_and_compare_by_value() -> None:
    creds = ClientCredentials("my-client", SECRET)
    assert creds.token_url == "https://api.piggy.eu/oauth/token"
    assert creds == ClientCredentials("my-client", SECRET)
    assert creds != ClientCredentials("my-client", SECRET + "x")
    assert SECRET not in repr(creds)
    with pytest.raises(TypeError, match="ClientCredentials"):
        LeatClient(12345)  # type: ignore[arg-type]
