"""Inputs for the reconcile benchmark with a known answer: a shuffled ledger CSV, an export in
JSONL, and the report a correct reconciliation must write, row by row.

Row ``i`` of the history is one payment at ``START + 3 i`` seconds, on card ``i % CARDS`` (so a
card, and therefore every giftcard-shop-amount group, comes back only every 300,000 seconds: no
pair is ever ambiguous within the 300 s tolerance). Most rows are in both files, the ledger's
time off by up to 120 s (and now and then its card uuid in capitals, or its time without a
zone). The planted discrepancies:

- ``missing``: in the ledger only;  ``unexpected``: in the export only;
- ``amount``: the ledger's amount is one cent more (one of each);
- ``late``: the ledger's time is 360 s after Leat's (one of each);
- ``old``: in the export only, with a null card uuid.
"""

from __future__ import annotations

import array
import json
import pickle
import random
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

__all__ = ["Truth", "inputs"]

START: Final = 1_704_067_200  # 2024-01-01T00:00:00Z
CARDS: Final = 100_003
SHOPS: Final = 20
AMOUNTS: Final = (500, 1000, -1250, 2500, -399, 5000, -2000, 7500, -100)
TOLERANCE: Final = 300
# kinds, by the share of rows (the rest match)
MATCH, MISSING, UNEXPECTED, AMOUNT, LATE, OLD = range(6)
_SHARES: Final = (
    (MISSING, 0.004),
    (UNEXPECTED, 0.004),
    (AMOUNT, 0.002),
    (LATE, 0.001),
    (OLD, 0.001),
)
_VERSION: Final = 2  # bump when the generator changes: cached inputs are rebuilt

Row = tuple[str, ...]


@dataclass(frozen=True)
class Truth:
    ledger: Path
    export: Path
    ledger_rows: int
    transactions: int
    report: list[Row]  # the expected rows after the header, in the report's order

    @property
    def matched(self) -> int:
        return self.ledger_rows - sum(1 for r in self.report if r[0] == "missing_in_leat")


def card_uuid(c: int) -> str:
    h = f"{(c * 0x9E3779B97F4A7C15BF58476D1CE4E5B9) % (1 << 128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"


def shop_uuid(s: int) -> str:
    return f"5a0b{s:04x}-0000-4000-8000-{s:012x}"


def tx_uuid(i: int) -> str:
    return f"{i:08x}-7a7a-4000-8000-{(i * 2654435761) % (1 << 48):012x}"


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def inputs(n: int, *, seed: int = 0, cache: Path | None = None) -> Truth:
    """The inputs for ``n`` payments (generated once, then reused from ``cache``)."""
    where = (
        cache or Path(tempfile.gettempdir()) / "leat-bench-reconcile"
    ) / f"v{_VERSION}-{n}-{seed}"
    done = where / "truth.pickle"
    if done.exists():
        with done.open("rb") as f:
            truth: Truth = pickle.load(f)  # noqa: S301 - our own cache file
        return truth
    where.mkdir(parents=True, exist_ok=True)
    truth = _generate(n, seed, where)
    with done.open("wb") as f:
        pickle.dump(truth, f)
    return truth


def _generate(n: int, seed: int, where: Path) -> Truth:
    rng = random.Random(seed)
    kinds = bytearray(n)
    shift = array.array("h", bytes(2 * n))
    for i in range(n):
        r = rng.random()
        for kind, share in _SHARES:
            if r < share:
                kinds[i] = kind
                break
            r -= share
        shift[i] = int(rng.random() * 241) - 120
    unexpected, transactions = _write_export(where / "export.jsonl", n, kinds)
    order = array.array("I", range(n))
    rng.shuffle(order)
    missing, ledger_rows = _write_ledger(where / "ledger.csv", order, kinds, shift, rng)
    return Truth(
        where / "ledger.csv",
        where / "export.jsonl",
        ledger_rows,
        transactions,
        unexpected + missing,
    )


def _amount(i: int) -> int:
    return AMOUNTS[(i * 31) % len(AMOUNTS)]


def _write_export(path: Path, n: int, kinds: bytearray) -> tuple[list[Row], int]:
    unexpected: list[Row] = []
    count = 0
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            kind = kinds[i]
            if kind == MISSING:
                continue
            count += 1
            card = None if kind == OLD else card_uuid(i % CARDS)
            shop, amount, at, uuid = (
                shop_uuid((i // 7) % SHOPS),
                _amount(i),
                _iso(START + 3 * i),
                tx_uuid(i),
            )
            doc = {
                "id": i + 1,
                "uuid": uuid,
                "amount_in_cents": amount,
                "type": "STANDARD",
                "settled": False,
                "card": {"id": i % CARDS + 1, "uuid": card},
                "shop": {
                    "id": (i // 7) % SHOPS + 1,
                    "uuid": shop,
                    "name": f"Shop {(i // 7) % SHOPS}",
                },
                "settlements": [],
                "created_at": at,
            }
            f.write(json.dumps(doc, separators=(",", ":")) + "\n")
            if kind != MATCH:
                unexpected.append(
                    ("unexpected_in_leat", "", str(i + 1), uuid, card or "", shop, str(amount), at)
                )
    return unexpected, count


def _write_ledger(
    path: Path,
    order: array.array[int],
    kinds: bytearray,
    shift: array.array[int],
    rng: random.Random,
) -> tuple[list[Row], int]:
    missing: list[Row] = []
    count = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("reference,giftcard_uuid,shop_uuid,amount_in_cents,created_at\n")
        for i in order:
            kind = kinds[i]
            if kind in (UNEXPECTED, OLD):
                continue
            count += 1
            card, shop = card_uuid(i % CARDS), shop_uuid((i // 7) % SHOPS)
            amount = _amount(i) + (1 if kind == AMOUNT else 0)
            ts = START + 3 * i + (TOLERANCE + 60 if kind == LATE else shift[i])
            r = rng.random()
            written_card = card.upper() if r < 0.02 else card
            at = _iso(ts)
            written_at = at[:-6].replace("T", " ") if r > 0.9 else at  # no zone: UTC
            ref = f"L{i:09d}"
            f.write(f"{ref},{written_card},{shop},{amount},{written_at}\n")
            if kind != MATCH:
                missing.append(
                    ("missing_in_leat", ref, "", "", written_card, shop, str(amount), at)
                )
    return missing, count


def report_rows(path: Path) -> Iterator[Row]:
    """The rows of a report CSV after its header."""
    import csv

    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        for row in reader:
            yield tuple(row)
