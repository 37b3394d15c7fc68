"""Realistic, deterministic bulk history for the fake: fast enough for a million rows."""

from __future__ import annotations

import gc
import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from ._records import NULL, CardRecord, DerivedUuids, TransactionRecord, format_ts, to_ts
from ._store import Store

__all__ = ["seed_store"]

SHOP_NAMES: Final = (
    "Krusty Krab",
    "The Chum Bucket",
    "Chum Bucket Online",
    "Weenie Hut Jr's",
    "Goo Lagoon Kiosk",
    "Salty Spitoon",
)
PROGRAM_NAMES: Final = ("Bikini Bottom Giftcard", "Krabby Card", "Holiday Card")
LOADS: Final = (500, 1000, 1500, 2000, 2500, 5000, 7500, 10000, 25000)
_V4_CLEAR: Final = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET: Final = (0x4000 << 64) | (0x8000 << 48)
_DAY: Final = 86_400
_MONTH: Final = 30 * _DAY


def fast_uuid4(rng: random.Random) -> str:
    """A version-4 uuid string from ``rng`` (deterministic, unlike ``uuid.uuid4``)."""
    h = f"{(rng.getrandbits(128) & _V4_CLEAR) | _V4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def seed_store(store: Store, n: int, *, seed: int, start: datetime, end: datetime) -> None:
    """Append ``n`` plausible transactions between ``start`` and ``end`` (see ``FakeLeat.seed``)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    start_ts, end_ts = to_ts(start), to_ts(end)
    if end_ts < start_ts:
        raise ValueError("end must not be before start")
    # Mixing in the current sizes keeps a second seed() call from repeating uuids.
    rng = random.Random(f"{seed}:{len(store.transactions)}:{len(store.cards)}")
    was_enabled = gc.isenabled()
    gc.disable()  # a million new objects would trigger many useless collections
    try:
        _seed(store, rng, n, start_ts, end_ts)
    finally:
        if was_enabled:
            gc.enable()


def _seed(store: Store, rng: random.Random, n: int, start_ts: int, end_ts: int) -> None:
    rand = rng.random
    shops = [
        store.add_shop(name=SHOP_NAMES[i], uuid=fast_uuid4(rng))
        for i in range(rng.randint(3, len(SHOP_NAMES)))
    ]
    programs = [
        store.add_program(name=PROGRAM_NAMES[i], uuid=fast_uuid4(rng))
        for i in range(rng.randint(2, len(PROGRAM_NAMES)))
    ]
    now = store.clock()
    n_cards = max(5, n // 25)
    cards: list[CardRecord] = []
    for i in range(n_cards):
        r = rand()
        cards.append(
            store.add_card(
                balance_in_cents=0,
                program=programs[int(rand() * len(programs))],
                uuid=NULL if i < n_cards // 20 else fast_uuid4(rng),
                hash=f"{rng.getrandbits(64):016x}",
                reincrementable=r < 0.6,
                max_amount_in_cents=50_000 if r < 0.3 else None,
                expires_at=now - timedelta(days=1) if r > 0.95 else None,
            )
        )
    derived = DerivedUuids(rng.getrandbits(128).to_bytes(16, "big"), rng.getrandbits(48))
    store.derived.append(derived)
    span = end_ts - start_ts + 1
    stamps = [start_ts + int(rand() * span) for _ in range(n)]
    stamps.sort()
    settled_before = end_ts - _MONTH
    batches: dict[int, tuple[Mapping[str, Any], ...]] = {}
    rows: list[TransactionRecord] = []
    append = rows.append
    reversals: set[int] = set()  # ids of reversal rows: a reversal is not reversed again
    n_shops = len(shops)
    n_loads = len(LOADS)
    null_before = n // 20
    next_id = len(store.transactions) + 1
    for i in range(n):
        ts = stamps[i]
        card = cards[int(rand() * n_cards)]
        balance = card.balance_in_cents
        cap = card.max_amount_in_cents
        r = rand()
        shop = shops[int(rand() * n_shops)]
        amount = 0
        if r < 0.02:
            last = card.last_transaction
            if last is not None and last.id not in reversals:
                amount = -last.amount_in_cents
                shop = last.shop
                if balance + amount < 0 or (cap is not None and balance + amount > cap):
                    amount = 0
                else:
                    reversals.add(next_id)
        if amount == 0 and (balance <= 0 or r < 0.4):
            amount = LOADS[int(rand() * n_loads)]
            if cap is not None and balance + amount > cap:
                amount = cap - balance
        if amount == 0 and balance > 0:
            amount = -1 - int(rand() * balance)
        if amount == 0:
            continue  # a card full to its cap and empty at once: nothing plausible to record
        settlements: tuple[Mapping[str, Any], ...] = ()
        settled = ts < settled_before
        if settled:
            month = (ts - start_ts) // _MONTH
            settlements = batches.get(month) or batches.setdefault(
                month, ({"id": month + 1, "created_at": format_ts(ts)},)
            )
        tx = TransactionRecord(
            next_id,
            None if i < null_before else derived,
            amount,
            "STANDARD",
            settled,
            card,
            shop,
            settlements,
            ts,
        )
        next_id += 1
        card.balance_in_cents = balance + amount
        card.last_transaction = tx
        append(tx)
    store.extend(rows, monotone=True)
