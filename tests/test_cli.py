"""The ``leat-async`` command, run as a user runs it: a subprocess, ``python -m leat_async``."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from leat_async import LeatAPIError, LeatClient, RetryPolicy
from leat_async.cli import FAKE_END
from leat_async.export import CSV_COLUMNS, checkpoint_path, export_transactions, partial_path
from leat_async.testing import FakeLeat, Fault

N = 500
LEDGER_HEADER = ["reference", "giftcard_uuid", "shop_uuid", "amount_in_cents", "created_at"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "LEAT_TOKEN"}
    environ["PYTHONWARNINGS"] = "always::ResourceWarning"  # an unclosed file shows on stderr
    environ.update(env or {})
    return subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "leat_async", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )


def one_error_line(proc: subprocess.CompletedProcess[str] | str) -> str:
    err = proc if isinstance(proc, str) else proc.stderr
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("leat-async: error: ") and "Traceback" not in err
    return lines[0]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("export") / "all.jsonl"
    proc = run("export", "--fake", str(N), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    # not a terminal: no progress bar, just the summary line
    assert len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith(f"leat-async: exported {N} rows to {out} in ")
    assert "0 retries, 0 rate-limited" in proc.stderr and "\r" not in proc.stderr
    return read_jsonl(out)


def test_export_jsonl(exported: list[dict[str, Any]]) -> None:
    ids = [r["id"] for r in exported]
    assert len(ids) == N and ids == sorted(set(ids))
    assert set(exported[0]) == {
        "id",
        "uuid",
        "amount_in_cents",
        "type",
        "settled",
        "card",
        "shop",
        "settlements",
        "created_at",
    }
    assert all(r["created_at"].endswith("+00:00") for r in exported)
    stamps = [datetime.fromisoformat(r["created_at"]) for r in exported]
    assert stamps == sorted(stamps) and stamps[-1] <= FAKE_END


def test_export_csv(tmp_path: Path, exported: list[dict[str, Any]]) -> None:
    out = tmp_path / "all.csv"  # the format follows the name
    proc = run("export", "--fake", str(N), "-o", str(out), "--concurrency", "3", "--rate", "500")
    assert proc.returncode == 0, proc.stderr
    with out.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    assert [int(r["id"]) for r in rows] == [r["id"] for r in exported]
    assert [r["created_at"] for r in rows] == [r["created_at"] for r in exported]
    assert {r["settled"] for r in rows} <= {"true", "false"}
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.json"))


def test_export_window(tmp_path: Path, exported: list[dict[str, Any]]) -> None:
    since = datetime.fromisoformat(exported[100]["created_at"])
    until = datetime.fromisoformat(exported[300]["created_at"]) + timedelta(seconds=1)
    # --since without a zone is UTC; --until with one
    args = ["--since", since.strftime("%Y-%m-%dT%H:%M:%S"), "--until", until.isoformat()]
    out = tmp_path / "w.jsonl"
    proc = run("export", "--fake", str(N), "-o", str(out), "--format", "jsonl", *args)
    assert proc.returncode == 0, proc.stderr
    expected = [
        r["id"] for r in exported if since <= datetime.fromisoformat(r["created_at"]) < until
    ]
    assert [r["id"] for r in read_jsonl(out)] == expected and len(expected) >= 201


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["export", "--fake", "5"], None, "required: -o/--output"),
        (["export", "--fake", "5", "-o", "x", "--since", "last tuesday"], None, "--since"),
        (["export", "--fake", "5", "-o", "x", "--format", "xml"], None, "invalid choice"),
        (
            ["export", "--fake", "5", "-o", "x", "--since", "2024-02-01", "--until", "2024-01-01"],
            None,
            "--since must be before --until",
        ),
        (["export", "-o", "x"], None, "LEAT_TOKEN is not set"),
        (["export", "-o", "x"], {"LEAT_TOKEN": ""}, "LEAT_TOKEN is not set"),
        (
            ["export", "-o", "x", "--base-url", "http://example.com"],
            {"LEAT_TOKEN": "t0k"},
            "loopback",
        ),
        (
            ["export", "--fake", "5", "-o", "x", "--base-url", "https://api.piggy.eu"],
            None,
            "exclude each other",
        ),
        (["export", "--fake", "5", "-o", "x", "--resume"], None, "nothing to resume"),
        (["export", "--fake", "5", "-o", "no/such/dir/x"], None, "does not exist"),
        (["export", "--fake", "5", "-o", "x", "--concurrency", "0"], None, "--concurrency"),
        (["export", "--fake", "5", "-o", "x", "--shop-uuid", " s"], None, "shop_uuid"),
        (
            ["reconcile", "--ledger", "nope.csv", "-o", "r.csv", "--fake", "5"],
            None,
            "cannot read the ledger",
        ),
        (["reconcile", "-o", "r.csv"], None, "required: --ledger"),
        (
            ["reconcile", "--ledger", "l.csv", "-o", "r.csv", "--tolerance", "-3"],
            None,
            "--tolerance",
        ),
        (["frobnicate"], None, "invalid choice"),
        (
            ["export", "--fake", "5", "-o", "x", "--since", "0001-01-01T00:00:00+01:00"],
            None,
            "range",
        ),
        (["export", "--fake", "5", "-o", "x", "--settle", "9"], None, "--settle goes with"),
        (["export", "--fake", "5", "-o", "x", "--incremental", "--resume"], None, "leave out"),
        (["export", "--fake", "5", "-o", "-", "--resume"], None, "cannot be used with --resume"),
        (
            ["export", "--fake", "5", "-o", "x", "--giftcard-hash", "a\tb", "--incremental"],
            None,
            "giftcard_hash",
        ),
    ],
)
def test_bad_arguments(
    tmp_path: Path, args: list[str], env: dict[str, str] | None, says: str
) -> None:
    os.chdir(tmp_path)
    proc = run(*args, env=env)
    assert proc.returncode == 2
    assert says in one_error_line(proc)  # no ResourceWarning either
    assert os.listdir(tmp_path) == []  # no partial file, no checkpoint


async def run_async(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """The command as a subprocess, while this process's loop keeps serving a fake."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "leat_async",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**_no_token(), **env},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert out == b""
    return await proc.wait(), err.decode()


async def test_real_api_path_auth_failure_and_server_failure(tmp_path: Path) -> None:
    token = "super-secret-token-value"
    out = tmp_path / "x.jsonl"
    async with FakeLeat(token=token) as fake:
        fake.seed(250, end=FAKE_END)
        args = ["export", "-o", str(out), "--base-url", fake.url]

        status, err = await run_async(*args, env={"LEAT_TOKEN": "wrong-token"})
        assert status == 3 and token not in err
        assert "authentication failed, check LEAT_TOKEN" in one_error_line(err)
        assert not out.exists() and not partial_path(out).exists()
        assert not checkpoint_path(out).exists()  # nothing to resume: just run again

        fault = Fault(method="GET", query={"page": "2"}, status=400, body={"message": "Nope"})
        fake.add_fault(fault)
        status, err = await run_async(*args, env={"LEAT_TOKEN": token})
        assert status == 3 and token not in err
        line = one_error_line(err)
        assert "export failed after 100 rows" in line and "Nope" in line
        assert line.endswith("run the same command with --resume to continue")
        assert not out.exists()

        status, err = await run_async(*args, "--resume", env={"LEAT_TOKEN": token})
        assert status == 0 and "exported 250 rows" in err and token not in err
    assert len(read_jsonl(out)) == 250


async def test_resume_a_failed_export_in_a_new_process(tmp_path: Path) -> None:
    """An export that failed at page 3 (the same fake data), finished by ``--resume``."""
    out = tmp_path / "tx.jsonl"
    async with FakeLeat() as fake:
        fake.seed(N, end=FAKE_END)  # what ``--fake N`` serves
        fake.add_fault(Fault(method="GET", query={"page": "3"}, status=500, times=None))
        retry = RetryPolicy(max_attempts=1)
        async with LeatClient(fake.token, base_url=fake.url, retry=retry) as client:
            with pytest.raises(LeatAPIError):
                await export_transactions(client, out, job_id=f"fake:{N}")
    assert json.loads(checkpoint_path(out).read_text())["next_page"] == 3

    again = run("export", "--fake", str(N), "-o", str(out))
    assert again.returncode == 2 and "--resume" in one_error_line(again)
    other = run("export", "--fake", str(N), "-o", str(out), "--resume", "--since", "2024-06-01")
    assert other.returncode == 2 and "different created_at" in one_error_line(other)
    fmt = run("export", "--fake", str(N), "-o", str(out), "--resume", "--format", "csv")
    assert fmt.returncode == 2 and "different format" in one_error_line(fmt)

    done = run("export", "--fake", str(N), "-o", str(out), "--resume")
    assert done.returncode == 0, done.stderr
    assert "resumed at page 3" in done.stderr and f"exported {N} rows" in done.stderr
    ids = [r["id"] for r in read_jsonl(out)]
    assert ids == list(range(1, N + 1))
    assert not checkpoint_path(out).exists() and not partial_path(out).exists()


def test_ctrl_c_then_resume(tmp_path: Path) -> None:
    out = tmp_path / "tx.csv"
    cmd = [sys.executable, "-m", "leat_async", "export", "--fake", "20000", "-o", str(out)]
    proc = subprocess.Popen(  # noqa: S603 - our own command
        [*cmd, "--rate", "40"], stderr=subprocess.PIPE, text=True, env=_no_token()
    )
    try:
        deadline = time.monotonic() + 30
        # wait for the first periodic checkpoint: the export is under way
        while not _checkpoint_rows(out) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.splitlines() == [
        "leat-async: interrupted; run the same command with --resume to continue"
    ]
    saved = json.loads(checkpoint_path(out).read_text())
    assert 0 < saved["rows"] < 20000 and not out.exists()

    done = run("export", "--fake", "20000", "-o", str(out), "--resume")
    assert done.returncode == 0, done.stderr
    with out.open(newline="") as f:
        ids = [int(r["id"]) for r in csv.DictReader(f)]
    assert ids == list(range(1, len(ids) + 1))
    assert f"exported {len(ids)} rows" in done.stderr and len(ids) > 19000


def _no_token() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "LEAT_TOKEN"}


def _checkpoint_rows(out: Path) -> int:
    try:
        return int(json.loads(checkpoint_path(out).read_text())["rows"])
    except (OSError, ValueError):
        return 0


# -- reconcile --------------------------------------------------------------------------------


def ledger_from(rows: list[dict[str, Any]], path: Path, *, shift: int = 30) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(LEDGER_HEADER)
        for r in rows:
            when = datetime.fromisoformat(r["created_at"]) + timedelta(seconds=shift)
            w.writerow(
                [
                    f"ref-{r['id']}",
                    r["card"]["uuid"],
                    r["shop"]["uuid"],
                    r["amount_in_cents"],
                    when.strftime("%Y-%m-%d %H:%M:%S"),  # no zone: UTC
                ]
            )
    return path


def test_reconcile_with_discrepancies(tmp_path: Path, exported: list[dict[str, Any]]) -> None:
    rows = [r for r in exported if r["card"]["uuid"]][:60]
    export = tmp_path / "export.jsonl"
    export.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ledger_rows = [dict(r) for r in rows[2:]]  # rows 0, 1: unexpected in Leat
    ledger_rows[10] = {**ledger_rows[10], "amount_in_cents": ledger_rows[10]["amount_in_cents"] + 1}
    extra = {**rows[5], "id": 999_001, "created_at": "2024-03-03T03:03:03+00:00"}
    ledger_rows.append(extra)  # missing in Leat
    ledger = ledger_from(ledger_rows, tmp_path / "ledger.csv")
    report = tmp_path / "report.csv"
    proc = run(
        "reconcile", "--ledger", str(ledger), "--transactions", str(export), "-o", str(report)
    )
    assert proc.returncode == 1, proc.stderr
    assert [line.split() for line in proc.stdout.splitlines()] == [
        ["matched", "57"],
        ["missing_in_leat", "2"],
        ["unexpected_in_leat", "3"],
        ["report:", str(report)],
    ]
    with report.open(newline="") as f:
        got = list(csv.DictReader(f))
    assert [(g["status"], g["reference"], g["transaction_id"]) for g in got] == [
        ("unexpected_in_leat", "", str(rows[0]["id"])),
        ("unexpected_in_leat", "", str(rows[1]["id"])),
        ("unexpected_in_leat", "", str(rows[12]["id"])),
        ("missing_in_leat", f"ref-{rows[12]['id']}", ""),
        ("missing_in_leat", "ref-999001", ""),
    ]
    changed = got[3]
    assert int(changed["amount_in_cents"]) == rows[12]["amount_in_cents"] + 1
    assert changed["giftcard_uuid"] == rows[12]["card"]["uuid"]


def test_reconcile_clean(tmp_path: Path, exported: list[dict[str, Any]]) -> None:
    rows = [r for r in exported if r["card"]["uuid"]]
    export = tmp_path / "export.jsonl"
    export.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ledger = ledger_from(rows, tmp_path / "ledger.csv", shift=-299)
    report = tmp_path / "report.csv"
    proc = run(
        "reconcile", "--ledger", str(ledger), "--transactions", str(export), "-o", str(report)
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].split() == ["matched", str(len(rows))]
    assert report.read_text().splitlines() == [
        "status,reference,transaction_id,transaction_uuid,giftcard_uuid,shop_uuid,"
        "amount_in_cents,created_at"
    ]


def test_reconcile_fetching_from_the_fake(tmp_path: Path, exported: list[dict[str, Any]]) -> None:
    since = datetime.fromisoformat(exported[200]["created_at"])
    until = datetime.fromisoformat(exported[300]["created_at"])
    window = [r for r in exported if since <= datetime.fromisoformat(r["created_at"]) < until]
    known = [r for r in window if r["card"]["uuid"]]  # old cards have no uuid to match on
    ledger = ledger_from(known, tmp_path / "ledger.csv", shift=250)
    report = tmp_path / "report.csv"
    base = ["reconcile", "--ledger", str(ledger), "--fake", str(N), "-o", str(report)]
    bounds = ["--since", since.isoformat(), "--until", until.isoformat()]
    proc = run(*base, *bounds, "--tolerance", "250")
    assert proc.returncode == (0 if len(known) == len(window) else 1), proc.stderr
    counts = [line.split() for line in proc.stdout.splitlines()[:3]]
    assert counts == [
        ["matched", str(len(known))],
        ["missing_in_leat", "0"],
        ["unexpected_in_leat", str(len(window) - len(known))],
    ]
    tight = run(*base, *bounds, "--tolerance", "249")
    assert tight.returncode == 1 and tight.stdout.split()[:2] == ["matched", "0"]


def test_reconcile_source_conflict_and_bad_export(tmp_path: Path) -> None:
    ledger = ledger_from([], tmp_path / "ledger.csv")
    export = tmp_path / "e.jsonl"
    export.write_text("not json\n")
    both = run(
        "reconcile",
        "--ledger",
        str(ledger),
        "--transactions",
        str(export),
        "--fake",
        "3",
        "-o",
        str(tmp_path / "r.csv"),
    )
    assert both.returncode == 2 and "exclude each other" in one_error_line(both)
    bad = run(
        "reconcile",
        "--ledger",
        str(ledger),
        "--transactions",
        str(export),
        "-o",
        str(tmp_path / "r.csv"),
    )
    assert bad.returncode == 2 and "line 1: not a transaction" in one_error_line(bad)
    assert not (tmp_path / "r.csv").exists() and not (tmp_path / "r.csv.partial").exists()


def test_help_states_the_defaults() -> None:
    export = run("export", "--help")
    assert export.returncode == 0 and "--resume" in export.stdout
    assert "--incremental" in export.stdout and "(default 60)" in " ".join(export.stdout.split())
    rec = run("reconcile", "--help")
    assert "default 300 s" in " ".join(rec.stdout.split())
    text = " ".join(export.stdout.split())
    assert "Exit status: 0 done; 1 reconcile found discrepancies; 2 bad arguments" in text
    assert "3 the job failed" in text and "130 interrupted (Ctrl-C), 143 terminated" in text
    assert "; 141 the reader of -o - went away" in text
    text = " ".join(rec.stdout.split())
    assert "Exit status: 0 everything matched; 1 discrepancies found" in text
    assert "2 bad arguments" in text and "3 the job failed" in text
    assert "130 interrupted (Ctrl-C), 143 terminated (SIGTERM)" in text


def test_odd_input_files_are_one_line_each(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    header = "reference,giftcard_uuid,shop_uuid,amount_in_cents,created_at\n"
    (tmp_path / "huge.csv").write_text(header + "r1," + "a" * 140_000 + ",s,100,2024-01-01\n")
    (tmp_path / "ledger.csv").write_text(header + "r1,c,s,100,2024-01-01\n")
    columns = "id,uuid,amount_in_cents,type,settled,card_id,card_uuid,shop_id,shop_uuid,shop_name"
    # saved by a spreadsheet: a BOM before the header, and a row cut short
    (tmp_path / "tx.csv").write_text("\ufeff" + columns + ",created_at\n1,u,100\n")
    for ledger, says in (("huge.csv", "not a readable CSV"), ("ledger.csv", "tx.csv line 2")):
        proc = run("reconcile", "--ledger", ledger, "--transactions", "tx.csv", "-o", "r.csv")
        assert proc.returncode == 2
        assert says in one_error_line(proc)


def test_verbose_and_quiet(tmp_path: Path) -> None:
    loud = run("export", "--fake", "250", "-o", str(tmp_path / "a.jsonl"), "-vv")
    assert loud.returncode == 0, loud.stderr
    requests = [line for line in loud.stderr.splitlines() if "GET /giftcard-transactions" in line]
    assert len(requests) == 3 and all("HTTP 200" in line for line in requests)
    assert "test-token" not in loud.stderr and "exported 250 rows" in loud.stderr
    quiet = run("-q", "export", "--fake", "250", "-o", str(tmp_path / "b.jsonl"))
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()
    both = run("export", "--fake", "1", "-o", str(tmp_path / "c.jsonl"), "-v", "-q")
    assert both.returncode == 2 and "not allowed" in one_error_line(both)
    assert not (tmp_path / "c.jsonl").exists()


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (("export", "--rate", "fast"), "leat-async export"),  # argparse's own refusal
        (("export", "--fake", "5", "--settle", "1"), "leat-async export"),  # ours, after parsing
        (
            ("transactions", "reverse", "some-uuid", "--base-url", "http://127.0.0.1:9"),
            "leat-async transactions reverse",
        ),
    ],
)
def test_every_usage_error_ends_with_the_same_hint(args: tuple[str, ...], hint: str) -> None:
    # issue 25 point 3: one hint style, whoever found the mistake; exit 2, nothing sent
    proc = run(*args, env={"LEAT_TOKEN": "tok"})
    assert proc.returncode == 2
    assert one_error_line(proc).endswith(f" (see {hint} --help)")
