"""The seeding helpers of ``FakeLeat``: shops, programs, cards and history, written directly
into the fake's store (no business rules, no requests)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from ._app import Runtime
from ._records import CardRecord, ProgramRecord, ShopRecord, TransactionRecord, UuidSentinel
from ._seed import seed_store

__all__ = ["Seeding"]


class Seeding:
    """What ``FakeLeat`` offers to set up a test's world."""

    _rt: Runtime
    _clock: Callable[[], datetime]

    def add_shop(self, *, name: str = "Shop", uuid: str | None = None) -> ShopRecord:
        return self._rt.store.add_shop(name=name, uuid=uuid)

    def add_program(
        self,
        *,
        name: str = "Program",
        uuid: str | None = None,
        active: bool = True,
        max_amount_in_cents: int | None = None,
        min_amount_in_cents: int | None = None,
        expiration_days: int | None = None,
        calculator_flow: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> ProgramRecord:
        """A giftcard program. Cards made by ``POST /giftcards`` take its maximum amount and
        expire ``expiration_days`` after their creation; ``card_count`` counts its cards."""
        return self._rt.store.add_program(
            name=name,
            uuid=uuid,
            active=active,
            max_amount_in_cents=max_amount_in_cents,
            min_amount_in_cents=min_amount_in_cents,
            expiration_days=expiration_days,
            calculator_flow=calculator_flow,
            extra=dict(extra) if extra else None,
        )

    def add_card(
        self,
        *,
        balance_in_cents: int = 0,
        program: ProgramRecord | None = None,
        uuid: str | UuidSentinel | None = None,
        hash: str | None = None,
        reincrementable: bool = False,
        max_amount_in_cents: int | None = None,
        expires_at: datetime | None = None,
        type: str = "PHYSICAL",
        active: bool = True,
        extra: Mapping[str, Any] | None = None,
    ) -> CardRecord:
        """A card; ``hash`` (the code a customer types) defaults to random hex. It expires when
        ``expires_at <= now``; its JSON shows ``reincrementable`` as ``upgradeable``."""
        return self._rt.store.add_card(
            balance_in_cents=balance_in_cents,
            program=program,
            uuid=uuid,
            hash=hash,
            reincrementable=reincrementable,
            max_amount_in_cents=max_amount_in_cents,
            expires_at=expires_at,
            type=type,
            active=active,
            extra=extra,
        )

    def add_transaction(
        self,
        *,
        card: CardRecord,
        shop: ShopRecord,
        amount_in_cents: int,
        created_at: datetime | None = None,
        uuid: str | UuidSentinel | None = None,
        type: str = "STANDARD",
        settled: bool = False,
        settlements: Iterable[Mapping[str, Any]] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> TransactionRecord:
        """Record history directly: no business rules, but the card's balance follows.

        ``created_at`` defaults to the clock's now (whole seconds); ``extra`` keys are merged
        into this row's JSON (they may even override documented ones).
        """
        return self._rt.store.add_transaction(
            card=card,
            shop=shop,
            amount_in_cents=amount_in_cents,
            created_at=created_at,
            uuid=uuid,
            type=type,
            settled=settled,
            settlements=settlements,
            extra=extra,
        )

    def seed(
        self,
        n: int,
        *,
        seed: int = 0,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> None:
        """Add ``n`` realistic transactions (deterministic for a given ``seed`` and state).

        3-6 shops, 2-3 programs, ``n // 25`` cards (some with null uuids, some expired, some
        reincrementable or capped); loads, redemptions and a few reversals; the oldest 5% of
        rows have null uuids; ``created_at`` never decreases with id and spreads between
        ``start`` and ``end`` (default: the 365 days before the clock's now). Rows older than
        30 days before ``end`` are settled, with an (invented) settlement object.
        """
        end = end if end is not None else self._clock()
        start = start if start is not None else end - timedelta(days=365)
        seed_store(self._rt.store, n, seed=seed, start=start, end=end)
