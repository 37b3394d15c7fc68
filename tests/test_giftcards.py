"""client.giftcards and client.giftcard_programs against the bundled fake over loopback HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

import leat_async as la
from leat_async import LeatClient
from leat_async._api.params import CARD_TYPES
from leat_async.testing import FakeLeat, Fault

ABSENT = FakeLeat.ABSENT
ODD_CODES = ["a+b c", "x&hash=y", "a/b?c#d", "Ünïcødé-ß", "100%;=", "+"]


@pytest.fixture
def program(fake: FakeLeat) -> Any:
    return fake.add_program(name="Krabby Card", max_amount_in_cents=50_000, expiration_days=365)


async def test_find_a_card_by_its_code_then_by_uuid(
    client: LeatClient, fake: FakeLeat, program: Any
) -> None:
    card = fake.add_card(
        balance_in_cents=2500,
        program=program,
        hash="KRABBY-42",
        type="DIGITAL",
        reincrementable=True,
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
    )
    found = await client.giftcards.find_by_hash("KRABBY-42")
    assert card.uuid is not None
    assert found == la.Giftcard(
        uuid=card.uuid,
        hash="KRABBY-42",
        type="DIGITAL",
        amount_in_cents=2500,
        active=True,
        upgradeable=True,
        expiration_date=datetime(2030, 1, 1, tzinfo=UTC),
        giftcard_program=la.GiftcardProgramRef(uuid=program.uuid, name="Krabby Card"),
        id=card.id,
    )
    assert await client.giftcards.get(found.uuid) == found
    assert [(r.method, r.path) for r in fake.requests] == [
        ("GET", "/giftcards/find-one-by"),
        ("GET", f"/giftcards/{card.uuid}"),
    ]


@pytest.mark.parametrize("code", ODD_CODES)
async def test_odd_codes_arrive_intact(client: LeatClient, fake: FakeLeat, code: str) -> None:
    card = fake.add_card(hash=code)
    # what a code cut at a delimiter, or with '+' read as a space, would find instead
    decoys = {code.split(c)[0] for c in "&?#%;=/"} | {code.replace("+", " ")}
    for decoy in decoys - {code, ""}:
        fake.add_card(hash=decoy)
    found = await client.giftcards.find_by_hash(code)
    assert (found.uuid, found.hash) == (card.uuid, code)
    assert fake.requests[-1].query == [("hash", code)]


async def test_the_code_then_a_charge(client: LeatClient, fake: FakeLeat) -> None:
    shop, card = fake.add_shop(), fake.add_card(balance_in_cents=5000, hash="SPONGE 1")
    found = await client.giftcards.find_by_hash("SPONGE 1")
    await client.giftcard_transactions.create(
        giftcard_uuid=found.uuid, amount_in_cents=-1250, shop_uuid=shop.uuid
    )
    assert (await client.giftcards.get(found.uuid)).amount_in_cents == 3750 == card.balance_in_cents


@pytest.mark.parametrize(("kind", "sent"), [("PHYSICAL", 0), ("DIGITAL", 1)])
async def test_create_a_card(
    client: LeatClient, fake: FakeLeat, program: Any, kind: Any, sent: int
) -> None:
    card = await client.giftcards.create(giftcard_program_uuid=program.uuid, type=kind)
    assert (card.type, card.amount_in_cents, card.giftcard_program) == (
        kind,
        0,
        la.GiftcardProgramRef(program.uuid, "Krabby Card"),
    )
    assert card.expiration_date is not None and card.expiration_date.tzinfo is not None
    assert fake.requests[-1].json == {"giftcard_program_uuid": program.uuid, "type": sent}
    assert fake.get_card(card.uuid) is fake.get_card_by_hash(card.hash) is not None


async def test_a_create_whose_answer_is_lost_is_never_resent(
    client: LeatClient, fake: FakeLeat, program: Any
) -> None:
    fake.add_fault(Fault(method="POST", drop=True, when="after"))
    with pytest.raises(la.OutcomeUnknownError) as info:
        await client.giftcards.create(giftcard_program_uuid=program.uuid, type="DIGITAL")
    assert [(r.method, r.path) for r in fake.requests] == [("POST", "/giftcards")]
    assert len(fake.cards) == 1  # it landed; the client does not know
    error = info.value
    assert error.operation == "giftcards.create" and error.path == "/giftcards"
    assert error.sent == {"giftcard_program_uuid": program.uuid, "type": 1}


async def test_programs(client: LeatClient, fake: FakeLeat, program: Any) -> None:
    bare = fake.add_program(name="Bare", active=False)
    fake.add_card(program=program)
    await client.giftcards.create(giftcard_program_uuid=program.uuid, type="PHYSICAL")
    assert await client.giftcard_programs.list() == [
        la.GiftcardProgram(
            uuid=program.uuid,
            name="Krabby Card",
            active=True,
            max_amount_in_cents=50_000,
            min_amount_in_cents=None,
            expiration_days=365,
            calculator_flow=None,
            card_count=2,
            id=program.id,
        ),
        la.GiftcardProgram(bare.uuid, "Bare", False, None, None, None, None, 0, bare.id),
    ]


async def test_unknown_card_program_and_type_are_typed_errors(
    client: LeatClient, fake: FakeLeat, program: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(la.GiftcardNotFoundError) as not_found:
        await client.giftcards.find_by_hash("NO-SUCH-CODE")
    assert "[GET /giftcards/find-one-by]" in str(not_found.value)
    with pytest.raises(la.GiftcardNotFoundError):
        await client.giftcards.get("0000-missing")
    with pytest.raises(la.GiftcardProgramNotFoundError) as no_program:
        await client.giftcards.create(giftcard_program_uuid="0000-missing", type="DIGITAL")
    assert (no_program.value.code, no_program.value.status) == (1100, 400)
    assert "Giftcard program not found. (code 1100, HTTP 400)" in str(no_program.value)
    # a type this client knows and the server does not: the server's 1003, naming the field
    monkeypatch.setitem(CARD_TYPES, "VIRTUAL", 2)
    with pytest.raises(la.InvalidInputError) as bad_type:
        await client.giftcards.create(giftcard_program_uuid=program.uuid, type="VIRTUAL")  # type: ignore[arg-type]
    assert list(bad_type.value.errors) == ["type"]
    assert not fake.cards


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"active": "true", "upgradeable": "false"}, {"active": True, "upgradeable": False}),
        ({"active": "false", "upgradeable": True}, {"active": False, "upgradeable": True}),
        ({"expiration_date": ""}, {"expiration_date": None}),
        ({"expiration_date": None}, {"expiration_date": None}),
        ({"expiration_date": ABSENT}, {"expiration_date": None}),
        (
            {"expiration_date": "2030-06-01T12:00:00+02:00"},
            {"expiration_date": datetime(2030, 6, 1, 10, tzinfo=UTC)},
        ),
        (
            {"giftcard_program": {"name": "Only"}},
            {"giftcard_program": la.GiftcardProgramRef(None, "Only")},
        ),
        (
            {"giftcard_program": {"uuid": "p-1"}},
            {"giftcard_program": la.GiftcardProgramRef("p-1", None)},
        ),
        ({"giftcard_program": None}, {"giftcard_program": None}),
        ({"giftcard_program": ABSENT}, {"giftcard_program": None}),
        ({"id": ABSENT}, {"id": None}),
        ({"id": None}, {"id": None}),
        ({"type": "VIRTUAL"}, {"type": "VIRTUAL"}),
        ({"display_amount": "€ 25,00", "brand_new": [1]}, {}),
    ],
)
async def test_loose_card_shapes_parse(
    client: LeatClient,
    fake: FakeLeat,
    program: Any,
    extra: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    card = fake.add_card(balance_in_cents=2500, program=program, hash="L", extra=extra)
    found = await client.giftcards.find_by_hash("L")
    assert card.uuid is not None
    plain = la.Giftcard(
        card.uuid,
        "L",
        "PHYSICAL",
        2500,
        True,
        False,
        None,
        la.GiftcardProgramRef(program.uuid, "Krabby Card"),
        card.id,
    )
    assert found == attrs.evolve(plain, **expected)


async def test_loose_program_shapes_parse(client: LeatClient, fake: FakeLeat) -> None:
    keys = ["active", "max_amount_in_cents", "min_amount_in_cents", "expiration_days"]
    keys += ["calculator_flow", "card_count", "id"]
    fake.add_program(uuid="p-1", name="Only a name", extra=dict.fromkeys(keys, ABSENT))
    fake.add_program(uuid="p-2", name="Nulls", extra=dict.fromkeys(keys))
    fake.add_program(uuid="p-3", name="Texts", extra={"active": "false", "display": "x"})
    only, nulls, texts = await client.giftcard_programs.list()
    assert only == la.GiftcardProgram("p-1", "Only a name")
    assert nulls == la.GiftcardProgram("p-2", "Nulls")
    assert texts.active is False and texts.card_count == 0


@pytest.mark.parametrize("amount", ["2500", 25.0, True, None])
async def test_money_stays_strict(client: LeatClient, fake: FakeLeat, amount: Any) -> None:
    fake.add_card(hash="M", extra={"amount_in_cents": amount})
    with pytest.raises(la.LeatAPIError) as info:
        await client.giftcards.find_by_hash("M")
    assert info.value.status == 200 and "amount_in_cents" in str(info.value)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"max_amount_in_cents": "500"}, "max_amount_in_cents"),
        ({"min_amount_in_cents": 5.5}, "min_amount_in_cents"),
        ({"active": "yes"}, "active"),
        ({"name": None}, "name"),
    ],
)
async def test_program_money_and_names_stay_strict(
    client: LeatClient, fake: FakeLeat, extra: dict[str, Any], field: str
) -> None:
    fake.add_program(extra=extra)
    with pytest.raises(la.LeatAPIError, match=rf"data\[0\]\.{field}"):
        await client.giftcard_programs.list()


@pytest.mark.parametrize(
    ("call", "exc"),
    [
        (lambda c: c.giftcards.find_by_hash(""), ValueError),
        (lambda c: c.giftcards.find_by_hash(None), TypeError),
        (lambda c: c.giftcards.find_by_hash(42), TypeError),
        (lambda c: c.giftcards.find_by_hash(" CODE"), ValueError),
        (lambda c: c.giftcards.find_by_hash("CODE\n"), ValueError),
        (lambda c: c.giftcards.get(""), ValueError),
        (lambda c: c.giftcards.get("../etc"), ValueError),
        (lambda c: c.giftcards.get("a b"), ValueError),
        (lambda c: c.giftcards.get("find-one-by?hash=x"), ValueError),
        (lambda c: c.giftcards.get(None), TypeError),
        (lambda c: c.giftcards.create(giftcard_program_uuid="p", type="physical"), ValueError),
        (lambda c: c.giftcards.create(giftcard_program_uuid="p", type=0), TypeError),
        (lambda c: c.giftcards.create(giftcard_program_uuid="p", type=None), TypeError),
        (lambda c: c.giftcards.create(giftcard_program_uuid="", type="DIGITAL"), ValueError),
        (lambda c: c.giftcards.create(giftcard_program_uuid=7, type="DIGITAL"), TypeError),
        (lambda c: c.giftcards.list(per_page=0), ValueError),
        (lambda c: c.giftcards.list(per_page=101), ValueError),
        (lambda c: c.giftcards.list(per_page=True), TypeError),
        (lambda c: c.giftcards.list(per_page="10"), TypeError),
        (lambda c: c.giftcards.list(page=0), ValueError),
        (lambda c: c.giftcards.list(giftcard_program_uuid=""), ValueError),
        (lambda c: c.giftcards.list(giftcard_program_uuid=" p"), ValueError),
        (lambda c: c.giftcards.list(giftcard_program_uuid=7), TypeError),
        (lambda c: c.giftcards.list(prefetch=-1), ValueError),
        (lambda c: c.giftcards.list(resume={"page": 2}), TypeError),
    ],
)
async def test_bad_input_sends_nothing(
    client: LeatClient, fake: FakeLeat, call: Any, exc: type[Exception]
) -> None:
    with pytest.raises(exc):
        await call(client)
    assert fake.requests == []


# -- the listing: client.giftcards.list() on the one pager -------------------------------------


def listed(cards: Any) -> list[tuple[str | None, str]]:
    return [(card.uuid, card.hash) for card in cards]


async def test_list_walks_every_card_once_across_pages(
    client: LeatClient, fake: FakeLeat, program: Any
) -> None:
    other = fake.add_program(name="Other")
    # old cards: 4 has no uuid, 5 and 6 no id either (told apart by their code)
    null: dict[str, Any] = {"uuid": FakeLeat.NULL}
    old: dict[str, Any] = {**null, "extra": {"id": ABSENT}}
    ours = [
        fake.add_card(program=program, hash=f"K-{i}", **{4: null, 5: old, 6: old}.get(i, {}))
        for i in range(23)
    ]
    fake.add_card(program=other)
    pager = client.giftcards.list(per_page=10, giftcard_program_uuid=program.uuid)
    first = await pager
    assert listed(first.data) == listed(ours[:10])
    assert first.meta == la.PageMeta(1, 10, None, None, last_page=3, total=23)
    fake.reset_requests()
    assert listed([card async for card in pager]) == listed(ours)
    assert [r.query for r in fake.requests][-3:] == [
        [("limit", "10"), ("giftcard_program_uuid", program.uuid), ("page", str(n))]
        for n in (1, 2, 3)
    ]
    pages = [page async for page in pager.pages()]
    assert [(p.meta.page, len(p.data)) for p in pages] == [(1, 10), (2, 10), (3, 3)]
    everyone = [card async for card in client.giftcards.list(per_page=100)]
    assert len(everyone) == len(fake.cards) == 24


async def test_list_resumes_exactly_from_a_position(
    client: LeatClient, fake: FakeLeat, program: Any
) -> None:
    old: dict[str, Any] = {"uuid": FakeLeat.NULL, "extra": {"id": ABSENT}, "hash": "OLD"}
    cards = [
        fake.add_card(program=program, **(old if i == 12 else {"hash": f"R-{i}"}))
        for i in range(25)
    ]
    pager = client.giftcards.list(per_page=10, giftcard_program_uuid=program.uuid)
    got = []
    async with aiter(pager) as walk:
        async for card in walk:
            got.append(card)
            if len(got) == 13:  # mid-page 2, just after the card without a uuid
                break
    assert pager.position is not None
    saved = json.dumps(pager.position.to_dict())
    assert "OLD" not in saved  # a position never holds a card's code (it spends the card)
    assert any(str(key).startswith("hmac-sha256:") for key in pager.position.seen)
    resumed = client.giftcards.list(
        per_page=10,
        giftcard_program_uuid=program.uuid,
        resume=la.Position.from_dict(json.loads(saved)),
    )
    got += [card async for card in resumed]
    assert listed(got) == listed(cards)
    sent = len(fake.requests)
    with pytest.raises(ValueError, match="limit"):  # other filters: refused, nothing sent
        client.giftcards.list(per_page=20, resume=resumed.position)
    assert len(fake.requests) == sent


async def test_list_of_an_unknown_program_is_a_typed_error(
    client: LeatClient, fake: FakeLeat
) -> None:
    pager = client.giftcards.list(giftcard_program_uuid="0000-missing")
    with pytest.raises(la.GiftcardProgramNotFoundError):
        await pager
    with pytest.raises(la.GiftcardProgramNotFoundError):
        [card async for card in pager]


async def test_a_listing_page_that_is_not_documented_is_an_api_error(
    client: LeatClient, fake: FakeLeat
) -> None:
    fake.add_fault(
        Fault(path="/giftcards", status=200, body={"data": [], "meta": {"page": 1, "limit": 30}})
    )
    with pytest.raises(la.LeatAPIError, match="per_page"):
        await client.giftcards.list()
