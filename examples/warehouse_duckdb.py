"""A warehouse recipe: a day-partitioned Parquet dataset, queried and reconciled with DuckDB.

    pip install 'leat-async[parquet]' duckdb
    python examples/warehouse_duckdb.py --fake 5000 --ledger ledger.csv DATASET_DIR

Each run adds the transactions created since the last one to ``DATASET_DIR`` (run it nightly);
then DuckDB reads the whole dataset as one table: totals per day and shop, a check that no
transaction is there twice, and the reconciliation's two questions in SQL against a ledger CSV
(``reference, giftcard_uuid, shop_uuid, amount_in_cents, created_at``): which ledger rows have
no transaction (``missing_in_leat``), which transactions no ledger row (``unexpected_in_leat``).
The SQL matches on giftcard, shop and amount within ``--tolerance`` seconds, like ``leat-async
reconcile`` but without its one-to-one pairing: use the command for the final word.
Without ``--fake``, the token comes from ``LEAT_TOKEN``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import duckdb

from leat_async import LeatClient
from leat_async.export import export_transactions

DAILY = """
SELECT created_date, shop_name, count(*) AS transactions, sum(amount_in_cents) AS cents
FROM read_parquet($files, hive_partitioning = true)
GROUP BY ALL ORDER BY created_date, shop_name
"""
REPEATED = """
SELECT count(*) - count(DISTINCT id) FROM read_parquet($files, hive_partitioning = true)
"""
#: both directions of the reconciliation, as one result: (status, reference or transaction id)
DISCREPANCIES = """
WITH tx AS (SELECT * FROM read_parquet($files, hive_partitioning = true)),
ledger AS (
    SELECT *, CAST(created_at AS TIMESTAMPTZ) AS at FROM read_csv($ledger, all_varchar = true)
),
near AS (
    SELECT l.reference, t.id FROM ledger l JOIN tx t
    ON t.card_uuid = l.giftcard_uuid AND t.shop_uuid = l.shop_uuid
    AND t.amount_in_cents = CAST(l.amount_in_cents AS BIGINT)
    AND abs(epoch(t.created_at) - epoch(l.at)) <= $tolerance
)
SELECT 'missing_in_leat', reference FROM ledger WHERE reference NOT IN (SELECT reference FROM near)
UNION ALL
SELECT 'unexpected_in_leat', CAST(id AS VARCHAR) FROM tx WHERE id NOT IN (SELECT id FROM near)
ORDER BY 1, 2
"""


async def export(dataset: Path, fake: int | None) -> int:
    """Add what is new to the dataset; the rows added."""
    if fake is None:
        async with LeatClient(os.environ["LEAT_TOKEN"]) as client:
            done = await export_transactions(client, dataset, partition_by="day", incremental=True)
            return done.rows_this_run
    from leat_async.testing import FakeLeat

    async with FakeLeat() as server:
        server.seed(fake)
        async with LeatClient(server.token, base_url=server.url) as client:
            done = await export_transactions(client, dataset, partition_by="day", incremental=True)
            return done.rows_this_run


def report(dataset: Path, ledger: Path | None, tolerance: int) -> dict[str, Any]:
    """What the queries say, also printed."""
    files = f"{dataset}/**/*.parquet"
    db = duckdb.connect()
    daily = db.execute(DAILY, {"files": files}).fetchall()
    repeated = db.execute(REPEATED, {"files": files}).fetchone()
    for day, shop, count, cents in daily[:10]:
        print(f"{day}  {shop:<24} {count:>6} transactions  {cents / 100:>12.2f}")
    print(f"transactions in the dataset more than once: {repeated[0] if repeated else 0}")
    found: list[tuple[str, str]] = []
    if ledger is not None:
        params = {"files": files, "ledger": str(ledger), "tolerance": tolerance}
        found = [(s, r) for s, r in db.execute(DISCREPANCIES, params).fetchall()]
        for status, reference in found[:20]:
            print(f"{status}  {reference}")
        print(f"{len(found)} discrepancies")
    return {"daily": daily, "repeated": repeated[0] if repeated else 0, "discrepancies": found}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="the dataset's directory")
    parser.add_argument("--fake", type=int, metavar="N", help="a bundled fake with N rows")
    parser.add_argument("--ledger", type=Path, help="a ledger CSV to reconcile against")
    parser.add_argument("--tolerance", type=int, default=300, help="seconds (default 300)")
    args = parser.parse_args(argv)
    added = asyncio.run(export(args.dataset, args.fake))
    print(f"added {added} transactions to {args.dataset}", file=sys.stderr)
    report(args.dataset, args.ledger, args.tolerance)
    return 0


if __name__ == "__main__":
    sys.exit(main())
