"""The giftcard endpoints of the fake: find by hash, get, list and create cards; list programs.

Each takes the store and the request's parts and returns the status and JSON bytes of the answer,
or raises an ``ApiError`` (unknown card 5001, unknown program 1100, bad input 1003).
"""

from __future__ import annotations

import json
import re
import uuid as uuid_mod
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Final

from ._errors import leat_error, validation_error
from ._listing import last_page, parse_paging
from ._records import CardRecord, ProgramRecord, card_json, program_json
from ._rules import validate_create_card
from ._store import Store

__all__ = ["giftcard_answer"]

_CARDS: Final = "/giftcards"
_FIND: Final = "/giftcards/find-one-by"
_CARD: Final = re.compile(r"/giftcards/([^/]+)")
_PROGRAMS: Final = "/giftcard-programs"
DEFAULT_LIMIT: Final = 30

Query = Sequence[tuple[str, str]]


def giftcard_answer(
    store: Store, method: str, path: str, query: Query, body: Any
) -> tuple[int, bytes] | None:
    """The answer to a giftcard request, or ``None`` when the path and method are not one."""
    if method == "GET":
        if path == _FIND:
            return _one(find_by_hash(store, query))
        if path == _CARDS:
            return _dump(list_cards(store, query))
        if path == _PROGRAMS:
            return _dump({"data": programs_json(store), "meta": []})
        if m := _CARD.fullmatch(path):
            return _one(get_card(store, m[1]))
    elif method == "POST" and path == _CARDS:
        return _one(create_card(store, body))
    return None


def _dump(doc: Any) -> tuple[int, bytes]:
    return 200, json.dumps(doc).encode()


def _one(card: CardRecord) -> tuple[int, bytes]:
    return _dump({"data": card_json(card), "meta": []})


def find_by_hash(store: Store, query: Query) -> CardRecord:
    code = dict(query).get("hash")
    if not code:
        raise validation_error({"hash": ["The hash field is required."]})
    card = store.cards_by_hash.get(code)
    if card is None:
        raise leat_error(5001)
    return card


def get_card(store: Store, uuid: str) -> CardRecord:
    card = store.cards_by_uuid.get(uuid)
    if card is None:
        raise leat_error(5001)
    return card


def _program(store: Store, uuid: str) -> ProgramRecord:
    program = store.programs_by_uuid.get(uuid)
    if program is None:
        raise leat_error(1100)
    return program


def list_cards(store: Store, query: Query) -> dict[str, Any]:
    """One page of cards (id order), of one program with ``giftcard_program_uuid``."""
    q = dict(query)
    errors: dict[str, list[str]] = {}
    limit, page = parse_paging(q, errors, size_key="limit", default_size=DEFAULT_LIMIT)
    if errors:
        raise validation_error(errors)
    program_uuid = q.get("giftcard_program_uuid")
    if program_uuid:
        cards: Sequence[CardRecord] = store.cards_by_program.get(_program(store, program_uuid), [])
    else:
        cards = store.cards
    start = (page - 1) * limit
    meta = {
        "page": page,
        "per_page": limit,
        "last_page": last_page(len(cards), limit),
        "total": len(cards),
    }
    return {"data": [card_json(c) for c in cards[start : start + limit]], "meta": meta}


def create_card(store: Store, body: Any) -> CardRecord:
    """A new card of the program, balance 0, loadable up to the program's maximum."""
    program_uuid, card_type = validate_create_card(body)
    program = _program(store, program_uuid)
    days = program.expiration_days
    return store.add_card(
        balance_in_cents=0,
        program=program,
        uuid=None,
        hash=uuid_mod.uuid4().hex[:16],
        reincrementable=True,
        max_amount_in_cents=program.max_amount_in_cents,
        expires_at=None if days is None else store.clock() + timedelta(days=days),
        type=card_type,
    )


def programs_json(store: Store) -> list[dict[str, Any]]:
    return [program_json(p, len(store.cards_by_program.get(p, ()))) for p in store.programs]
