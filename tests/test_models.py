"""Structuring answers into models: tolerant where the API is loose, strict about money."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from leat_async import GiftcardTransaction, Page
from leat_async._api.convert import (
    StructureError,
    _one_from_document,
    _page_from_document,
    make_converter,
    structure,
    transaction_page,
    transaction_parser,
)


def row(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 2271,
        "uuid": "355892c5-6bf7-4167-bae2-3bf2bf44c3dc",
        "amount_in_cents": -1000,
        "type": "STANDARD",
        "settled": False,
        "card": {"id": 41650, "uuid": "45d7ce10-16cc-4bb7-b37f-e8c4bc553fdf"},
        "shop": {"id": 15, "uuid": "123123", "name": "Krusty Krab"},
        "settlements": [],
        "created_at": "2023-11-12T16:10:15+00:00",
    }
    base.update(over)
    return base


def test_reference_example() -> None:
    tx = structure(row(), GiftcardTransaction)
    assert tx.amount_in_cents == -1000 and type(tx.amount_in_cents) is int
    assert tx.card.uuid == "45d7ce10-16cc-4bb7-b37f-e8c4bc553fdf"
    assert tx.shop.name == "Krusty Krab"
    assert tx.created_at == datetime(2023, 11, 12, 16, 10, 15, tzinfo=UTC)


def test_old_rows_unknown_fields_types_and_settlements() -> None:
    tx = structure(
        row(
            uuid=None,
            card={"id": 1, "uuid": None, "hash": "x"},
            type="REVERSAL",
            settlements=[{"id": 9, "whatever": [1]}],
            brand_new_field={"a": 1},
        ),
        GiftcardTransaction,
    )
    assert tx.uuid is None and tx.card.uuid is None
    assert tx.type == "REVERSAL"
    assert tx.settlements == ({"id": 9, "whatever": [1]},)


def test_other_offsets_stay_aware() -> None:
    tx = structure(row(created_at="2023-11-12T17:10:15+01:00"), GiftcardTransaction)
    assert tx.created_at.utcoffset() == timedelta(hours=1)
    assert tx.created_at == datetime(2023, 11, 12, 16, 10, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("over", "where"),
    [
        ({"amount_in_cents": 12.5}, "amount_in_cents"),
        ({"amount_in_cents": "1250"}, "amount_in_cents"),
        ({"amount_in_cents": True}, "amount_in_cents"),
        ({"settled": "false"}, "settled"),
        ({"created_at": "2023-11-12T16:10:15"}, "created_at"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"card": None}, "card"),
        ({"uuid": 7}, "uuid"),
    ],
)
def test_wrong_types_say_where(over: dict[str, Any], where: str) -> None:
    with pytest.raises(StructureError, match=where):
        structure(row(**over), GiftcardTransaction)


def test_missing_field_says_which() -> None:
    bad = row()
    del bad["shop"]
    with pytest.raises(StructureError, match="shop"):
        structure(bad, GiftcardTransaction)


def test_page_with_empty_meta_positions() -> None:
    page = structure(
        {
            "data": [],
            "meta": {
                "page": 3,
                "limit": 100,
                "viewing_from": None,
                "viewing_to": None,
                "last_page": 2,
                "total": 150,
            },
        },
        Page[GiftcardTransaction],
    )
    assert list(page.data) == [] and page.meta.viewing_from is None and page.meta.last_page == 2


def test_bad_row_in_a_page_names_its_index() -> None:
    meta = {"page": 1, "limit": 2, "viewing_from": 1, "viewing_to": 2, "last_page": 1, "total": 2}
    doc = {"data": [row(), row(amount_in_cents=None)], "meta": meta}
    with pytest.raises(StructureError, match=r"\[1\]\.amount_in_cents"):
        structure(doc, Page[GiftcardTransaction])


@pytest.mark.parametrize("detailed", [False, True], ids=["fast", "detailed"])
def test_a_page_structures_with_every_cattrs_we_allow(detailed: bool) -> None:
    # cattrs before 26.1 resolves a generic model's string annotations on first use of Page[X],
    # which fails for the alias; before 25.2 it makes a list of a Sequence. The models resolve
    # their annotations when defined and the converter makes a tuple, as msgspec's path does.
    assert not any(isinstance(f.type, str) for f in attrs.fields(Page))
    meta = {"page": 1, "limit": 2, "viewing_from": 1, "viewing_to": 2, "last_page": 1, "total": 2}
    doc = {"data": [row(), row(id=2272)], "meta": meta}
    page = make_converter(detailed_validation=detailed).structure(doc, Page[GiftcardTransaction])
    assert type(page.data) is tuple
    assert [tx.id for tx in page.data] == [2271, 2272]
    assert page == transaction_page(json.dumps(doc).encode())


ids = st.integers(min_value=1, max_value=2**53)
uuids = st.none() | st.uuids().map(str)
aware = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))]),
).map(lambda d: d.replace(microsecond=0))


@given(
    id=ids,
    uuid=uuids,
    amount=st.integers(min_value=-(2**40), max_value=2**40).filter(bool),
    kind=st.text(min_size=1, max_size=20),
    settled=st.booleans(),
    when=aware,
    shop_name=st.text(max_size=40),
)
def test_any_documented_row_round_trips(
    id: int, uuid: str | None, amount: int, kind: str, settled: bool, when: datetime, shop_name: str
) -> None:
    doc = row(
        id=id,
        uuid=uuid,
        amount_in_cents=amount,
        type=kind,
        settled=settled,
        created_at=when.isoformat(),
        shop={"id": 1, "uuid": None, "name": shop_name},
    )
    tx = structure(doc, GiftcardTransaction)
    assert (tx.id, tx.uuid, tx.amount_in_cents, tx.type, tx.settled) == (
        id,
        uuid,
        amount,
        kind,
        settled,
    )
    assert tx.created_at == when and tx.shop.name == shop_name


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=5),
    st.floats(allow_nan=False, min_value=-5, max_value=5),
    st.sampled_from(["x", "2023-11-12T16:10:15+00:00", "2023-11-12T16:10:15", ""]),
    st.just([]),
    st.just({}),
)


@given(
    field=st.sampled_from(
        [
            *("id", "uuid", "amount_in_cents", "type", "settled", "settlements", "created_at"),
            *("card.id", "card.uuid", "shop.id", "shop.uuid", "shop.name"),
        ]
    ),
    value=_values,
)
def test_fast_path_accepts_exactly_what_the_detailed_path_accepts(field: str, value: Any) -> None:
    fast, detailed = both_passes(with_field(row(), field, value), GiftcardTransaction)
    assert fast == detailed


MISSING: Any = object()  # as a value for with_field: leave the key out


def with_field(doc: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    """A copy of ``doc`` with the dotted ``field`` set to ``value`` (or removed: ``MISSING``)."""
    doc = dict(doc)
    target = doc
    *parents, leaf = field.split(".")
    for name in parents:
        target = target[name] = dict(target[name])
    if value is MISSING:
        del target[leaf]
    else:
        target[leaf] = value
    return doc


def both_passes(doc: Any, cls: type) -> tuple[Any, Any]:
    """What the fast and the detailed converter make of ``doc``; ``None`` for a refusal."""
    outcomes = []
    for conv in (make_converter(), make_converter(detailed_validation=True)):
        try:
            outcomes.append(conv.structure(doc, cls))
        except Exception:
            outcomes.append(None)
    return outcomes[0], outcomes[1]


_META = {"page": 1, "limit": 100, "viewing_from": 1, "viewing_to": 1, "last_page": 1, "total": 1}
_WHEN = st.sampled_from(
    [
        "2023-11-12T16:10:15+00:00",
        "2023-11-12T16:10:15Z",
        "2023-11-12T17:10:15+01:00",
        "2023-11-12T16:10:15.250+00:00",
        "2023-11-12T16:10:15.123456-05:00",
        "2023-11-12T16:10:15",  # naive: refused
        "2023-11-12",
        "2023-11-12T16:10:15+01:30:15",  # an offset with seconds: only the converter reads it
    ]
)


def read_both_ways(body: bytes) -> list[Any]:
    """A page body read by the client's parsers and by the converter alone; None: refused."""
    outcomes: list[Any] = []
    for read in (transaction_page, _page_from_document, transaction_parser, _one_from_document):
        try:
            outcomes.append(read(body))
        except ValueError:
            outcomes.append(None)
    return outcomes


@given(
    field=st.sampled_from(
        [
            *("id", "uuid", "amount_in_cents", "type", "settled", "settlements", "created_at"),
            *("card", "card.id", "card.uuid", "shop.id", "shop.uuid", "shop.name"),
        ]
    ),
    # (orjson reads integers beyond 64 bits as floats, which the converter refuses; msgspec
    # reads them exactly: the two parsers, not the two paths, differ there)
    value=_values | _WHEN | st.integers(-(2**63), 2**64 - 1) | st.just(MISSING),
    extra=st.booleans(),
)
def test_answers_read_from_bytes_agree_with_the_converter(
    field: str, value: Any, extra: bool
) -> None:
    doc = with_field(row(), field, value)
    if extra:
        doc["brand_new_field"] = {"nested": [1, 2]}
    page = json.dumps({"data": [row(), doc], "meta": _META}).encode()
    fast_page, slow_page, _, _ = read_both_ways(page)
    assert fast_page == slow_page
    if fast_page is not None:
        assert type(fast_page.data) is tuple and fast_page.data[1].created_at.tzinfo is not None
    one = json.dumps({"data": doc}).encode()
    _, _, fast_one, slow_one = read_both_ways(one)
    assert fast_one == slow_one


@pytest.mark.parametrize(
    "body",
    [b"", b"<html>", b'{"data": [', b'{"data": {}}', b'{"meta": {}}', b"\xff\xfe", b"[]"],
)
def test_unusable_bodies_are_refused_the_same_way(body: bytes) -> None:
    assert read_both_ways(body) == [None] * 4
