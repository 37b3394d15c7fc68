"""Issue 25, telemetry: the walk's client CPU with OpenTelemetry, next to the path without it.

One walk over every 100-row page of the same fake listing (``async for tx in list(per_page=100)``,
``max_concurrency=1``: the walk whose CPU per item shows any cost added per request), in three
kinds of process, each a fresh interpreter so that nothing of one leaks into another:

- today's path: ``opentelemetry`` cannot be imported (as where the extra is not installed): the
  client makes no telemetry at all;
- the API, no SDK: ``opentelemetry-api`` installed, no provider configured (the global no-op
  providers, what an application that installs the extra but never sets up the SDK gets);
- the SDK: a ``TracerProvider`` with a ``SimpleSpanProcessor`` into an ``InMemorySpanExporter``
  and a ``MeterProvider`` with an ``InMemoryMetricReader``, set as the global providers (the
  export runs in the walk's own thread: its whole cost is in the figure);
- the same with a ``BatchSpanProcessor`` (what applications run): spans are queued and exported
  by the SDK's worker thread, flushed before each walk's CPU is read (process CPU counts every
  thread), shown for information.

Each process walks once to warm up, then ``WALKS`` times, timing each walk's process CPU; the
processes of the three kinds are started in turn, ``repeats`` rounds, so drift on a noisy
machine hits every kind alike. Goals (issue 25): without the SDK within 3 % of today's client
CPU, with it within 15 %.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ._common import TOKEN, Config, FakeServer, Goal, Section, child_options, fmt_int, median

__all__ = ["run"]

ROOT = Path(__file__).resolve().parent.parent
WALKS = 5
TODAY = "today's path (opentelemetry not importable)"
NO_SDK = "opentelemetry-api, no SDK configured (no-op)"
SDK = "SDK: in-memory span exporter + metric reader"
BATCH = "SDK, BatchSpanProcessor into the in-memory exporter"
VARIANTS = {TODAY: "absent", NO_SDK: "api", SDK: "sdk", BATCH: "batch"}

CHILD = """
import asyncio, json, sys, time
kind, url, token, walks = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if kind == "absent":
    sys.modules["opentelemetry"] = None  # "import opentelemetry" fails, as when not installed
spans = None
if kind in ("sdk", "batch"):
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    processor = SimpleSpanProcessor(spans) if kind == "sdk" else BatchSpanProcessor(spans)
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
from leat_async import LeatClient

async def walk():
    n = 0
    async with LeatClient(token, base_url=url, max_concurrency=1) as client:
        async for _tx in client.giftcard_transactions.list(per_page=100):
            n += 1
    return n

async def main():
    await walk()  # warm-up: connections, caches, the first span and metric
    runs = []
    for _ in range(walks):
        if spans is not None:
            spans.clear()
        cpu, wall = time.process_time(), time.perf_counter()
        n = await walk()
        if kind == "batch":
            provider.force_flush()  # the worker thread's export of this walk's spans counts too
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        made = len(spans.get_finished_spans()) if spans is not None else 0
        runs.append({"cpu": cpu, "wall": wall, "items": n, "spans": made})
    if spans is not None:
        reader.get_metrics_data()  # what collecting the metrics costs, once per process
    loaded = any(m.startswith("opentelemetry.") for m in sys.modules)
    print(json.dumps({"runs": runs, "otel_loaded": loaded}))

asyncio.run(main())
"""


def _child(kind: str, url: str, token: str) -> dict[str, object]:
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", CHILD, kind, url, token, str(WALKS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        **child_options(),
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {kind} walk failed: {done.stderr[-2000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(config: Config) -> list[Section]:
    seed = 5_000 if config.quick else 20_000
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
    loaded: dict[str, bool] = {}
    with FakeServer(seed=seed) as server:
        for _ in range(config.repeats):  # rounds of one process of each kind, in turn
            for name, kind in VARIANTS.items():
                result = _child(kind, server.url, TOKEN)
                runs[name] += result["runs"]  # type: ignore[arg-type]
                loaded[name] = bool(result["otel_loaded"])
    items = int(runs[TODAY][0]["items"])
    if any(r["items"] != items for rs in runs.values() for r in rs):
        raise RuntimeError("the walks did not all hand out the same rows")
    if loaded[TODAY] or not loaded[SDK] or not loaded[BATCH]:
        raise RuntimeError("today's path loaded opentelemetry, or the SDK's did not")
    cpu = {name: median([r["cpu"] for r in rs]) for name, rs in runs.items()}
    wall = {name: median([r["wall"] for r in rs]) for name, rs in runs.items()}
    spans = {name: median([r["spans"] for r in rs]) for name, rs in runs.items()}
    rows = []
    for name in VARIANTS:
        extra = 100 * (cpu[name] / cpu[TODAY] - 1)
        rows.append(
            [
                name,
                fmt_int(items / cpu[name]),
                f"{1e6 * cpu[name] / items:.2f}",
                f"{cpu[name] * 1000:,.0f}",
                f"{wall[name] * 1000:,.0f}",
                "-" if name == TODAY else f"{extra:+.1f} %",
                f"{spans[name]:,.0f}",
            ]
        )
    headers = [
        "variant",
        "items/client-CPU-s",
        "client CPU us/item",
        "CPU ms/walk",
        "wall ms/walk",
        "CPU vs today",
        "spans/walk",
    ]
    pages = -(-items // 100)
    notes = [
        f"{items:,} items, {pages} pages of 100, max_concurrency=1; medians of "
        f"{len(runs[TODAY])} walks per variant ({config.repeats} processes of each kind, "
        f"{WALKS} timed walks each after a warm-up walk), processes started in turn. "
        "Client CPU is the walking process's alone (the fake runs in its own)."
    ]
    goals = [
        Goal("otel", "walk CPU, no SDK vs today's path", _extra(cpu, NO_SDK), 3, "%", True),
        Goal("otel", "walk CPU, SDK + in-memory vs today's", _extra(cpu, SDK), 15, "%", True),
    ]
    walk = Section("telemetry: walk client CPU, latency 0", headers, rows, notes, goals)
    return [walk, _per_attempt(1e6 * cpu[TODAY] / pages)]


def _per_attempt(page_us: float, attempts: int = 20_000) -> Section:
    """What the telemetry of one page's request costs by itself (no sockets, no parsing): the
    same calls the dispatcher makes per attempt, timed in a loop, with the global no-op
    providers (none is set in this process) and with an SDK tracer and meter given."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from yarl import URL

    from leat_async._api.answers import Answer
    from leat_async._api.wire import Request
    from leat_async._http.outcomes import Outcome
    from leat_async._http.telemetry import Telemetry

    base = URL("http://127.0.0.1:8080")
    query = (("perPage", "100"), ("page", "3"))
    request = Request("GET", "/giftcard-transactions", query=query, operation="list")
    url, outcome = request.url(base), Outcome(answer=Answer(200))
    exporter = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(exporter))
    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    providers: dict[str, dict[str, Any]] = {
        NO_SDK: {"tracer_provider": None, "meter_provider": None},
        SDK: {"tracer_provider": tracing, "meter_provider": meters},
    }
    rows = []
    for name, given in providers.items():
        telemetry = Telemetry(base_url=base, version="bench", **given)
        walk = telemetry.walk("giftcard-transactions")
        runs = []
        for _ in range(5):
            exporter.clear()
            started = time.process_time()
            for _ in range(attempts):
                trace = telemetry.call(request, walk)
                attempt = telemetry.attempt(trace, request, 1, url, 0.0)
                telemetry.attempted(attempt, outcome, 0.01)
            runs.append((time.process_time() - started) / attempts)
        cost = 1e6 * median(runs)
        rows.append([name, f"{cost:.1f}", f"{100 * cost / page_us:.1f} %"])
    tracing.shutdown()
    meters.shutdown()
    notes = [
        f"{attempts:,} attempts per run, median of 5 runs; one page of today's walk costs "
        f"{page_us:,.0f} us of client CPU (the table above), the share's denominator. The SDK "
        "figure is its own floor: a bare start_span/end plus a histogram record in its place "
        "cost the same in the walk (one-off check, see the README)."
    ]
    headers = ["providers", "us per attempt", "share of a page's client CPU"]
    return Section("telemetry per attempt, in isolation", headers, rows, notes)


def _extra(cpu: dict[str, float], name: str) -> float:
    """Percent more client CPU than today's path (negative: less)."""
    return 100 * (cpu[name] / cpu[TODAY] - 1)
