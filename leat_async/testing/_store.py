"""The fake's state: records, their indexes, the endpoints' business logic and list caching."""

from __future__ import annotations

import random
import uuid as uuid_mod
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

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
from ._views import ListViews

__all__ = ["Store"]


def _new_uuid(value: str | UuidSentinel | None) -> str | None:
    if value is None:
        return str(uuid_mod.uuid4())
    if isinstance(value, UuidSentinel):
        return None
    return value


class Store:
    """Records in id order plus the indexes and caches that keep each request cheap.

    The listing's views (per filter set, in id and in time order) live in :class:`ListViews`.
    """

    def __init__(
        self, clock: Callable[[], datetime], *, unstable_ties: random.Random | None = None
    ) -> None:
        self.clock = clock
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
        self.views = ListViews(self.transactions, unstable_ties=unstable_ties)

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
        self.views.arriving(tx)
        self.transactions.append(tx)
        source = tx.uuid_source()
        if isinstance(source, str):
            self.tx_by_uuid[source] = tx
        tx.card.balance_in_cents += tx.amount_in_cents
        tx.card.last_transaction = tx
        self.views.appended(tx)

    def extend(self, rows: list[TransactionRecord], *, monotone: bool) -> None:
        """Bulk append for the seeder: rows already applied to their cards, in id order."""
        self.views.arriving_many(rows, monotone=monotone)
        self.transactions.extend(rows)
        for tx in rows:
            source = tx.uuid_source()
            if isinstance(source, str):
                self.tx_by_uuid[source] = tx
        self.views.invalidate()

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
        """The rows of the asked page and the total matching rows."""
        return self.views.page(q)
