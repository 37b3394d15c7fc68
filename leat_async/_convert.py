"""The one cattrs converter, made by a factory and configured in one place.

Primitive fields are checked strictly (an ``int`` field refuses ``"12"``, ``12.5`` and ``True``),
so a wrong answer fails loudly instead of turning money into something else. Structuring runs on the
fast path (no detailed validation); only when it fails is the value structured again with detailed
validation, to say precisely what was wrong.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any, TypeVar, get_type_hints

import cattrs
from cattrs.gen import make_dict_structure_fn, override

from ._giftcard_models import Giftcard, GiftcardProgram, GiftcardProgramRef
from ._models import CardRef, GiftcardTransaction, PageMeta, Shop

__all__ = [
    "StructureError",
    "data_parser",
    "make_converter",
    "structure",
    "transaction_from_json",
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
_LOOSE_MODELS = (GiftcardProgramRef, Giftcard, GiftcardProgram)


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


def data_parser(cls: type[T]) -> Callable[[Any], T]:
    """A parse function for ``Dispatcher.send``: the answer's ``data`` member as ``cls``."""

    def parse(doc: Any) -> T:
        return structure(doc["data"], cls)

    return parse


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
