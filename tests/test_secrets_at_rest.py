"""A card's code is a secret at rest too (issue 20, point 1): whoever has it can spend the card.

It never reaches a position (``repr``, ``to_dict``, pickle), a checkpoint, an incremental state
file, a log line or a message; where a resume must recognise the filter, a digest keyed with
the token stands in for it. The command line takes it from standard input (``-``).
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import leat_async as la
from leat_async import LeatClient, Position
from leat_async.export import checkpoint_path, export_transactions, incremental_path
from leat_async.reconcile import read_export
from leat_async.testing import FakeLeat, Fault

from ._command import HARNESS, environ
from .conftest import LONG_AGO, TOKEN

CODE = "KRABBY-PATTY-1234"


@pytest.fixture
async def card(fake: FakeLeat) -> Any:
    shop = fake.add_shop(name="Krusty Krab")
    card = fake.add_card(balance_in_cents=10**9, reincrementable=True, hash=CODE)
    other = fake.add_card(balance_in_cents=10**9, reincrementable=True)
    for i in range(250):
        when = LONG_AGO + timedelta(seconds=i)
        fake.add_transaction(card=card, shop=shop, amount_in_cents=100 + i, created_at=when)
        fake.add_transaction(card=other, shop=shop, amount_in_cents=-1, created_at=when)
    return card


def mine(fake: FakeLeat, card: Any) -> list[int]:
    return [t.id for t in fake.transactions if t.card is card]


async def test_a_position_never_holds_the_code_and_still_resumes(
    client: LeatClient, fake: FakeLeat, card: Any
) -> None:
    pager = client.giftcard_transactions.list(giftcard_hash=CODE, per_page=100)
    first = []
    async for tx in pager:
        first.append(tx.id)
        if len(first) == 130:
            break
    position = pager.position
    assert position is not None
    for text in (repr(position), json.dumps(position.to_dict()), str(pickle.dumps(position))):
        assert CODE not in text
    saved = Position.from_dict(json.loads(json.dumps(position.to_dict())))
    rest = [
        tx.id
        async for tx in client.giftcard_transactions.list(
            giftcard_hash=CODE, per_page=100, resume=saved
        )
    ]
    assert first + rest == mine(fake, card)
    with pytest.raises(ValueError, match="giftcard_hash"):
        client.giftcard_transactions.list(giftcard_hash="ANOTHER-CODE", resume=saved)
    async with LeatClient("another-token", base_url=fake.url) as other:
        with pytest.raises(ValueError, match="giftcard_hash"):  # keyed: another token's digest
            other.giftcard_transactions.list(giftcard_hash=CODE, resume=saved)


async def test_a_position_saved_by_an_older_version_still_resumes(
    client: LeatClient, fake: FakeLeat, card: Any
) -> None:
    pager = client.giftcard_transactions.list(giftcard_hash=CODE)
    page = [tx.id async for tx in pager][:0]
    doc = pager.position.to_dict() if pager.position else {}
    old = {  # format 1 named the code itself
        "format": 1,
        "listing": "giftcard-transactions",
        "parameters": [["perPage", "100"], ["giftcard_hash", CODE]],
        "page": 2,
        "snapshot": doc["snapshot"],
        "seen": [],
    }
    rest = [
        tx.id
        async for tx in client.giftcard_transactions.list(
            giftcard_hash=CODE, resume=Position.from_dict(old)
        )
    ]
    assert page + rest == mine(fake, card)[100:]


def test_fingerprints_are_keyed_with_the_token() -> None:
    one, again, other = LeatClient(TOKEN), LeatClient(TOKEN), LeatClient("another-token")
    assert one.fingerprint("1234") == again.fingerprint("1234") != other.fingerprint("1234")
    assert one.fingerprint("1234").startswith("hmac-sha256:") and "1234" not in one.fingerprint(
        "1234"
    )


@pytest.fixture
def crashing(fake: FakeLeat, card: Any) -> FakeLeat:
    fake.add_fault(Fault(method="GET", query={"page": "2"}, status=400, body={"message": "x"}))
    return fake


async def run(*args: str, stdin: bytes = b"") -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        HARNESS,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environ(),
    )
    _, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_an_export_keeps_the_code_out_of_its_files_and_logs(
    crashing: FakeLeat, card: Any, tmp_path: Path
) -> None:
    out = tmp_path / "card.jsonl"
    base = ("export", "--base-url", crashing.url, "-o", str(out), "-vv")
    status, err = await run(*base, "--giftcard-hash", "-", stdin=f"{CODE}\n".encode())
    assert status == 3 and "Traceback" not in err
    left = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    assert "card.jsonl.checkpoint.json" in left  # resumable ...
    assert all(CODE.encode() not in text for text in left.values())  # ... and no code in it
    status, again = await run(*base, "--giftcard-hash", "-", "--resume", stdin=CODE.encode())
    assert status == 0, again
    assert [t.id for t in read_export(out)] == mine(crashing, card)
    files = [(tmp_path / name).read_bytes() for name in os.listdir(tmp_path)]
    assert len(files) == 1 and all(CODE.encode() not in text for text in files)
    assert CODE not in err + again


async def test_an_incremental_state_holds_no_code(
    client: LeatClient, fake: FakeLeat, card: Any, tmp_path: Path
) -> None:
    out = tmp_path / "inc.jsonl"
    await export_transactions(client, out, giftcard_hash=CODE, incremental=True)
    assert CODE not in incremental_path(out).read_text()
    again = await export_transactions(client, out, giftcard_hash=CODE, incremental=True)
    assert again.rows == 250


async def test_an_old_checkpoint_that_holds_the_code_is_refused_clearly(
    crashing: FakeLeat, card: Any, tmp_path: Path
) -> None:
    out = tmp_path / "card.jsonl"
    async with LeatClient(TOKEN, base_url=crashing.url, retry=la.RetryPolicy(max_attempts=1)) as c:
        with pytest.raises(la.LeatAPIError):
            await export_transactions(c, out, giftcard_hash=CODE, checkpoint_every=0)
        doc = json.loads(checkpoint_path(out).read_text())
        doc["filters"]["giftcard_hash"] = CODE  # as versions before this one wrote it
        checkpoint_path(out).write_text(json.dumps(doc))
        with pytest.raises(la.export.CheckpointError, match=r"older leat-async.*in clear"):
            await export_transactions(c, out, giftcard_hash=CODE, resume=True)


async def test_an_empty_code_on_standard_input_is_a_usage_error(tmp_path: Path) -> None:
    status, err = await run(
        "export", "--fake", "10", "-o", str(tmp_path / "x.jsonl"), "--giftcard-hash", "-"
    )
    assert status == 2 and "standard input held no card code" in err
    assert os.listdir(tmp_path) == []
