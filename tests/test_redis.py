"""The Redis home of the rate state: keys, many workers, many processes, and Redis failing.

Runs against a real ``redis-server`` started on a free loopback port. Without one the tests are
skipped, unless ``LEAT_REQUIRE_REDIS=1`` (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import pytest

import leat_async as la
from leat_async import LeatClient, RateInfo
from leat_async._http.pacing import PROBE_POLL
from leat_async.testing import FakeLeat

from .conftest import FAST_RETRY, TOKEN


def require_redis() -> None:
    """Skip (or, with ``LEAT_REQUIRE_REDIS=1``, fail) when redis-server or redis-py is missing."""
    missing = []
    if shutil.which("redis-server") is None:
        missing.append("redis-server is not on PATH")
    try:
        import redis  # noqa: F401
    except ImportError:
        missing.append("redis-py is not installed (pip install 'leat-async[redis]')")
    if missing:
        reason = "; ".join(missing)
        if os.environ.get("LEAT_REQUIRE_REDIS") == "1":
            pytest.fail(f"LEAT_REQUIRE_REDIS=1 but {reason}", pytrace=False)
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


SAVE_NOTHING = ("--save", "", "--appendonly", "no")


class RedisServer:
    """A throwaway ``redis-server`` on loopback: no persistence, stopped at teardown."""

    def __init__(self) -> None:
        self.port = _free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self._proc = subprocess.Popen(  # noqa: S603 - a fixed command line
            [*("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"), *SAVE_NOTHING],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = redis.Redis(port=self.port, socket_connect_timeout=0.2, socket_timeout=0.2)
        try:
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline:  # bounded poll: up when it answers PING
                if self._proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self._proc.returncode}")
                with contextlib.suppress(redis.RedisError):
                    if probe.ping():
                        return
                time.sleep(0.02)
            raise RuntimeError("redis-server did not answer PING within 10 s")
        except BaseException:
            self.stop()
            raise
        finally:
            probe.close()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    require_redis()
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with running_redis() as server:
        yield server.url


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A server of this test's own, to stop and start."""
    with running_redis() as server:
        yield server


def namespace(token: str, base_url: str) -> str:
    return hashlib.sha256(f"{token}\n{base_url}".encode()).hexdigest()


@pytest.fixture
async def states(redis_url: str) -> AsyncIterator[list[la.RedisRateState]]:
    """Two workers' states bound to one fresh namespace."""
    ns = os.urandom(8).hex()
    made = [la.RedisRateState(redis_url), la.RedisRateState(redis_url)]
    for s in made:
        s.bind(ns)
    yield made
    for s in made:
        await s.aclose()


# -- keys, probe, options ------------------------------------------------------------------------


async def test_keys_hash_token_and_base_url_and_expire(redis_url: str) -> None:
    import redis.asyncio

    r = redis.asyncio.Redis.from_url(redis_url)
    seen: dict[str, int] = {}

    async def look() -> None:
        for key in await r.keys("t1:*"):
            seen[key.decode() if isinstance(key, bytes) else key] = await r.pttl(key)

    try:
        async with FakeLeat(token=TOKEN) as fake:
            state = la.RedisRateState(redis_url, key_prefix="t1")
            async with LeatClient(TOKEN, base_url=fake.url, rate_state=state, rate_limit=5) as c:
                await c.giftcard_transactions.list()
                spent = RateInfo(limit=5, remaining=0)
                _, sent = await state.admit(rate_limit=5, inflight=0)
                await state.on_answer(spent, sent_at=sent, others=0)
                await state.admit(rate_limit=5, inflight=0)  # spent, end unknown: a lone probe
                await look()
                await state.pause(0.5)
                await look()
    finally:
        await r.aclose()
    ns = namespace(TOKEN, c.base_url)
    assert state.namespace == ns
    parts = ("budget", "flight", "log", "pause", "probe")
    assert sorted(seen) == [f"t1:{{{ns}}}:{k}" for k in parts]
    assert not any(TOKEN in k for k in seen)
    assert all(0 < ttl <= 600_000 for ttl in seen.values()), seen


async def test_the_lone_probe_is_one_for_every_worker(states: list[la.RedisRateState]) -> None:
    a, b = states
    assert (await a.admit(rate_limit=None, inflight=0))[0] == 0.0
    _, sent = await a.admit(rate_limit=None, inflight=0)  # a's probe is lost: a may probe again
    assert (await b.admit(rate_limit=None, inflight=0))[0] == PROBE_POLL
    await a.on_answer(RateInfo(limit=10, remaining=8), sent_at=sent, others=0)
    assert (await b.admit(rate_limit=None, inflight=0))[0] == 0.0


async def test_answers_count_the_sends_made_after_them(states: list[la.RedisRateState]) -> None:
    a, b = states
    _, opening = await a.admit(rate_limit=None, inflight=0)
    await a.on_answer(RateInfo(limit=10, remaining=9), sent_at=opening, others=0)
    _, first = await a.admit(rate_limit=None, inflight=0)
    for _ in range(3):
        await b.admit(rate_limit=None, inflight=0)
    # the server counted a's request, not b's three sent after it: 5 left, not 8
    await a.on_answer(RateInfo(limit=10, remaining=8), sent_at=first, others=0)
    admitted = 0
    while (await b.admit(rate_limit=None, inflight=admitted))[0] == 0.0:
        admitted += 1
    assert admitted == 5


async def test_binding_and_options_are_checked(redis_url: str) -> None:
    with pytest.raises(ValueError, match="on_error"):
        la.RedisRateState(redis_url, on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        la.RedisRateState(redis_url, timeout=0)
    async with la.RedisRateState(redis_url) as state:
        with pytest.raises(RuntimeError, match="not bound"):
            await state.admit(rate_limit=None, inflight=0)
        state.bind("a" * 64)
        state.bind("a" * 64)
        with pytest.raises(ValueError, match="one token"):
            state.bind("b" * 64)
        assert "a" * 64 in repr(state) and TOKEN not in repr(state)


def test_import_needs_no_redis() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import leat_async\n"
        "assert issubclass(leat_async.RateStateUnavailableError, leat_async.LeatConnectionError)\n"
        "try:\n"
        "    leat_async.RedisRateState('redis://127.0.0.1:1/0')\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run(  # noqa: S603 - this interpreter, our code
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert "leat-async[redis]" in out.stdout


# -- many processes --------------------------------------------------------------------------------

WORKER = """
import asyncio, json, sys
import leat_async as la

async def main(url, redis_url, n):
    state = la.RedisRateState(redis_url)
    async with la.LeatClient(sys.argv[4], base_url=url, rate_limit=5, rate_state=state) as c:
        await asyncio.gather(*(c.giftcard_transactions.list() for _ in range(n)))
    print(json.dumps({"requests": c.stats.requests, "rate_limited": c.stats.rate_limited}))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


async def test_processes_share_one_budget(redis_url: str) -> None:
    async with FakeLeat(token=TOKEN, rate_limit=5, rate_window=1.0) as fake:
        args = [sys.executable, "-c", WORKER, fake.url, redis_url, "7", TOKEN]
        procs = [
            await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
            for _ in range(3)
        ]
        outs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 30)
    assert [p.returncode for p in procs] == [0, 0, 0]
    stats = [json.loads(out) for out, _ in outs]
    assert fake.status_counts[200] == 21
    assert fake.max_in_window(1.0) <= 5
    assert fake.status_counts[429] <= 1 and sum(s["rate_limited"] for s in stats) <= 1


# -- Redis failing ---------------------------------------------------------------------------------


def degraded(state: la.RedisRateState) -> bool:
    return state.degraded


def redis_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "leat_async" and r.levelno == logging.WARNING and "Redis" in r.getMessage()
    ]


async def test_redis_stopped_mid_run_falls_back_and_recovers(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="leat_async")
    state = la.RedisRateState(own_redis.url, retry_interval=0.3, timeout=0.3)
    async with (
        FakeLeat(token=TOKEN) as fake,
        LeatClient(
            TOKEN, base_url=fake.url, rate_state=state, rate_limit=20, retry=FAST_RETRY
        ) as client,
    ):
        lists = client.giftcard_transactions.list
        await asyncio.gather(*(lists() for _ in range(10)))
        own_redis.stop()
        await asyncio.gather(*(lists() for _ in range(30)))  # 1.5 s under the local cap
        assert degraded(state)
        assert len(redis_warnings(caplog)) == 1
        own_redis.start()
        await asyncio.sleep(0.35)  # past retry_interval: the next admission tries Redis again
        await asyncio.gather(*(lists() for _ in range(5)))
        assert not degraded(state) and "is back" in caplog.text
    assert fake.status_counts[200] == 45 and len(fake.requests) == 45
    assert fake.max_in_window(1.0) <= 20
    assert len(redis_warnings(caplog)) == 1


async def test_raise_mode_refuses_promptly_when_redis_is_down(own_redis: RedisServer) -> None:
    state = la.RedisRateState(own_redis.url, on_error="raise", timeout=0.3)
    async with (
        FakeLeat(token=TOKEN) as fake,
        LeatClient(TOKEN, base_url=fake.url, rate_state=state) as client,
    ):
        await client.giftcard_transactions.list()
        own_redis.stop()
        started = time.monotonic()
        with pytest.raises(la.RateStateUnavailableError, match="Redis"):
            await client.giftcard_transactions.list()
        assert time.monotonic() - started < 1.0
    assert len(fake.requests) == 1  # nothing was sent without a verdict


async def test_a_redis_that_never_answers_cannot_hang_a_send() -> None:
    require_redis()
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        async with FakeLeat(token=TOKEN) as fake:
            for on_error in ("raise", "fallback"):
                state = la.RedisRateState(url, on_error=on_error, timeout=0.2)
                async with LeatClient(TOKEN, base_url=fake.url, rate_state=state) as client:
                    started = time.monotonic()
                    try:
                        await client.giftcard_transactions.list()
                    except la.RateStateUnavailableError:
                        assert on_error == "raise"
                    else:
                        assert on_error == "fallback" and state.degraded
                    assert time.monotonic() - started < 1.0
        assert len(fake.requests) == 1


async def test_a_pause_outlives_redis_going_away(own_redis: RedisServer) -> None:
    state = la.RedisRateState(own_redis.url, retry_interval=0.01)
    state.bind(os.urandom(8).hex())
    try:
        await state.pause(3.0)  # a 429 asked every worker to wait 3 s
        own_redis.stop()
        wait, _ = await state.admit(rate_limit=None, inflight=0)
        assert wait > 2.5  # the fallback does not send into the server's pause
    finally:
        await state.aclose()


async def test_sends_made_during_an_outage_reach_redis_however_it_comes_back(
    own_redis: RedisServer,
) -> None:
    import redis.asyncio as aioredis

    state = la.RedisRateState(own_redis.url, retry_interval=1e-6)  # a restart can take < 10 ms
    ns = os.urandom(8).hex()
    state.bind(ns)
    probe = aioredis.Redis.from_url(own_redis.url)
    try:
        own_redis.stop()
        for _ in range(5):  # the cap's worth, sent in-process
            assert (await state.admit(rate_limit=5, inflight=0))[0] == 0
        own_redis.start()  # back, empty
        # the first call to reach Redis again is an answer, not an admission
        await state.on_answer(RateInfo(), sent_at=time.time(), others=0)
        wait, _ = await state.admit(rate_limit=5, inflight=1)
        assert not state.degraded  # the admission went to Redis, carrying the five sends
        assert wait > 0.5  # so no second burst this second
        assert await probe.pttl(f"leat:{{{ns}}}:log") > 0  # and that key still expires
    finally:
        await probe.aclose()
        await state.aclose()
