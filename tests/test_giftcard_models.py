"""Giftcard models: tolerant where the giftcard endpoints are loose, strict about money."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leat_async import Giftcard, GiftcardProgram, GiftcardProgramRef
from leat_async._api.convert import StructureError, structure

from .test_models import MISSING, both_passes, with_field

aware = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))]),
)
# (as sent, as read)
loose_bools = st.sampled_from([(True, True), (False, False), ("true", True), ("false", False)])
dates = st.one_of(
    st.sampled_from([(None, None), ("", None), (MISSING, None)]),
    aware.map(lambda d: (d.isoformat(), d)),
)
texts = st.text(max_size=30)
optional_texts = st.one_of(st.none(), texts).map(lambda t: (t, t)) | st.just((MISSING, None))
program_refs = st.one_of(
    st.sampled_from([(None, None), (MISSING, None)]),
    st.tuples(optional_texts, optional_texts).map(
        lambda pair: (
            {k: v for k, (v, _) in zip(("uuid", "name"), pair, strict=True) if v is not MISSING},
            GiftcardProgramRef(pair[0][1], pair[1][1]),
        )
    ),
)
cents = st.integers(min_value=-(2**53), max_value=2**53)
# (as sent, as read) for the fields that are an int, null or left out
optional_ints = st.one_of(
    cents.map(lambda c: (c, c)), st.sampled_from([(None, None), (MISSING, None)])
)


def _doc(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not MISSING}


def card_doc(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "uuid": "45d7ce10-16cc-4bb7-b37f-e8c4bc553fdf",
        "hash": "KRABBY-42",
        "type": "PHYSICAL",
        "amount_in_cents": 2500,
        "active": True,
        "upgradeable": False,
        "expiration_date": None,
        "giftcard_program": {"uuid": "p-1", "name": "Krabby Card"},
        "id": 7,
        "display_amount": "€ 25,00",
    }
    base.update(over)
    return base


@given(
    code=texts,
    kind=texts,
    amount=cents,
    active=loose_bools,
    upgradeable=loose_bools,
    expiration=dates,
    program=program_refs,
    card_id=optional_ints,
    display=st.one_of(st.just(MISSING), texts),
)
def test_any_card_the_api_may_send_is_read(
    code: str,
    kind: str,
    amount: int,
    active: tuple[Any, bool],
    upgradeable: tuple[Any, bool],
    expiration: tuple[Any, datetime | None],
    program: tuple[Any, GiftcardProgramRef | None],
    card_id: tuple[Any, int | None],
    display: Any,
) -> None:
    doc = _doc(
        uuid="u-1",
        hash=code,
        type=kind,
        amount_in_cents=amount,
        active=active[0],
        upgradeable=upgradeable[0],
        expiration_date=expiration[0],
        giftcard_program=program[0],
        id=card_id[0],
        display_amount=display,
    )
    card = structure(doc, Giftcard)
    assert card == Giftcard(
        "u-1",
        code,
        kind,
        amount,
        active[1],
        upgradeable[1],
        expiration[1],
        program[1],
        card_id[1],
    )
    assert type(card.amount_in_cents) is int
    assert card.expiration_date is None or card.expiration_date.tzinfo is not None


@given(
    active=st.one_of(loose_bools, st.sampled_from([(None, None), (MISSING, None)])),
    numbers=st.lists(optional_ints, min_size=5, max_size=5),
    flow=optional_texts,
)
def test_any_program_the_api_may_send_is_read(
    active: tuple[Any, bool | None],
    numbers: list[tuple[Any, int | None]],
    flow: tuple[Any, str | None],
) -> None:
    (high, high_v), (low, low_v), (days, days_v), (count, count_v), (pid, pid_v) = numbers
    doc = _doc(
        uuid="p-1",
        name="Krabby Card",
        active=active[0],
        max_amount_in_cents=high,
        min_amount_in_cents=low,
        expiration_days=days,
        calculator_flow=flow[0],
        card_count=count,
        id=pid,
    )
    assert structure([doc], list[GiftcardProgram]) == [
        GiftcardProgram(
            "p-1", "Krabby Card", active[1], high_v, low_v, days_v, flow[1], count_v, pid_v
        )
    ]


not_an_int: st.SearchStrategy[Any] = st.one_of(
    cents.map(str),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.just([]),
)


@given(amount=not_an_int)
def test_a_balance_is_an_int_and_nothing_else(amount: Any) -> None:
    with pytest.raises(StructureError, match=r"data\.amount_in_cents"):
        structure(card_doc(amount_in_cents=amount), Giftcard)


@given(field=st.sampled_from(["max_amount_in_cents", "min_amount_in_cents"]), value=not_an_int)
def test_program_amounts_are_ints_or_null(field: str, value: Any) -> None:
    doc = {"uuid": "p", "name": "P", field: value}
    if value is None:
        assert getattr(structure(doc, GiftcardProgram), field) is None
        return
    with pytest.raises(StructureError, match=field):
        structure(doc, GiftcardProgram)


@given(
    field=st.sampled_from(["active", "upgradeable"]),
    value=st.one_of(
        st.sampled_from(["True", "FALSE", "1", "0", "yes", "", " true", None]),
        st.integers(),
        st.just({}),
    ),
)
def test_booleans_are_true_false_or_their_text_only(field: str, value: Any) -> None:
    with pytest.raises(StructureError, match=field):
        structure(card_doc(**{field: value}), Giftcard)


@pytest.mark.parametrize(
    ("over", "where"),
    [
        ({"expiration_date": "2030-01-01"}, "expiration_date"),  # no time zone
        ({"expiration_date": "someday"}, "expiration_date"),
        ({"expiration_date": 1893456000}, "expiration_date"),
        ({"uuid": 7}, "uuid"),
        ({"hash": 42}, "hash"),
        ({"type": 1}, "type"),
        ({"giftcard_program": "Krabby Card"}, "giftcard_program"),
        ({"giftcard_program": {"name": 5}}, r"giftcard_program\.name"),
        ({"id": "7"}, "id"),
    ],
)
def test_what_is_not_loose_says_where(over: dict[str, Any], where: str) -> None:
    with pytest.raises(StructureError, match=where):
        structure(card_doc(**over), Giftcard)


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=5),
    st.floats(allow_nan=False, min_value=-5, max_value=5),
    st.sampled_from(["x", "true", "false", "", "2030-01-01T00:00:00+00:00", "2030-01-01"]),
    st.just([]),
    st.just({}),
    st.just(MISSING),
)


@given(
    field=st.sampled_from(
        [
            *("uuid", "hash", "type", "amount_in_cents", "active", "upgradeable"),
            *("expiration_date", "giftcard_program", "giftcard_program.uuid", "id"),
        ]
    ),
    value=_values,
)
def test_fast_and_detailed_passes_agree(field: str, value: Any) -> None:
    fast, detailed = both_passes(with_field(card_doc(), field, value), Giftcard)
    assert fast == detailed


def test_an_old_card_without_a_uuid_is_read() -> None:
    card = structure(card_doc(uuid=None), Giftcard)
    assert card.uuid is None and card.hash == card_doc()["hash"]
