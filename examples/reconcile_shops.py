"""One reconciliation job per shop, all running at once on one rate budget.

Against the bundled fake Leat server (in this process, limited to 20 requests per second like a
strict real account), it makes SHOPS shops with ROWS transactions each, and a ledger CSV per shop
in which two things are wrong: the shop's first transaction is missing from the ledger
(``unexpected_in_leat``) and the ledger has one payment Leat never saw (``missing_in_leat``).
Then it reconciles every shop concurrently on ONE client capped at 20 requests/s, writes
``<out>/<shop>.csv`` per shop, prints one line per shop and, last, what the server saw:

    shop-00: 149 matched, 1 missing_in_leat, 1 unexpected_in_leat -> out/shop-00.csv
    ...
    20 jobs: 0 rate-limited (429) of 40 requests, at most 20 in any second

With ``--redis URL --processes N`` the jobs are split over N worker processes instead, each
with its own client, all sharing one budget through ``RedisRateState`` (same last line).

    python examples/reconcile_shops.py [--shops 20] [--rows 150] [--out reports]
    python examples/reconcile_shops.py --redis redis://127.0.0.1:6379/0 --processes 2
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from leat_async import CreatedAt, LeatClient, RedisRateState
from leat_async.reconcile import read_ledger, reconcile_to_csv_async
from leat_async.testing import FakeLeat

LIMIT = 20  # requests per second: the server's limit, and our client's cap
START = datetime(2024, 3, 1, tzinfo=UTC)
PERIOD = CreatedAt(gte=START, lt=START + timedelta(days=30))


async def reconcile_shop(client: LeatClient, shop: dict[str, str], out: Path) -> str:
    """The job: this shop's listing for the period against this shop's ledger."""
    pager = client.giftcard_transactions.list(shop_uuid=shop["uuid"], created_at=PERIOD)
    report = out / f"{shop['name']}.csv"
    # the ledger file is read, sorted and matched in worker threads: the loop stays free to
    # pace the other jobs' requests
    s = await reconcile_to_csv_async(read_ledger(shop["ledger"]), pager, report)
    return (
        f"{shop['name']}: {s.matched} matched, {s.missing_in_leat} missing_in_leat, "
        f"{s.unexpected_in_leat} unexpected_in_leat -> {report}"
    )


async def run_jobs(
    url: str, token: str, shops: list[dict[str, str]], out: Path, redis: str | None
) -> None:
    state = RedisRateState(redis) if redis else None  # one budget across processes
    async with LeatClient(token, base_url=url, rate_limit=LIMIT, rate_state=state) as client:
        for line in await asyncio.gather(*(reconcile_shop(client, s, out) for s in shops)):
            print(line, flush=True)


def make_shops(fake: FakeLeat, count: int, rows: int, out: Path) -> list[dict[str, str]]:
    """Seed the fake; write each shop's ledger (one row left out, one row too many)."""
    out.mkdir(parents=True, exist_ok=True)
    shops = []
    for n in range(count):
        shop, card = fake.add_shop(name=f"shop-{n:02d}"), fake.add_card(balance_in_cents=10**7)
        ledger = out / f"{shop.name}-ledger.csv"
        with ledger.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["reference", "giftcard_uuid", "shop_uuid", "amount_in_cents", "created_at"])
            for i in range(rows):
                at = START + timedelta(minutes=10 * i)
                fake.add_transaction(card=card, shop=shop, amount_in_cents=-100 - i, created_at=at)
                if i:  # the first transaction is not in the ledger
                    w.writerow(
                        [
                            f"{shop.name}-{i}",
                            card.uuid,
                            shop.uuid,
                            -100 - i,
                            at + timedelta(seconds=40),
                        ]
                    )
            w.writerow(
                [f"{shop.name}-lost", card.uuid, shop.uuid, -99, START]
            )  # never reached Leat
        shops.append({"name": shop.name, "uuid": str(shop.uuid), "ledger": str(ledger)})
    return shops


async def main(args: argparse.Namespace) -> None:
    out = Path(args.out)
    async with FakeLeat(rate_limit=LIMIT) as fake:
        shops = make_shops(fake, args.shops, args.rows, out)
        if args.redis is None:
            await run_jobs(fake.url, fake.token, shops, out, None)
        else:  # workers in other processes; this loop keeps serving the fake meanwhile
            (out / "shops.json").write_text(json.dumps(shops))
            workers = [
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--worker",
                    fake.url,
                    "--token",
                    fake.token,
                    "--redis",
                    args.redis,
                    "--shard",
                    f"{i}/{args.processes}",
                    "--out",
                    str(out),
                )
                for i in range(args.processes)
            ]
            if any([await w.wait() for w in workers]):
                raise SystemExit("a worker failed")
        refused = fake.status_counts[429]
        print(
            f"{args.shops} jobs: {refused} rate-limited (429) of {len(fake.requests)} requests, "
            f"at most {fake.max_in_window(1.0)} in any second"
        )


def worker(args: argparse.Namespace) -> None:
    """One of the --processes: its share of the shops, on its own client."""
    out = Path(args.out)
    index, count = map(int, args.shard.split("/"))
    shops = json.loads((out / "shops.json").read_text())[index::count]
    asyncio.run(run_jobs(args.worker, args.token, shops, out, args.redis))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shops", type=int, default=20)
    p.add_argument("--rows", type=int, default=150, help="transactions per shop")
    p.add_argument("--out", default="reports", help="directory for ledgers and reports")
    p.add_argument("--redis", help="share one budget through Redis across --processes")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--worker", help=argparse.SUPPRESS)  # the fake's URL, in a worker process
    p.add_argument("--token", help=argparse.SUPPRESS)
    p.add_argument("--shard", help=argparse.SUPPRESS)
    parsed = p.parse_args()
    worker(parsed) if parsed.worker else asyncio.run(main(parsed))
