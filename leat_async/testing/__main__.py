"""``python -m leat_async.testing``: run the fake Leat server until interrupted.

Prints the base URL on one line to stdout, then serves. Meant for benchmarks in another process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

from ._server import FakeLeat

#: Requests a standalone fake keeps: it runs for hours under load, and a log of every request
#: would grow without bound (about 550 MB in four minutes of a benchmark's load).
KEEP_REQUESTS = 10_000


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m leat_async.testing", description="Run the fake Leat server."
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port, 0 for any free one (8080)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed N transactions (0)")
    p.add_argument("--random-seed", type=int, default=0, help="seed of the generator (0)")
    p.add_argument("--rate-limit", type=int, default=None, help="requests per window (none)")
    p.add_argument("--rate-window", type=float, default=1.0, help="window in seconds (1)")
    p.add_argument("--latency", type=float, default=0.0, help="seconds per answer (0)")
    p.add_argument("--token", default="test-token", help="accepted bearer token (test-token)")
    p.add_argument(
        "--unstable-ties",
        action="store_true",
        help="rows of one created_at second come in a new order on every request",
    )
    p.add_argument(
        "--keep-requests",
        type=int,
        default=KEEP_REQUESTS,
        metavar="N",
        help=f"requests kept in the fake's log, the latest ones ({KEEP_REQUESTS:,})",
    )
    return p


def fake_from(args: argparse.Namespace) -> FakeLeat:
    """The fake the command line asks for (not started)."""
    return FakeLeat(
        token=args.token,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        latency=args.latency,
        host=args.host,
        port=args.port,
        unstable_ties=args.unstable_ties,
        keep_requests=args.keep_requests,
    )


async def _serve(args: argparse.Namespace) -> None:
    fake = fake_from(args)
    if args.seed:
        fake.seed(args.seed, seed=args.random_seed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with fake:
        print(fake.url, flush=True)  # the one line on stdout: scripts read it
        for line in _what_to_try(fake):
            print(line, file=sys.stderr, flush=True)
        await stop.wait()


def _what_to_try(fake: FakeLeat) -> list[str]:
    """For a person on stderr: the token to use, and a few card codes that work."""
    cards = [c for c in fake.cards if c.uuid is not None and c.balance_in_cents > 0][:3]
    codes = ", ".join(f"{c.hash} ({c.balance_in_cents} cents)" for c in cards)
    return [
        f"token: {fake.token} (LEAT_TOKEN={fake.token} leat-async ... --base-url {fake.url})",
        f"cards to try: {codes}" if codes else "no cards yet (--seed N adds some)",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
