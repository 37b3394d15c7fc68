"""OpenTelemetry traces and metrics (issue 25), with the real SDK: in-memory span exporter and
metric reader, over loopback against the fake. Nothing of ours is mocked."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import leat_async as la
from leat_async import LeatClient
from leat_async.testing import FakeLeat, Fault

from .conftest import FAST_RETRY, LONG_AGO, TOKEN, charge, seed_rows

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "/api/v3/oauth/clients"
DURATION = "http.client.request.duration"


class Otel:
    """An SDK tracer and meter provider that keep what they are given, for one test."""

    def __init__(self) -> None:
        self.spans_out = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans_out))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def spans(self) -> list[ReadableSpan]:
        return list(self.spans_out.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for m in scope.metrics
            if m.name == metric
            for point in m.data.data_points
        ]

    def total(self, metric: str) -> float:
        return float(sum(point.value for point in self.points(metric)))


@pytest.fixture
def otel() -> Iterator[Otel]:
    kept = Otel()
    yield kept
    kept.tracer_provider.shutdown()
    kept.meter_provider.shutdown()


@pytest.fixture
async def traced(fake: FakeLeat, otel: Otel) -> AsyncIterator[LeatClient]:
    async with LeatClient(
        TOKEN,
        base_url=fake.url,
        retry=FAST_RETRY,
        timeout=5.0,
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
    ) as client:
        yield client


def children(of: ReadableSpan, spans: list[ReadableSpan]) -> list[ReadableSpan]:
    assert of.context is not None
    return [s for s in spans if s.parent is not None and s.parent.span_id == of.context.span_id]


async def test_a_create_is_a_call_span_with_one_client_span_per_attempt(
    traced: LeatClient, fake: FakeLeat, otel: Otel, shop: Any
) -> None:
    card = fake.add_card(balance_in_cents=1000)
    tracer = otel.tracer_provider.get_tracer("checkout")
    with tracer.start_as_current_span("checkout") as checkout:
        await charge(traced, card, shop)  # runs in a task of its own (money)
    (call,) = otel.named("giftcard_transactions.create")
    assert call.kind is SpanKind.INTERNAL and call.status.status_code is StatusCode.UNSET
    assert call.parent is not None and call.parent.span_id == checkout.get_span_context().span_id
    (attempt,) = children(call, otel.spans())
    assert attempt.kind is SpanKind.CLIENT
    assert attempt.name == f"POST {PREFIX}/giftcard-transactions"
    attributes = dict(attempt.attributes or {})
    port = int(fake.url.rsplit(":", 1)[1])
    assert attributes == {
        "http.request.method": "POST",
        "server.address": "127.0.0.1",
        "server.port": port,
        "url.template": f"{PREFIX}/giftcard-transactions",
        "url.full": f"{fake.url}{PREFIX}/giftcard-transactions",
        "http.response.status_code": attributes["http.response.status_code"],
    }
    assert 200 <= int(str(attributes["http.response.status_code"])) < 300
    assert (call.attributes or {})["leat.attempts"] == 1
    (duration,) = otel.points(DURATION)
    assert duration.count == 1 and duration.attributes["url.template"].endswith("transactions")
    assert duration.explicit_bounds[:3] == (0.005, 0.01, 0.025)  # seconds, as the conventions


async def test_a_get_names_its_path_by_template_never_by_the_uuid(
    traced: LeatClient, fake: FakeLeat, otel: Otel, shop: Any
) -> None:
    card = fake.add_card(balance_in_cents=1000)
    tx = await charge(traced, card, shop)
    assert tx.uuid is not None
    await traced.giftcard_transactions.get(tx.uuid)
    (call,) = otel.named("giftcard_transactions.get")
    (attempt,) = children(call, otel.spans())
    template = f"{PREFIX}/giftcard-transactions/{{uuid}}"
    assert attempt.name == f"GET {template}"
    assert (attempt.attributes or {})["url.template"] == template
    assert all(tx.uuid not in str(p.attributes) for p in otel.points(DURATION))


async def test_a_retried_call_has_an_attempt_span_per_attempt_under_one_call_span(
    traced: LeatClient, fake: FakeLeat, otel: Otel
) -> None:
    fake.add_fault(Fault(method="GET", status=503, body="down", times=1))
    await traced.giftcard_transactions.list()
    (call,) = otel.named("giftcard_transactions.list")
    first, second = sorted(children(call, otel.spans()), key=lambda s: s.start_time or 0)
    assert first.status.status_code is StatusCode.ERROR
    assert (first.attributes or {})["error.type"] == "503"
    assert "http.request.resend_count" not in (first.attributes or {})
    assert (second.attributes or {})["http.request.resend_count"] == 1
    assert (second.attributes or {})["http.response.status_code"] == 200
    assert call.status.status_code is StatusCode.UNSET
    assert otel.total("leat.client.retries") == 1
    (retry,) = otel.points("leat.client.retries")
    assert retry.attributes["error.type"] == "503"
    statuses = sorted(p.attributes["http.response.status_code"] for p in otel.points(DURATION))
    assert statuses == [200, 503]


async def test_a_failed_call_has_error_status_and_its_error_type(
    traced: LeatClient, otel: Otel
) -> None:
    with pytest.raises(la.TransactionNotFoundError) as info:
        await traced.giftcard_transactions.get("no-such-transaction")
    (call,) = otel.named("giftcard_transactions.get")
    assert call.status.status_code is StatusCode.ERROR
    assert (call.attributes or {})["error.type"] == "TransactionNotFoundError"
    (event,) = call.events
    assert event.name == "exception"
    assert (event.attributes or {})["exception.type"] == "leat_async.TransactionNotFoundError"
    assert (event.attributes or {})["exception.message"] == str(info.value)
    (attempt,) = children(call, otel.spans())
    status = info.value.status
    assert (attempt.attributes or {})["error.type"] == str(status)
    assert attempt.status.status_code is StatusCode.ERROR


async def test_a_connection_that_cannot_be_opened_is_an_error_type_of_its_own(
    otel: Otel, unused_tcp_port: int
) -> None:
    async with LeatClient(
        TOKEN,
        base_url=f"http://127.0.0.1:{unused_tcp_port}",
        retry=la.RetryPolicy(max_attempts=1),
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
    ) as client:
        with pytest.raises(la.LeatConnectionError):
            await client.giftcard_transactions.list()
    (attempt,) = [s for s in otel.spans() if s.kind is SpanKind.CLIENT]
    assert (attempt.attributes or {})["error.type"] == "connect"
    assert "http.response.status_code" not in (attempt.attributes or {})
    (point,) = otel.points(DURATION)
    assert point.attributes["error.type"] == "connect"


async def test_calls_queued_behind_one_slot_keep_their_own_parents(
    fake: FakeLeat, otel: Otel
) -> None:
    tracer = otel.tracer_provider.get_tracer("web")

    async def request(name: str) -> None:
        with tracer.start_as_current_span(name):
            await client.giftcard_transactions.list()

    async with LeatClient(
        TOKEN,
        base_url=fake.url,
        max_concurrency=1,  # the second and third wait for the first one's slot
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
    ) as client:
        await asyncio.gather(*(request(f"request {i}") for i in range(3)))
    spans = otel.spans()
    for i in range(3):
        (parent,) = otel.named(f"request {i}")
        (call,) = children(parent, spans)
        (attempt,) = children(call, spans)
        assert attempt.kind is SpanKind.CLIENT


async def test_a_walks_pages_are_children_of_the_walks_span(
    traced: LeatClient, fake: FakeLeat, otel: Otel
) -> None:
    seed_rows(fake, 450)
    tracer = otel.tracer_provider.get_tracer("job")
    with tracer.start_as_current_span("nightly") as job:
        rows = [tx async for tx in traced.giftcard_transactions.list(per_page=100)]
    assert len(rows) == 450
    (walk,) = otel.named("giftcard_transactions.list")  # no span of its own per page
    assert walk.parent is not None and walk.parent.span_id == job.get_span_context().span_id
    attempts = [s for s in otel.spans() if s.kind is SpanKind.CLIENT]
    assert len(attempts) >= 5  # the prefetches ran in tasks of their own
    assert children(walk, otel.spans()) == attempts
    assert (walk.attributes or {})["leat.walk.requests"] == len(attempts)
    assert walk.status.status_code is StatusCode.UNSET


async def test_a_walk_that_fails_ends_its_span_failed(
    fake: FakeLeat, otel: Otel, brittle_traced: LeatClient
) -> None:
    seed_rows(fake, 250)
    pager = brittle_traced.giftcard_transactions.list(per_page=100, prefetch=0)
    fake.add_fault(Fault(method="GET", query={"page": "2"}, status=500, body="boom", times=None))
    with pytest.raises(la.LeatAPIError):
        async for _tx in pager:
            pass
    (walk,) = otel.named("giftcard_transactions.list")
    assert walk.status.status_code is StatusCode.ERROR
    failed = [s for s in children(walk, otel.spans()) if s.status.status_code is StatusCode.ERROR]
    assert [(s.attributes or {})["error.type"] for s in failed] == ["500"]


@pytest.fixture
async def brittle_traced(fake: FakeLeat, otel: Otel) -> AsyncIterator[LeatClient]:
    async with LeatClient(
        TOKEN,
        base_url=fake.url,
        retry=la.RetryPolicy(max_attempts=1),
        max_concurrency=1,
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
    ) as client:
        yield client


async def test_a_recovery_is_a_span_with_its_searches_under_it(
    fake: FakeLeat, shop: Any, otel: Otel
) -> None:
    card = fake.add_card(balance_in_cents=1000)
    fake.add_fault(Fault(method="POST", when="after", drop=True))  # charged, the answer lost
    async with LeatClient(
        TOKEN,
        base_url=fake.url,
        retry=FAST_RETRY,
        timeout=5.0,
        landing_horizon=0.0,
        tracer_provider=otel.tracer_provider,
    ) as client:
        with pytest.raises(la.OutcomeUnknownError) as lost:
            await charge(client, card, shop)
        found = await client.giftcard_transactions.recover(lost.value, margin=0.0)
    assert found is not None and found.uuid == fake.transactions[0].uuid
    (recover,) = otel.named("giftcard_transactions.recover")
    searches = [s for s in otel.spans() if s.parent and s.parent.span_id == recover.context.span_id]
    assert searches and recover.status.status_code is not StatusCode.ERROR
    assert {s.name for s in searches} == {"giftcard_transactions.list"}, searches


async def test_a_429_is_counted_with_the_time_waited_for_the_rate_limit(
    traced: LeatClient, fake: FakeLeat, otel: Otel
) -> None:
    # the pause is the server's: the next attempt waits for it before it is sent
    fake.add_fault(Fault(method="GET", status=429, headers={"Retry-After": "0.2"}, times=1))
    await traced.giftcard_transactions.list()
    assert otel.total("leat.client.rate_limited") == 1
    waited = otel.total("leat.client.rate_limit.wait")
    assert 0.1 < waited <= 0.25
    (call,) = otel.named("giftcard_transactions.list")
    first, second = sorted(children(call, otel.spans()), key=lambda s: s.start_time or 0)
    assert (first.attributes or {})["error.type"] == "429"
    assert (second.attributes or {})["leat.rate_limit.wait_s"] == pytest.approx(waited)
    assert "leat.rate_limit.wait_s" not in (first.attributes or {})


def _everything_said(otel: Otel) -> list[str]:
    """Every name, attribute value, event and status text of every span and metric point."""
    said: list[str] = []
    for span in otel.spans():
        said += [span.name, str(span.status.description)]
        said += [f"{k}={v!r}" for k, v in (span.attributes or {}).items()]
        for event in span.events:
            said += [event.name, *(f"{k}={v!r}" for k, v in (event.attributes or {}).items())]
    data = otel.reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    attributes = (point.attributes or {}).items()
                    said += [metric.name, *(f"{k}={v!r}" for k, v in attributes)]
    return said


async def test_no_span_event_or_metric_holds_the_token_or_a_card_code(
    traced: LeatClient, fake: FakeLeat, otel: Otel, shop: Any
) -> None:
    code = "CARD+CODE 4242/&x"
    card = fake.add_card(hash=code, balance_in_cents=1000)
    fake.add_transaction(card=card, shop=shop, amount_in_cents=100, created_at=LONG_AGO)
    fake.add_fault(Fault(method="GET", path="/giftcards/find-one-by", status=503, times=1))
    assert (await traced.giftcards.find_by_hash(code)).uuid == card.uuid
    with pytest.raises(la.GiftcardNotFoundError):
        await traced.giftcards.find_by_hash("NO-SUCH-CARD-777")
    rows = [tx async for tx in traced.giftcard_transactions.list(giftcard_hash=code)]
    assert len(rows) == 1
    fake.add_fault(Fault(method="GET", status=400, body={"message": f"bad {code}", "code": 1}))
    with pytest.raises(la.LeatAPIError):
        await traced.giftcard_transactions.list(giftcard_hash=code)
    said = _everything_said(otel)
    assert otel.named("giftcards.find_by_hash") and otel.named("giftcard_transactions.list")
    for secret in (TOKEN, code, "NO-SUCH-CARD-777", "CARD", "4242"):
        assert not [text for text in said if secret in text], secret
    fulls = [(s.attributes or {}).get("url.full") for s in otel.spans()]
    assert f"{PREFIX}/giftcards/find-one-by?hash=REDACTED" in str(fulls)
    assert "giftcard_hash=REDACTED" in str(fulls)
    assert any("REDACTED" in text and "bad" in text for text in said)  # the answer's message


WITHOUT_OTEL = """
import asyncio, sys
sys.modules["opentelemetry"] = None  # "import opentelemetry" fails: not installed
from leat_async import LeatClient
from leat_async.testing import FakeLeat

async def main():
    async with FakeLeat(token="t") as fake, LeatClient("t", base_url=fake.url) as client:
        assert client._dispatcher.telemetry is None
        await client.giftcard_transactions.list()
        return [r.path for r in fake.requests]

print(asyncio.run(main()))
assert not [m for m in sys.modules if m.startswith("opentelemetry.")], "opentelemetry loaded"
"""

GLOBAL_PROVIDERS = """
import asyncio
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from leat_async import LeatClient
from leat_async.testing import FakeLeat

async def main():
    async with FakeLeat(token="t") as fake, LeatClient("t", base_url=fake.url) as client:
        await client.giftcard_transactions.list()  # no SDK yet: the no-op providers
        exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)  # set after the client was made: still used
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        await client.giftcard_transactions.list()
        print(sorted(s.name for s in exporter.get_finished_spans()))
        print(reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics[0].name)

asyncio.run(main())
"""


def _python(code: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-W", "error", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_without_opentelemetry_nothing_changes_and_nothing_is_imported() -> None:
    assert _python(WITHOUT_OTEL).strip() == "['/giftcard-transactions']"


def test_without_providers_given_the_global_ones_are_used_even_when_set_later() -> None:
    lines = _python(GLOBAL_PROVIDERS).splitlines()
    template = f"GET {PREFIX}/giftcard-transactions"
    assert lines == [str(sorted([template, "giftcard_transactions.list"])), DURATION]
