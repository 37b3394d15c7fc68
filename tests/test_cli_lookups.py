"""``leat-async giftcards|transactions|webhooks``, run as a user runs them, against the fake."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from leat_async.testing import FakeLeat, Fault

from ._command import Done, environ, start
from .conftest import TOKEN, seed_rows


async def run(fake: FakeLeat, *args: str, stdin: str | None = None) -> Done:
    import sys

    from ._command import HARNESS

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        HARNESS,
        *args,
        "--base-url",
        fake.url,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environ(),
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else b""), 60)
    assert proc.returncode is not None
    return Done(proc.returncode, out, err.decode())


async def test_a_card_found_by_its_code_from_stdin_in_both_shapes(fake: FakeLeat) -> None:
    card = fake.add_card(balance_in_cents=1234, hash="SECRET-CODE-77")
    table = await run(fake, "giftcards", "find", "-", stdin="SECRET-CODE-77\n")
    assert table.status == 0 and table.err == "", table.err
    head, row = table.out.decode().splitlines()
    assert head.split() == [
        "uuid",
        "type",
        "amount_in_cents",
        "active",
        "expiration_date",
        "program",
    ]
    assert row.split()[:3] == [card.uuid, "PHYSICAL", "1234"]
    as_json = await run(fake, "giftcards", "find", "-", "--json", stdin="SECRET-CODE-77\n")
    doc = json.loads(as_json.out)
    assert doc["uuid"] == card.uuid and doc["amount_in_cents"] == 1234 and doc["hash"]
    missing = await run(fake, "giftcards", "find", "-", "-vv", stdin="NO-SUCH-CARD\n")
    last = missing.err.splitlines()[-1]
    assert missing.status == 1 and missing.out == b"" and last.startswith("leat-async: not found")
    assert "NO-SUCH-CARD" not in missing.err  # the code never reaches stderr, -vv included


async def test_transactions_get_and_list_print_the_apis_objects(fake: FakeLeat) -> None:
    seed_rows(fake, 12)
    listed = await run(fake, "transactions", "list", "--limit", "5", "--json")
    docs = [json.loads(line) for line in listed.out.splitlines()]
    assert listed.status == 0 and [d["id"] for d in docs] == [t.id for t in fake.transactions[:5]]
    assert set(docs[0]) == {"id", "uuid", "amount_in_cents", "type", "settled", "card", "shop",
                            "settlements", "created_at"}  # fmt: skip
    uuid = fake.transactions[3].uuid
    assert uuid is not None
    got = await run(fake, "transactions", "get", uuid, "--json")
    assert json.loads(got.out) == docs[3]
    gone = await run(fake, "transactions", "get", "00000000-0000-4000-8000-000000000000")
    assert gone.status == 1 and "not found" in gone.line


async def test_a_reversal_needs_yes_and_a_lost_answer_says_how_to_check(fake: FakeLeat) -> None:
    seed_rows(fake, 3)
    uuid = fake.transactions[0].uuid
    assert uuid is not None
    fake.reset_requests()
    refused = await run(fake, "transactions", "reverse", uuid)
    assert refused.status == 2 and "--yes" in refused.line and fake.requests == []
    fake.add_fault(Fault(method="POST", drop=True, when="after"))
    lost = await run(fake, "transactions", "reverse", uuid, "--yes")
    assert lost.status == 3 and "may have been made" in lost.line and "Traceback" not in lost.err
    assert len([r for r in fake.requests if r.method == "POST"]) == 1  # sent once, not again


async def test_webhook_subscriptions_with_the_secret_from_stdin(fake: FakeLeat) -> None:
    made = await run(
        fake, "webhooks", "create", "--name", "orders", "--event-type",
        "giftcard_transaction_created", "--url", "https://shop.example/hooks", "--secret", "-",
        "--json", stdin="whsec-not-in-argv\n",
    )  # fmt: skip
    assert made.status == 0, made.err
    uuid = json.loads(made.out)["uuid"]
    listed = await run(fake, "webhooks", "list")
    assert uuid in listed.out.decode() and b"whsec" not in listed.out + made.out
    in_argv = await run(fake, "webhooks", "create", "--name", "x", "--event-type", "t",
                        "--url", "https://x.example", "--secret", "plain")  # fmt: skip
    assert in_argv.status == 2 and "standard input" in in_argv.line
    deleted = await run(fake, "webhooks", "delete", uuid)
    assert deleted.status == 0 and uuid not in (await run(fake, "webhooks", "list")).out.decode()


async def test_without_a_token_a_look_up_is_a_usage_error(fake: FakeLeat) -> None:
    proc = await start("transactions", "list", "--base-url", fake.url, LEAT_TOKEN="")
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2 and b"LEAT_TOKEN" in err and TOKEN.encode() not in err


def test_completion_scripts_know_every_command(tmp_path: Path) -> None:
    import subprocess
    import sys

    for shell in ("bash", "zsh"):
        done = subprocess.run(  # noqa: S603 - our own interpreter
            [sys.executable, "-m", "leat_async", "--print-completion", shell],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        for word in ("export", "reconcile", "giftcards", "transactions", "webhooks", "--json"):
            assert word in done.stdout, (shell, word)
        script = tmp_path / f"leat-async.{shell}"
        script.write_text(done.stdout)
        if shell == "bash":  # it parses
            subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)  # noqa: S603,S607


def test_an_api_errors_repr_shows_its_kind_code_and_status() -> None:
    from leat_async import GiftcardNotFoundError

    error = GiftcardNotFoundError(
        "Kaart niet gevonden | Giftcard not found.", status=400, code=5001,
        headers={"X-Request-Id": "r-1"},
    )  # fmt: skip
    assert repr(error) == (
        "GiftcardNotFoundError(code=5001, status=400, message='Giftcard not found.', "
        "request_id='r-1')"
    )


async def test_an_output_that_cannot_be_written_is_exit_2_before_any_request(
    fake: FakeLeat, tmp_path: Path
) -> None:
    seed_rows(fake, 3)
    proc = await start("export", "--base-url", fake.url, "-o", "/proc/leat-x.jsonl")
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2 and b"cannot write /proc/leat-x.jsonl" in err
    assert fake.requests == []


async def test_quiet_reconcile_prints_nothing_but_says_by_its_status(
    fake: FakeLeat, tmp_path: Path
) -> None:
    seed_rows(fake, 4)
    ledger = tmp_path / "ledger.csv"
    ledger.write_text("reference,giftcard_uuid,shop_uuid,amount_in_cents,created_at\n")
    proc = await start(
        "reconcile",
        "--ledger",
        str(ledger),
        "--base-url",
        fake.url,
        "-o",
        str(tmp_path / "r.csv"),
        "-q",
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1 and out == b"" and err == b""  # 4 unexpected_in_leat
