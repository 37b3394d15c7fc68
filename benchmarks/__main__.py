"""``python -m benchmarks [--quick] [--only SCENARIO,...] [--repeats N]`` (scenarios: SCENARIOS)."""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import FrameType

from . import (
    bench_convert,
    bench_export,
    bench_money,
    bench_otel,
    bench_pager,
    bench_rate,
    bench_reconcile,
    bench_ties,
    bench_warehouse,
    bench_webhooks,
)
from ._common import Config, Goal, Section, render

SCENARIOS: dict[str, Callable[[Config], list[Section]]] = {
    "pager": bench_pager.run,
    "convert": bench_convert.run,
    "rate": bench_rate.run,
    "export": bench_export.run,
    "money": bench_money.run,
    "reconcile": bench_reconcile.run,
    "ties": bench_ties.run,
    "webhooks": bench_webhooks.run,
    "warehouse": bench_warehouse.run,
    "otel": bench_otel.run,
}


def _scenarios(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown scenario {', '.join(unknown) or '(none)'}; choose from {', '.join(SCENARIOS)}"
        )
    return names


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="leat-async's figures next to baselines measured in the same run.",
    )
    p.add_argument("--quick", action="store_true", help="a ~1-minute smoke run: smaller sizes")
    p.add_argument(
        "--only",
        type=_scenarios,
        default=list(SCENARIOS),
        metavar="LIST",
        help=f"comma-separated scenarios to run (default: all of {','.join(SCENARIOS)})",
    )
    p.add_argument(
        "--repeats", type=int, default=None, help="timed repeats per variant (5; --quick: 3)"
    )
    p.add_argument(
        "--profile", action="store_true", help="pager: also print a cProfile of a sequential walk"
    )
    return p


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _revision() -> str:
    """The commit measured, and whether the library had uncommitted changes."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def git(*args: str) -> str:
        return subprocess.run(  # noqa: S603 - our own fixed git commands
            ["git", *args],  # noqa: S607 - git from PATH is fine here
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "leat_async")
    except (OSError, subprocess.SubprocessError):
        return "unknown revision"
    return f"commit {head}" + (" + uncommitted changes in leat_async/" if dirty else "")


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds, so the fake server's ``finally`` stops it


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 5)
    if repeats < 1:
        print("error: --repeats must be >= 1", file=sys.stderr)
        return 2
    config = Config(quick=args.quick, repeats=repeats, profile=args.profile)
    signal.signal(signal.SIGTERM, _on_sigterm)

    print(
        f"# leat-async benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
        f"{_cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{_revision()}; {'quick' if args.quick else 'full'} run, {repeats} repeats\n",
        flush=True,
    )
    goals: list[Goal] = []
    started = time.perf_counter()
    try:
        for name in args.only:
            t0 = time.perf_counter()
            for section in SCENARIOS[name](config):
                print(section.render() + "\n", flush=True)
                goals += section.goals
            print(f"({name}: {time.perf_counter() - t0:.0f} s)\n", flush=True)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if goals:
        print("### goals\n")
        print(render(["scenario", "goal", "value", "target", "status"], [g.row() for g in goals]))
        print()
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
