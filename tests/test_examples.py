"""The examples/ programs, run against the bundled fake over loopback HTTP, so they never rot."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import random
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from leat_async import LeatClient
from leat_async.testing import FakeLeat, Fault

from .conftest import FAST_RETRY

Http = TestClient[web.Request, web.Application]
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    """An example by its file (they are programs, not a package)."""
    spec = importlib.util.spec_from_file_location(f"examples.{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


checkout = load("checkout_aiohttp")
nightly = load("nightly_export")


# -- checkout_aiohttp.py -------------------------------------------------------------------------


@asynccontextmanager
async def shop_app(fake: FakeLeat, **settings: Any) -> AsyncIterator[tuple[Http, Any]]:
    """The checkout app against the fake, served over loopback; closed (and settled) after."""
    shop = fake.add_shop(name="Krusty Krab")
    options = {"rate_limit": None, "max_concurrency": 16, "retry": FAST_RETRY, **settings}
    app = checkout.make_app(checkout.Settings(fake.token, shop.uuid, base_url=fake.url, **options))
    async with TestClient(TestServer(app)) as http:
        yield http, app


async def answer(http: Http, path: str, **body: Any) -> tuple[int, dict[str, Any]]:
    async with http.post(path, json=body) as response:
        return response.status, await response.json()


async def test_200_checkouts_with_lost_answers_end_with_balances_equal_to_the_records(
    fake: FakeLeat,
) -> None:
    rng = random.Random(10)
    # rich cards never run short; poor ones do: 402s, partial charges, and races for the rest
    balances = {f"CARD-{i}": 100_000 if i < 16 else 1_500 for i in range(20)}
    cards = {code: fake.add_card(balance_in_cents=b, hash=code) for code, b in balances.items()}
    lose = [
        Fault(method="POST", drop=True, when="after", times=6),  # charged, answer lost
        Fault(method="POST", status=502, body="<html>Bad Gateway</html>", when="after", times=3),
        Fault(method="POST", delay=0.6, times=8),  # lands after the app stopped waiting
        Fault(method="POST", drop=True, times=1),  # never lands
        Fault(method="GET", status=502, times=5),  # reads are retried
    ]
    for fault in lose:
        fake.add_fault(fault)
    orders = [
        {
            "code": rng.choice(list(cards)),
            "amount_in_cents": rng.randint(100, 3000),
            "order": f"O-{n}",
            "partial": n % 3 == 0,
        }
        for n in range(200)
    ]
    async with shop_app(fake, charge_timeout=0.25, landing_horizon=1.0) as (http, app):
        twice = orders + orders[:10]  # a customer pressing "pay" again: never charged twice
        answers = await asyncio.gather(*(answer(http, "/checkout", **o) for o in twice))
        await checkout.wait_for_background(app)
        records = app[checkout.ORDERS]
    assert len(records) == 200
    for code, card in cards.items():
        charged = [r for r in records.values() if r.code == code and r.status == "charged"]
        assert card.balance_in_cents == balances[code] - sum(r.charged_in_cents for r in charged)
    made = {tx.uuid: -tx.amount_in_cents for tx in fake.transactions}
    charged = [r for r in records.values() if r.status == "charged"]
    assert {r.transaction_uuid: r.charged_in_cents for r in charged} == made  # each once
    assert {status for status, _ in answers} == {200, 202, 402}
    assert {r.status for r in records.values()} == {"charged", "failed"}  # none left pending
    assert any(r.partial and 0 < r.charged_in_cents < r.requested_in_cents for r in charged)
    settled = [records[body["order"]] for status, body in answers if status == 202]
    assert any(r.status == "charged" for r in settled)  # landed late, found in the background
    assert any(r.detail == "not charged (the request never landed)" for r in settled)


async def test_each_error_answer_and_a_refund(fake: FakeLeat) -> None:
    card = fake.add_card(balance_in_cents=5000, hash="KRABBY 1")
    fake.add_card(balance_in_cents=900, hash="LOW")
    fake.add_card(balance_in_cents=900, hash="OFF", active=False)
    fake.add_card(balance_in_cents=900, hash="OLD", expires_at=datetime.now(UTC) - timedelta(1))
    async with shop_app(fake) as (http, _):
        assert await answer(http, "/checkout", code="KRABBY 1", order="A") == (
            400,
            {"error": "bad_request", "need": "code, amount_in_cents > 0, order"},
        )
        assert fake.requests == []

        async def pay(code: str, cents: int, order: str, **more: Any) -> Any:
            body = {"code": code, "amount_in_cents": cents, "order": order, **more}
            return await answer(http, "/checkout", **body)

        assert (await pay("NO SUCH", 100, "A"))[0] == 404
        assert await pay("OLD", 100, "A") == (410, {"error": "expired"})
        assert await pay("OFF", 100, "A") == (422, {"error": "card_not_usable"})
        short = {"error": "insufficient_balance", "balance_in_cents": 900}
        assert await pay("LOW", 1000, "A") == (402, short)
        status, partial = await pay("LOW", 1000, "A", partial=True)
        assert (status, partial["status"], partial["charged_in_cents"]) == (200, "charged", 900)

        status, paid = await pay("KRABBY 1", 1250, "B")
        assert (status, paid["charged_in_cents"], card.balance_in_cents) == (200, 1250, 3750)
        assert await pay("KRABBY 1", 1250, "B") == (200, paid)  # the same order: not again
        await pay("KRABBY 1", 250, "C")
        assert await answer(http, "/refund", order="B") == (409, {"error": "not_last_transaction"})
        fake.add_fault(Fault(method="POST", path=".*/reverse", drop=True, when="after"))
        status, refunded = await answer(http, "/refund", order="C")  # its answer lost: found
        assert (status, refunded["status"], card.balance_in_cents) == (200, "refunded", 3750)
        assert await answer(http, "/refund", order="C") == (200, refunded)
        assert (await answer(http, "/refund", order="NONE"))[0] == 404
        async with http.get("/orders/B") as response:
            assert (await response.json())["status"] == "charged"

        shop_gone = {"message": "Shop not found.", "code": 1008, "status_code": 400}
        fake.add_fault(Fault(method="POST", status=400, body=shop_gone))  # ours to fix: logged
        assert await pay("KRABBY 1", 100, "E") == (502, {"error": "leat_error", "code": 1008})
        assert card.balance_in_cents == 3750

        fake.add_fault(Fault(method="GET", status=503, times=FAST_RETRY.max_attempts))
        async with http.post(
            "/checkout", json={"code": "X", "amount_in_cents": 1, "order": "D"}
        ) as r:
            assert (r.status, r.headers["Retry-After"]) == (503, "30")
        fake.add_fault(Fault(method="GET", status=429, headers={"Retry-After": "120"}))
        async with http.post(
            "/checkout", json={"code": "X", "amount_in_cents": 1, "order": "D"}
        ) as r:
            assert (r.status, r.headers["Retry-After"]) == (429, "120")


def test_the_checkout_command_serves_the_fake() -> None:
    script = str(EXAMPLES / "checkout_aiohttp.py")
    with subprocess.Popen(  # noqa: S603 - our own example
        [sys.executable, script, "--fake", "--port", "0"], stdout=subprocess.PIPE, text=True
    ) as server:
        assert server.stdout is not None
        lines = [server.stdout.readline(), server.stdout.readline()]
        url = lines[1].split()[-1]

        async def buy() -> tuple[int, dict[str, Any]]:
            async with aiohttp.ClientSession() as session:
                body = {"code": "KRABBY-1", "amount_in_cents": 1250, "order": "A-1"}
                async with session.post(f"{url}/checkout", json=body) as response:
                    return response.status, await response.json()

        status, order = asyncio.run(buy())
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=10) == 0
    assert lines[0].startswith("demo codes: KRABBY-1")
    assert (status, order["status"], order["charged_in_cents"]) == (200, "charged", 1250)


# -- nightly_export.py -------------------------------------------------------------------------

DAY = date(2024, 5, 1)


def seed_day(fake: FakeLeat, n: int = 1000) -> None:
    start = datetime(2024, 5, 1, tzinfo=UTC)
    fake.seed(n, start=start, end=start + timedelta(hours=23))


class Crash(Exception):
    pass


def crash_at(n: int) -> Any:
    def on_row(rows: int) -> None:
        if rows == n:
            raise Crash

    return on_row


async def export(fake: FakeLeat, out: Path, **kw: Any) -> Any:
    """One run of the job, on a client of its own (as a new process would have)."""
    async with LeatClient(fake.token, base_url=fake.url) as client:
        return await nightly.export(client, out, nightly.day_range(DAY), every=150, **kw)


async def test_an_export_killed_mid_way_then_rerun_has_every_row_once(
    fake: FakeLeat, tmp_path: Path
) -> None:
    seed_day(fake)
    fake.add_card(balance_in_cents=10**6)  # and rows of other days, today's too, left out
    whole = tmp_path / "whole.jsonl"
    assert (await export(fake, whole)).rows == 1000

    out = tmp_path / "out.jsonl"
    with pytest.raises(Crash):  # mid-page, 130 rows past the last checkpoint (in the file)
        await export(fake, out, on_row=crash_at(430))
    assert len(out.read_bytes().splitlines()) == 430
    result = await export(fake, out)
    assert (result.rows, result.resumed_from) == (1000, 300)
    assert out.read_bytes().splitlines() == whole.read_bytes().splitlines()
    assert (await export(fake, out)).resumed_from == 1000  # complete: a rerun does nothing


async def test_an_export_cancelled_mid_way_then_rerun_has_every_row_once(
    fake: FakeLeat, tmp_path: Path
) -> None:
    seed_day(fake, 700)
    whole, out = tmp_path / "whole.jsonl", tmp_path / "out.jsonl"
    await export(fake, whole)
    reached = asyncio.Event()

    def reach_333(rows: int) -> None:
        if rows == 333:
            reached.set()

    job = asyncio.ensure_future(export(fake, out, on_row=reach_333))
    await reached.wait()
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    await export(fake, out)
    assert [json.loads(line) for line in out.read_bytes().splitlines()] == [
        json.loads(line) for line in whole.read_bytes().splitlines()
    ]


async def test_a_checkpoint_of_another_day_is_refused_and_the_file_kept(
    fake: FakeLeat, tmp_path: Path
) -> None:
    seed_day(fake, 200)
    out = tmp_path / "out.jsonl"
    with pytest.raises(Crash):
        await export(fake, out, on_row=crash_at(160))
    kept = out.read_bytes()
    async with LeatClient(fake.token, base_url=fake.url) as client:
        with pytest.raises(ValueError, match="another range"):
            await nightly.export(client, out, nightly.day_range(DAY + timedelta(1)))
    assert out.read_bytes() == kept


async def test_a_complete_export_of_another_day_is_refused_not_called_complete(
    fake: FakeLeat, tmp_path: Path
) -> None:
    seed_day(fake, 200)
    out = tmp_path / "out.jsonl"
    assert (await export(fake, out)).complete
    kept = out.read_bytes()
    async with LeatClient(fake.token, base_url=fake.url) as client:
        with pytest.raises(ValueError, match=r"2024-05-01.*another file"):
            await nightly.export(client, out, nightly.day_range(DAY + timedelta(1)))
    assert out.read_bytes() == kept


def test_the_command_refuses_a_file_of_another_day(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "out.jsonl"
    assert nightly.main(["--fake", "10", "--date", "2024-05-01", "-o", str(out)]) == 0
    kept = out.read_bytes()
    assert nightly.main(["--fake", "10", "--date", "2024-05-03", "-o", str(out)]) == 2
    assert out.read_bytes() == kept and "another range" in capsys.readouterr().err


def test_the_export_command_crashes_then_resumes(tmp_path: Path) -> None:
    script = str(EXAMPLES / "nightly_export.py")
    out, whole = tmp_path / "out.jsonl", tmp_path / "whole.jsonl"
    common = ["--fake", "400", "--date", "2024-05-01", "--every", "100"]
    crashed = subprocess.run(  # noqa: S603 - our own example
        [sys.executable, script, *common, "-o", str(out), "--crash-after", "250"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert crashed.returncode == 70 and "crashing after 250 rows" in crashed.stderr
    assert nightly.main([*common, "-o", str(out)]) == 0
    assert nightly.main([*common, "-o", str(whole)]) == 0
    assert out.read_bytes() == whole.read_bytes() and len(whole.read_bytes().splitlines()) == 400


# -- webhook_receiver.py -------------------------------------------------------------------------

receiver = load("webhook_receiver")


async def test_the_webhook_receiver_records_each_transaction_once(fake: FakeLeat) -> None:
    from leat_async.testing import DeliveryFault

    secret = "the-subscription-secret"
    app = receiver.make_app(fake.token, secret, base_url=fake.url)
    async with TestClient(TestServer(app)) as http:
        url = str(http.make_url(receiver.PATH))
        async with LeatClient(fake.token, base_url=fake.url, retry=FAST_RETRY) as client:
            await client.webhook_subscriptions.create(
                name="receiver",
                event_type="giftcard_transaction_created",
                url=url,
                secret=secret,
            )
            card, shop = fake.add_card(balance_in_cents=2000), fake.add_shop()
            fake.webhooks.faults.append(DeliveryFault(duplicate=True))
            made = await client.giftcard_transactions.create(
                giftcard_uuid=card.uuid, amount_in_cents=-700, shop_uuid=shop.uuid
            )
            fake.webhooks.faults.append(DeliveryFault(wrong_signature=True))
            await client.giftcard_transactions.create(
                giftcard_uuid=card.uuid, amount_in_cents=-100, shop_uuid=shop.uuid
            )
            await fake.webhooks.settled()
        ledger = app[receiver.LEDGER]
        assert list(ledger) == [made.uuid]  # the duplicate once, the forgery never
        assert ledger[made.uuid].amount_in_cents == -700
        statuses = sorted(d.statuses[-1] for d in fake.webhooks.deliveries)
        assert statuses == [200, 200, 401]


# -- warehouse_duckdb.py ---------------------------------------------------------------------------


def test_the_duckdb_recipe_reports_what_reconcile_reports(tmp_path: Path, capsys: Any) -> None:
    """The recipe's SQL finds the discrepancies ``reconcile`` finds, on a dataset it made."""
    import csv

    from leat_async.reconcile import read_export, reconcile_to_csv

    recipe = load("warehouse_duckdb")
    dataset = tmp_path / "ds"
    assert recipe.main([str(dataset), "--fake", "400"]) == 0
    flat = tmp_path / "flat.parquet"  # the same rows, one file, for reconcile
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    pq.write_table(ds.dataset(dataset, format="parquet", partitioning="hive").to_table(), flat)
    txs = sorted(read_export(flat), key=lambda t: t.id)
    ledger = tmp_path / "ledger.csv"
    with ledger.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["reference", "giftcard_uuid", "shop_uuid", "amount_in_cents", "created_at"])
        for i, t in enumerate(txs[:300]):  # the ledger knows 300 of the 400, one amount wrong
            amount = t.amount_in_cents + (1 if i == 7 else 0)
            out.writerow([f"o-{i}", t.card.uuid, t.shop.uuid, amount, t.created_at.isoformat()])
    capsys.readouterr()
    found = recipe.report(dataset, ledger, 300)
    assert found["repeated"] == 0 and sum(r[2] for r in found["daily"]) == 400
    summary = reconcile_to_csv(ledger, iter(txs), tmp_path / "report.csv", tolerance=300)
    with (tmp_path / "report.csv").open(newline="") as f:
        theirs = sorted(
            (r["status"], r["reference"] or r["transaction_id"]) for r in csv.DictReader(f)
        )
    assert sorted(found["discrepancies"]) == theirs and summary.missing_in_leat == 1
    assert len(theirs) == 1 + 101 and "102 discrepancies" in capsys.readouterr().out
