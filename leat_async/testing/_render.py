"""Answers as JSON bytes, cheaply: each row's own fields are rendered once and then reused.

The bytes are exactly what ``json.dumps`` of ``transaction_json`` gives (default separators,
ASCII only). A row is pieced together from cached fragments of its own fields (id, uuid,
amount, type, settled, card, created_at), rendered again when ``settled`` or the card's uuid
has changed, and from fragments rendered afresh for every answer: its shop, its settlements and
its ``extra`` (a row with ``extra`` takes the slow, generic way). So a change to ``settled``,
``settlements`` or ``extra`` (even in place), or to a shop, shows in the very next answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii as _str
from typing import Any, Final

from ._records import ShopRecord, TransactionRecord, shop_json, transaction_json

__all__ = ["MAX_CACHED_ROWS", "Renderer"]

MAX_CACHED_ROWS: Final = 100_000  # ~45 MB of fragments at most; then the cache starts over
_MAX_DAYS: Final = 100_000
_DAY: Final = 86_400
_TWO_DIGITS: Final = tuple(f"{i:02d}" for i in range(60))
_SETTLEMENTS: Final = ', "settlements": '

# (settled, card uuid) the fragments were rendered from; the row's JSON up to its shop; the
# row's JSON from created_at on.
_Entry = tuple[bool, str | None, str, str]


def _dumps(value: Any) -> str:
    return json.dumps(value)


class Renderer:
    """Renders list pages and single answers; owns a bounded cache of row fragments."""

    def __init__(self, max_rows: int = MAX_CACHED_ROWS, *, echo_attributes: bool = False) -> None:
        self.max_rows = max_rows
        self.echo_attributes = echo_attributes  # rows carry their custom_attributes
        self._rows: dict[int, _Entry] = {}
        self._days: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        self._rows.clear()
        self._days.clear()

    def page(self, rows: Sequence[TransactionRecord], meta: dict[str, Any]) -> bytes:
        """``{"data": [rows...], "meta": meta}``."""
        shops: dict[ShopRecord, str] = {}
        settlements: dict[int, str] = {}
        parts = [self._row(tx, shops, settlements) for tx in rows]
        return f'{{"data": [{", ".join(parts)}], "meta": {_dumps(meta)}}}'.encode()

    def single(self, tx: TransactionRecord) -> bytes:
        """``{"data": row, "meta": []}``."""
        return f'{{"data": {self._row(tx, {}, {})}, "meta": []}}'.encode()

    def _row(
        self, tx: TransactionRecord, shops: dict[ShopRecord, str], settlements: dict[int, str]
    ) -> str:
        if tx.extra or self.echo_attributes:
            return _dumps(transaction_json(tx, echo=self.echo_attributes))
        entry = self._rows.get(tx.id)
        if entry is None or entry[0] is not tx.settled or entry[1] is not tx.card.uuid:
            fresh = self._fragments(tx)
            if fresh is None:
                return _dumps(transaction_json(tx))
            entry = fresh
        shop = tx.shop
        shop_part = shops.get(shop)
        if shop_part is None:
            shop_part = shops[shop] = _shop(shop)
        batch = tx.settlements
        if batch:
            batch_part = settlements.get(id(batch))
            if batch_part is None:
                # Keyed by id(): safe, the tuple outlives this one render.
                batch_part = settlements[id(batch)] = _dumps([dict(s) for s in batch])
        else:
            batch_part = "[]"
        return f"{entry[2]}{shop_part}{_SETTLEMENTS}{batch_part}{entry[3]}"

    def _fragments(self, tx: TransactionRecord) -> _Entry | None:
        """Render and cache the row's own fields, or ``None`` if one is of an unusual type."""
        card = tx.card
        settled, card_uuid, uuid = tx.settled, card.uuid, tx.uuid
        if not (
            type(tx.id) is int
            and type(tx.amount_in_cents) is int
            and type(tx.ts) is int
            and type(card.id) is int
            and type(settled) is bool
            and isinstance(tx.type, str)
            and (card_uuid is None or isinstance(card_uuid, str))
            and (uuid is None or isinstance(uuid, str))
        ):
            return None
        head = (
            f'{{"id": {tx.id}, "uuid": {_str(uuid) if uuid is not None else "null"}, '
            f'"amount_in_cents": {tx.amount_in_cents}, "type": {_str(tx.type)}, '
            f'"settled": {"true" if settled else "false"}, '
            f'"card": {{"id": {card.id}, '
            f'"uuid": {_str(card_uuid) if card_uuid is not None else "null"}}}, "shop": '
        )
        entry = (settled, card_uuid, head, f', "created_at": "{self._created_at(tx.ts)}"}}')
        if len(self._rows) >= self.max_rows:
            self._rows.clear()  # bounded and O(1) amortized; a later hit renders again
        self._rows[tx.id] = entry
        return entry

    def _created_at(self, ts: int) -> str:
        """``format_ts(ts)``, with the date part cached per day."""
        day, secs = divmod(ts, _DAY)
        date = self._days.get(day)
        if date is None:
            if len(self._days) >= _MAX_DAYS:
                self._days.clear()
            date = self._days[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * _DAY))
        minutes, secs = divmod(secs, 60)
        hours, minutes = divmod(minutes, 60)
        two = _TWO_DIGITS
        return f"{date}{two[hours]}:{two[minutes]}:{two[secs]}+00:00"


def _shop(shop: ShopRecord) -> str:
    if type(shop.id) is int and isinstance(shop.uuid, str) and isinstance(shop.name, str):
        return f'{{"id": {shop.id}, "uuid": {_str(shop.uuid)}, "name": {_str(shop.name)}}}'
    return _dumps(shop_json(shop))
