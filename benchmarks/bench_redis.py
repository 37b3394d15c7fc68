"""Four processes, one API budget: shared pacing in Redis against in-process pacing alone.

    python benchmarks/bench_redis.py [--seconds 10] [--processes 4] [--limit 20]

Starts the fake Leat server in a process of its own with a server-side limit of ``--limit``
requests per second, a throwaway ``redis-server`` on a free loopback port (or uses
``--redis-url``), then runs ``--processes`` worker processes for ``--seconds`` per mode. Every
busy worker reads as fast as its pacing allows (8 requests in flight). Modes: one cap shared in
Redis; in-process caps of the whole limit each; a static split (limit / processes each); and
the last two again with only one of the workers busy. Reported: answered requests per second,
their share of the server's limit, the 429s the server sent, and calls that failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

TOKEN = "test-token"  # the fake server's default


async def _work(base_url: str, redis_url: str, rate_limit: int, start: float, end: float) -> None:
    import leat_async as la

    state = la.RedisRateState(redis_url) if redis_url else None
    done = errors = 0
    await asyncio.sleep(max(0.0, start - time.time()))
    async with la.LeatClient(
        TOKEN, base_url=base_url, rate_limit=rate_limit, rate_state=state
    ) as c:

        async def loop() -> None:
            nonlocal done, errors
            while time.time() < end:
                try:
                    await c.giftcard_transactions.list(per_page=1)
                except la.LeatError:
                    errors += 1
                else:
                    if time.time() <= end:
                        done += 1

        await asyncio.gather(*(loop() for _ in range(8)))
        stats = {"done": done, "errors": errors, "rate_limited": c.stats.rate_limited}
    print(json.dumps(stats), flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def _process(args: list[str], *, first_line: bool = False) -> Iterator[str]:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        yield proc.stdout.readline().strip() if first_line and proc.stdout else ""
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def _redis(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not on PATH: install it or pass --redis-url")
    import redis

    port = _free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    with _process([*args, "--appendonly", "no"]):
        probe = redis.Redis(port=port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if probe.ping():
                    break
            time.sleep(0.02)
        probe.close()
        yield f"redis://127.0.0.1:{port}/0"


def _run(base_url: str, redis_url: str, cap: int, busy: int, args: argparse.Namespace) -> Any:
    start = time.time() + 2.0  # past every worker's imports
    end = start + args.seconds
    cmd = [sys.executable, __file__, "--worker", base_url, redis_url, str(cap), repr(start)]
    procs = [
        subprocess.Popen([*cmd, repr(end)], stdout=subprocess.PIPE, text=True)  # noqa: S603
        for _ in range(busy)
    ]
    results = [json.loads(p.communicate(timeout=args.seconds + 60)[0]) for p in procs]
    time.sleep(1.1)  # let the server's window run out before the next mode
    done = sum(r["done"] for r in results)
    return {
        "rate": done / args.seconds,
        "share": done / (args.seconds * args.limit),
        "429s": sum(r["rate_limited"] for r in results),
        "errors": sum(r["errors"] for r in results),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        base_url, redis_url, rate_limit, start, end = sys.argv[2:7]
        asyncio.run(_work(base_url, redis_url, int(rate_limit), float(start), float(end)))
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0, help="per mode (10)")
    p.add_argument("--processes", type=int, default=4, help="worker processes (4)")
    p.add_argument("--limit", type=int, default=20, help="server-side requests per second (20)")
    p.add_argument("--redis-url", help="an existing Redis (default: start a throwaway one)")
    args = p.parse_args()
    n, limit = args.processes, args.limit
    server = [sys.executable, "-m", "leat_async.testing", "--port", "0", "--seed", "100"]
    server += ["--rate-limit", str(limit), "--rate-window", "1"]
    with _redis(args.redis_url) as redis_url, _process(server, first_line=True) as base_url:
        split = max(1, limit // n)
        modes = [  # name, Redis URL ("": in-process), cap per process, busy processes
            (f"Redis, shared cap {limit}", redis_url, limit, n),
            (f"in-process, cap {limit} each", "", limit, n),
            (f"in-process, cap {split} each", "", split, n),
            (f"Redis, shared cap {limit}, 1 busy", redis_url, limit, 1),
            (f"in-process, cap {split}, 1 busy", "", split, 1),
        ]
        print(f"{n} processes x 8 in flight, {args.seconds:g} s per mode, server limit {limit}/s")
        print(f"{'pacing':<32} {'answered/s':>10} {'of limit':>9} {'429s':>6} {'errors':>7}")
        for name, url, cap, busy in modes:
            r = _run(base_url, url, cap, busy, args)
            print(
                f"{name:<32} {r['rate']:>10.1f} {r['share']:>8.1%} {r['429s']:>6} {r['errors']:>7}",
                flush=True,
            )


if __name__ == "__main__":
    main()
