"""The fake's state: records, their indexes, the endpoints' business logic and list caching."""

from __future__ import annotations

import random
import uuid as uuid_mod
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from operator import attrgetter
from typing import Any, Final

from ._errors import leat_error
from ._listing import ListQuery
from ._records import (
    CardRecord,
    DerivedUuids,
    ProgramRecord,
    ShopRecord,
    TransactionRecord,
    UuidSentinel,
    to_ts,
)
from ._rules import check_amount, validate_create

__all__ = ["Store"]

Filters = tuple[str | None, str | None, str | None]
_NO_FILTERS: Final[Filters] = (None, None, None)
_MAX_CACHED: Final = 64
_ts_of: Final = attrgetter("ts")
_ts_id: Final = attrgetter("ts", "id")


def _matches(f: Filters, tx: TransactionRecord) -> bool:
    card_hash, program_uuid, shop_uuid = f
    if card_hash is not None and tx.card.hash != card_hash:
        return False
    if shop_uuid is not None and tx.shop.uuid != shop_uuid:
        return False
    if program_uuid is not None:
        program = tx.card.program
        return program is not None and program.uuid == program_uuid
    return True


def _new_uuid(value: str | UuidSentinel | None) -> str | None:
    if value is None:
        return str(uuid_mod.uuid4())
    if isinstance(value, UuidSentinel):
        return None
    return value


class Store:
    """Records in id order plus the indexes and caches that keep each request cheap.

    List views are cached per filter set and kept up to date on append; the views that
    depend on ``created_at`` order are dropped whenever a row arrives out of time order.
    """

    def __init__(
        self, clock: Callable[[], datetime], *, unstable_ties: random.Random | None = None
    ) -> None:
        self.clock = clock
        #: set: rows of one created_at second come back in a new order on every request, as
        #: MySQL may give them under ORDER BY created_at with LIMIT/OFFSET
        self.unstable_ties = unstable_ties
        self.shops: list[ShopRecord] = []
        self.programs: list[ProgramRecord] = []
        self.cards: list[CardRecord] = []
        self.transactions: list[TransactionRecord] = []
        self.shops_by_uuid: dict[str, ShopRecord] = {}
        self.programs_by_uuid: dict[str, ProgramRecord] = {}
        self.cards_by_uuid: dict[str, CardRecord] = {}
        self.cards_by_hash: dict[str, CardRecord] = {}
        self.cards_by_program: dict[ProgramRecord, list[CardRecord]] = {}
        self.tx_by_uuid: dict[str, TransactionRecord] = {}
        self.derived: list[DerivedUuids] = []  # one per seed() call
        # True while created_at never decreases with id, so id order is (created_at, id) order.
        self.monotone = True
        self._filtered: dict[Filters, list[TransactionRecord]] = {}
        self._by_time: dict[Filters, list[TransactionRecord]] = {}
        self._ranged: dict[tuple[Filters, int | None, int | None], list[TransactionRecord]] = {}

    # -- seeding ---------------------------------------------------------------------------

    def add_shop(self, *, name: str, uuid: str | None) -> ShopRecord:
        shop = ShopRecord(id=len(self.shops) + 1, uuid=uuid or str(uuid_mod.uuid4()), name=name)
        if shop.uuid in self.shops_by_uuid:
            raise ValueError(f"duplicate shop uuid {shop.uuid!r}")
        self.shops.append(shop)
        self.shops_by_uuid[shop.uuid] = shop
        return shop

    def add_program(self, *, name: str, uuid: str | None, **fields: Any) -> ProgramRecord:
        """A program; ``fields`` are ``ProgramRecord``'s optional ones (active, amounts, ...)."""
        program = ProgramRecord(
            id=len(self.programs) + 1, uuid=uuid or str(uuid_mod.uuid4()), name=name, **fields
        )
        if program.uuid in self.programs_by_uuid:
            raise ValueError(f"duplicate program uuid {program.uuid!r}")
        self.programs.append(program)
        self.programs_by_uuid[program.uuid] = program
        return program

    def add_card(
        self,
        *,
        balance_in_cents: int,
        program: ProgramRecord | None,
        uuid: str | UuidSentinel | None,
        hash: str | None,
        reincrementable: bool,
        max_amount_in_cents: int | None,
        expires_at: datetime | None,
        type: str = "PHYSICAL",
        active: bool = True,
        extra: Mapping[str, Any] | None = None,
    ) -> CardRecord:
        if expires_at is not None:
            to_ts(expires_at)  # refuses a naive datetime
        card_uuid = _new_uuid(uuid)
        card_hash = hash if hash is not None else uuid_mod.uuid4().hex[:16]
        if card_uuid is not None and card_uuid in self.cards_by_uuid:
            raise ValueError(f"duplicate card uuid {card_uuid!r}")
        if card_hash in self.cards_by_hash:
            raise ValueError(f"duplicate card hash {card_hash!r}")
        card = CardRecord(
            id=len(self.cards) + 1,
            uuid=card_uuid,
            hash=card_hash,
            balance_in_cents=balance_in_cents,
            program=program,
            reincrementable=reincrementable,
            max_amount_in_cents=max_amount_in_cents,
            expires_at=expires_at,
            type=type,
            active=active,
            extra=dict(extra) if extra else None,
        )
        self.cards.append(card)
        self.cards_by_hash[card_hash] = card
        if program is not None:
            self.cards_by_program.setdefault(program, []).append(card)
        if card_uuid is not None:
            self.cards_by_uuid[card_uuid] = card
        return card

    def add_transaction(
        self,
        *,
        card: CardRecord,
        shop: ShopRecord,
        amount_in_cents: int,
        created_at: datetime | None,
        uuid: str | UuidSentinel | None,
        type: str,
        settled: bool,
        settlements: Iterable[Mapping[str, Any]],
        extra: Mapping[str, Any] | None,
        custom_attributes: Mapping[str, Any] | None = None,
    ) -> TransactionRecord:
        tx_uuid = _new_uuid(uuid)
        if tx_uuid is not None and self.find(tx_uuid) is not None:
            raise ValueError(f"duplicate transaction uuid {tx_uuid!r}")
        tx = TransactionRecord(
            id=len(self.transactions) + 1,
            uuid=tx_uuid,
            amount_in_cents=amount_in_cents,
            type=type,
            settled=settled,
            card=card,
            shop=shop,
            settlements=tuple(settlements),
            ts=to_ts(created_at if created_at is not None else self.clock()),
            extra=dict(extra) if extra else None,
            custom_attributes=dict(custom_attributes) if custom_attributes is not None else None,
        )
        self.append(tx)
        return tx

    def append(self, tx: TransactionRecord) -> None:
        """Store a built record (its id must be the next one) and keep caches current."""
        txs = self.transactions
        if txs and tx.ts < txs[-1].ts:
            self.monotone = False
        txs.append(tx)
        source = tx.uuid_source()
        if isinstance(source, str):
            self.tx_by_uuid[source] = tx
        tx.card.balance_in_cents += tx.amount_in_cents
        tx.card.last_transaction = tx
        self._on_append(tx)

    def extend(self, rows: list[TransactionRecord], *, monotone: bool) -> None:
        """Bulk append for the seeder: rows already applied to their cards, in id order."""
        if rows and self.transactions and rows[0].ts < self.transactions[-1].ts:
            monotone = False
        self.monotone = self.monotone and monotone
        self.transactions.extend(rows)
        for tx in rows:
            source = tx.uuid_source()
            if isinstance(source, str):
                self.tx_by_uuid[source] = tx
        self.invalidate()

    def invalidate(self) -> None:
        self._filtered.clear()
        self._by_time.clear()
        self._ranged.clear()

    def _on_append(self, tx: TransactionRecord) -> None:
        for key, rows in self._filtered.items():
            if _matches(key, tx):
                rows.append(tx)  # ids only grow, so id order holds
        self._by_time.clear()
        self._ranged.clear()

    # -- endpoints -------------------------------------------------------------------------

    def find(self, uuid: str) -> TransactionRecord | None:
        tx = self.tx_by_uuid.get(uuid)
        if tx is not None:
            return tx
        for derived in self.derived:
            tx_id = derived.id_of(uuid)
            if tx_id is None or not 1 <= tx_id <= len(self.transactions):
                continue
            tx = self.transactions[tx_id - 1]
            if tx.uuid_source() is derived and derived.make(tx_id) == uuid:
                return tx
        return None

    def get(self, uuid: str) -> TransactionRecord:
        tx = self.find(uuid)
        if tx is None:
            raise leat_error(5010)
        return tx

    def create(self, body: Any) -> TransactionRecord:
        inp = validate_create(body)
        card = self.cards_by_uuid.get(inp.giftcard_uuid)
        if card is None:
            raise leat_error(5001)
        shop = self.shops_by_uuid.get(inp.shop_uuid)
        if shop is None:
            raise leat_error(1008)
        now = self.clock()
        check_amount(card, inp.amount_in_cents, now)
        return self._land(card, shop, inp.amount_in_cents, now, inp.custom_attributes)

    def reverse(self, uuid: str) -> TransactionRecord:
        original = self.get(uuid)
        card = original.card
        if card.last_transaction is not original:
            raise leat_error(55025)
        amount = -original.amount_in_cents
        now = self.clock()
        check_amount(card, amount, now, refund=amount > 0)
        return self._land(card, original.shop, amount, now, None)

    def _land(
        self,
        card: CardRecord,
        shop: ShopRecord,
        amount: int,
        now: datetime,
        custom_attributes: Mapping[str, Any] | None,
    ) -> TransactionRecord:
        return self.add_transaction(
            card=card,
            shop=shop,
            amount_in_cents=amount,
            created_at=now,
            uuid=None,
            type="STANDARD",
            settled=False,
            settlements=(),
            extra=None,
            custom_attributes=custom_attributes,
        )

    def list_page(self, q: ListQuery) -> tuple[list[TransactionRecord], int]:
        """The rows of the asked page and the total matching rows: O(page + log n) when warm."""
        if q.sort is None and not self.monotone and self.unstable_ties is None:
            seq = self._id_order_in_range(q.filters, q.lo_ts, q.hi_ts)
            lo, hi = 0, len(seq)
        else:
            seq = self._time_order(q.filters)
            lo = 0 if q.lo_ts is None else bisect_left(seq, q.lo_ts, key=_ts_of)
            hi = len(seq) if q.hi_ts is None else bisect_right(seq, q.hi_ts, key=_ts_of)
            hi = max(lo, hi)
        total = hi - lo
        start = (q.page - 1) * q.per_page
        if start >= total:
            return [], total
        if q.sort == "-created_at":
            stop = hi - start
            rows = self._slice(seq, max(lo, stop - q.per_page), stop)
            rows.reverse()
        else:
            begin = lo + start
            rows = self._slice(seq, begin, min(hi, begin + q.per_page))
        return rows, total

    def _slice(self, seq: list[TransactionRecord], begin: int, end: int) -> list[TransactionRecord]:
        """``seq[begin:end]``; with unstable ties, of an order that shuffles each second anew."""
        shuffle = self.unstable_ties
        if shuffle is None or begin >= end:
            return seq[begin:end]
        # the seconds the slice touches, whole: each is shuffled, then the slice cut from them
        first = bisect_left(seq, seq[begin].ts, key=_ts_of)
        last = bisect_right(seq, seq[end - 1].ts, key=_ts_of)
        window = seq[first:last]
        runs: list[TransactionRecord] = []
        i = 0
        while i < len(window):
            j = bisect_right(window, window[i].ts, lo=i, key=_ts_of)
            run = window[i:j]
            shuffle.shuffle(run)
            runs.extend(run)
            i = j
        return runs[begin - first : end - first]

    def _id_order(self, f: Filters) -> list[TransactionRecord]:
        if f == _NO_FILTERS:
            return self.transactions
        rows = self._filtered.get(f)
        if rows is None:
            if len(self._filtered) >= _MAX_CACHED:
                self._filtered.clear()
            rows = [tx for tx in self.transactions if _matches(f, tx)]
            self._filtered[f] = rows
        return rows

    def _time_order(self, f: Filters) -> list[TransactionRecord]:
        if self.monotone:
            return self._id_order(f)
        rows = self._by_time.get(f)
        if rows is None:
            if len(self._by_time) >= _MAX_CACHED:
                self._by_time.clear()
            rows = sorted(self._id_order(f), key=_ts_id)
            self._by_time[f] = rows
        return rows

    def _id_order_in_range(
        self, f: Filters, lo: int | None, hi: int | None
    ) -> list[TransactionRecord]:
        if lo is None and hi is None:
            return self._id_order(f)
        key = (f, lo, hi)
        rows = self._ranged.get(key)
        if rows is None:
            if len(self._ranged) >= _MAX_CACHED:
                self._ranged.clear()
            low = lo if lo is not None else -(2**63)
            high = hi if hi is not None else 2**63
            rows = [tx for tx in self._id_order(f) if low <= tx.ts <= high]
            self._ranged[key] = rows
        return rows
