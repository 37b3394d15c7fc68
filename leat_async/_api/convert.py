"""From an answer's bytes to the models: the one cattrs converter, and the transactions' fast path.

Primitive fields are checked strictly (an ``int`` field refuses ``"12"``, ``12.5`` and ``True``),
so a wrong answer fails loudly instead of turning money into something else. Structuring runs on the
fast path (no detailed validation); only when it fails is the value structured again with detailed
validation, to say precisely what was wrong.

Transactions, the rows a bulk export reads by the million, are decoded by msgspec straight from
the bytes into the same attrs classes (C speed, one pass, no intermediate dicts), where it is
installed (a core dependency on CPython). msgspec checks types as strictly as the converter;
what it cannot decode, or decodes with a naive ``created_at``, goes the converter's way, which
decides and explains. The two agree on every well-formed answer (a property test holds them
together); msgspec is only more lenient in reading timestamps (a lower-case ``t`` or ``z``;
it rounds fractions beyond microseconds where the standard library truncates), and it reads
integers beyond 64 bits exactly, where orjson makes floats of them (which the converter refuses).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cache
from types import GenericAlias
from typing import Any, Generic, TypeVar, get_args, get_origin, get_type_hints

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from .answers import snippet
from .giftcard_models import Giftcard, GiftcardProgram, GiftcardProgramRef
from .models import CardRef, GiftcardTransaction, Page, PageMeta, Shop
from .webhook_models import WebhookSubscription
from .wire import parse_json

try:  # a core dependency on CPython
    import msgspec.json

    _Decoder: Any = msgspec.json.Decoder
except ImportError:  # pragma: no cover - depends on the environment (PyPy)
    _Decoder = None

__all__ = [
    "StructureError",
    "data_parser",
    "document",
    "echoed_attributes",
    "make_converter",
    "structure",
    "transaction_from_json",
    "transaction_page",
    "transaction_parser",
]

T = TypeVar("T")


class StructureError(ValueError):
    """The answer does not have the documented shape; the text says where and why."""


def _strict_int(value: Any, _: type) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {type(value).__name__} {value!r:.40}")
    return value


def _strict_str(value: Any, _: type) -> str:
    if type(value) is not str:
        raise TypeError(f"expected a string, got {type(value).__name__} {value!r:.40}")
    return value


def _strict_bool(value: Any, _: type) -> bool:
    if type(value) is not bool:
        raise TypeError(f"expected true or false, got {type(value).__name__} {value!r:.40}")
    return value


def _optional_str(value: Any, _: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    raise TypeError(f"expected a string or null, got {type(value).__name__} {value!r:.40}")


def _optional_int(value: Any, _: Any) -> int | None:
    if value is None or type(value) is int:
        return value
    raise TypeError(f"expected an integer or null, got {type(value).__name__} {value!r:.40}")


def _aware_datetime(value: Any, _: type) -> datetime:
    if type(value) is not str:
        raise TypeError(f"expected an ISO 8601 string, got {type(value).__name__}")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no timezone")
    return parsed


def _loose_bool(value: Any, _: Any) -> bool:
    if type(value) is bool:
        return value
    if type(value) is str and value in _BOOL_TEXT:
        return _BOOL_TEXT[value]
    raise TypeError(f'expected true, false, "true" or "false", got {value!r:.40}')


def _loose_optional_bool(value: Any, _: Any) -> bool | None:
    return None if value is None else _loose_bool(value, _)


def _blank_datetime(value: Any, _: Any) -> datetime | None:
    return None if value is None or value == "" else _aware_datetime(value, datetime)


_BOOL_TEXT = {"true": True, "false": False}

#: Where the giftcard endpoints are loose, by field type: booleans as "true"/"false" too, and
#: an empty string for no date. Everything else (money first) is read as strictly as elsewhere.
_LOOSE_HOOKS: tuple[tuple[Any, Callable[[Any, Any], Any]], ...] = (
    (bool, _loose_bool),
    (bool | None, _loose_optional_bool),
    (datetime | None, _blank_datetime),
)
_LOOSE_MODELS = (GiftcardProgramRef, Giftcard, GiftcardProgram, WebhookSubscription)


def _loose_structure_fn(cls: type, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    overrides = {
        name: override(struct_hook=hook)
        for name, hint in get_type_hints(cls).items()
        for kind, hook in _LOOSE_HOOKS
        if hint == kind
    }
    # per-field overrides go in as keywords, which mypy cannot tell from the named options
    structure_fn: Callable[..., Callable[[Any, Any], Any]] = make_dict_structure_fn
    fields_of = structure_fn(cls, conv, **overrides)

    def from_object(value: Any, t: Any) -> Any:
        # cattrs looks keys up with `in`: a string with none of them would pass as all-defaults
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {type(value).__name__} {value!r:.40}")
        return fields_of(value, t)

    return from_object


def _any_tuple(value: Any, _: type) -> tuple[Any, ...]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return tuple(value)


def _is_sequence(t: Any) -> bool:
    return get_origin(t) is Sequence


def _sequence_as_tuple(conv: cattrs.Converter) -> Callable[[Any], Callable[[Any, Any], Any]]:
    """A ``Sequence[X]`` (``Page.data``) is structured as ``tuple[X, ...]``: what msgspec's fast
    path makes of it, and cattrs' own choice only from 25.2 on (a list before)."""

    def hook_for(t: Any) -> Callable[[Any, Any], Any]:
        as_tuple: Any = GenericAlias(tuple, (*get_args(t), ...))  # tuple[X, ...]
        return lambda value, _: conv.structure(value, as_tuple)

    return hook_for


_NoneType = type(None)


def _fast_transaction(o: Any, _: Any) -> GiftcardTransaction:
    """The bulk-export hot path: one row with inline checks, no per-field hook calls.

    It accepts exactly what the cattrs-generated structure function accepts (a property test
    holds the two together); anything it refuses goes to the detailed pass for the explanation.
    """
    card, shop = o["card"], o["shop"]
    row_id, uuid, amount = o["id"], o["uuid"], o["amount_in_cents"]
    kind, settled, settlements, created = o["type"], o["settled"], o["settlements"], o["created_at"]
    card_id, card_uuid = card["id"], card["uuid"]
    shop_id, shop_uuid, shop_name = shop["id"], shop["uuid"], shop["name"]
    if (
        type(row_id) is not int
        or type(amount) is not int
        or type(kind) is not str
        or type(settled) is not bool
        or type(settlements) is not list
        or type(card_id) is not int
        or type(shop_id) is not int
        or type(shop_name) is not str
        or type(uuid) not in _OPTIONAL_STR
        or type(card_uuid) not in _OPTIONAL_STR
        or type(shop_uuid) not in _OPTIONAL_STR
        or type(created) is not str
    ):
        raise TypeError("a field of the row has the wrong type")
    created_at = datetime.fromisoformat(created)
    if created_at.tzinfo is None:
        raise ValueError("created_at has no timezone")
    return GiftcardTransaction(
        row_id,
        uuid,
        amount,
        kind,
        settled,
        CardRef(card_id, card_uuid),
        Shop(shop_id, shop_uuid, shop_name),
        tuple(settlements),
        created_at,
    )


_OPTIONAL_STR = frozenset({str, _NoneType})


def make_converter(*, detailed_validation: bool = False) -> cattrs.Converter:
    """A converter for the API's models; never the global one."""
    conv = cattrs.Converter(detailed_validation=detailed_validation, forbid_extra_keys=False)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook(datetime, _aware_datetime)
    if not detailed_validation:  # the detailed path keeps cattrs' own, better-explained unions
        conv.register_structure_hook_func(lambda t: t == str | None, _optional_str)
        conv.register_structure_hook_func(lambda t: t == int | None, _optional_int)
    conv.register_structure_hook_func(lambda t: t == tuple[Any, ...], _any_tuple)
    conv.register_structure_hook_factory(_is_sequence, _sequence_as_tuple(conv))
    # Page is generic: cattrs makes the hook of each Page[Item] on first use, from these
    for cls in (CardRef, Shop, GiftcardTransaction, PageMeta):
        if cls is GiftcardTransaction and not detailed_validation:
            conv.register_structure_hook(cls, _fast_transaction)
        else:
            conv.register_structure_hook(cls, make_dict_structure_fn(cls, conv))
    for model in _LOOSE_MODELS:
        conv.register_structure_hook(model, _loose_structure_fn(model, conv))
    return conv


@cache
def _converter(detailed: bool) -> cattrs.Converter:
    return make_converter(detailed_validation=detailed)


def structure(value: Any, cls: type[T]) -> T:
    """Structure ``value`` into ``cls``; raise :class:`StructureError` saying what was wrong."""
    with contextlib.suppress(Exception):  # any failure is explained by the detailed pass
        return _converter(False).structure(value, cls)
    try:
        result = _converter(True).structure(value, cls)
    except Exception as exc:
        raise StructureError(_explain(exc)) from None
    return result  # pragma: no cover - the fast path and the detailed path disagree


def document(body: bytes) -> dict[str, Any]:
    """A 2xx answer's JSON document: an object with a ``data`` member; ``ValueError`` if not."""
    try:
        doc = parse_json(body)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc}; {snippet(body)})") from None
    if not isinstance(doc, dict) or "data" not in doc:
        raise ValueError("no 'data' member")
    return doc


def data_parser(cls: type[T]) -> Callable[[bytes], T]:
    """A parse function for ``Dispatcher.send``: the answer's ``data`` member as ``cls``."""

    def parse(body: bytes) -> T:
        return structure(document(body)["data"], cls)

    return parse


@attrs.define(slots=True)
class _Data(Generic[T]):
    data: T


_TxPage = Page[GiftcardTransaction]
D = TypeVar("D")


def _fast(
    decoded: type[D], finish: Callable[[D], T | None], slow: Callable[[bytes], T]
) -> Callable[[bytes], T]:
    """``slow`` sped up: msgspec decodes the body as ``decoded``, ``finish`` makes the result of
    it (``None``: not for the fast path). Anything else goes the converter's way (``slow``)."""
    if _Decoder is None:  # pragma: no cover - depends on the environment (PyPy)
        return slow
    decode = _Decoder(decoded).decode

    def parse(body: bytes) -> T:
        try:
            value = finish(decode(body))
        except Exception:  # whatever msgspec refuses, the converter decides and explains
            value = None
        return slow(body) if value is None else value

    return parse


def _finished_page(page: Page[GiftcardTransaction]) -> Page[GiftcardTransaction] | None:
    rows = tuple(page.data)  # a tuple, as the converter makes it
    for tx in rows:
        if tx.created_at.tzinfo is None:
            return None
    page.data = rows  # the page is new: ours to finish
    return page


def _finished_one(wrapped: _Data[GiftcardTransaction]) -> GiftcardTransaction | None:
    return wrapped.data if wrapped.data.created_at.tzinfo is not None else None


def _page_from_document(body: bytes) -> Page[GiftcardTransaction]:
    return structure(document(body), _TxPage)


_one_from_document = data_parser(GiftcardTransaction)

#: A page of the transactions listing from an answer's body (``Listing.parse``).
transaction_page = _fast(_TxPage, _finished_page, _page_from_document)
#: One transaction from an answer's body (``get``, ``create``, ``reverse``).
transaction_parser = _fast(_Data[GiftcardTransaction], _finished_one, _one_from_document)


def echoed_attributes(body: bytes, rows: int) -> list[Any]:
    """The ``custom_attributes`` each of a listing answer's ``rows`` rows carries, where the
    server echoes them (``None`` for a row without; the documented answer has none)."""
    if b'"custom_attributes"' not in body:
        return [None] * rows
    data = document(body)["data"]
    if not isinstance(data, list) or len(data) != rows:
        return [None] * rows
    return [row.get("custom_attributes") if isinstance(row, dict) else None for row in data]


def _explain(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        messages = cattrs.transform_error(exc, path="data")
        return "; ".join(messages[:5])
    return str(exc) or type(exc).__name__


def transaction_from_json(doc: Any) -> GiftcardTransaction:
    """One transaction from its JSON document in the API's shape (e.g. a line of an export).

    Raises ``ValueError`` saying what was wrong, with the same checks as the client's answers.
    """
    return structure(doc, GiftcardTransaction)
