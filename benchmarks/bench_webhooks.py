"""Receiving webhooks: ``construct_event`` on a signed ~1 KB delivery, beside a hand-written
``hmac.compare_digest`` + ``json.loads`` baseline measured in the same run."""

from __future__ import annotations

import hashlib
import hmac
import json
import statistics
import timeit

from leat_async.webhooks import construct_event, sign

from ._common import Config, Goal, Section, fmt_ratio

SECRET = b"whsec-of-the-subscription-0123456789"
ROW = {
    "id": 4_812_771,
    "uuid": "3f0c8f0e-1d2b-4b6a-9c43-1b2c3d4e5f60",
    "amount_in_cents": -1250,
    "type": "STANDARD",
    "settled": False,
    "created_at": "2026-12-07T10:11:12+00:00",
    "card": {"id": 91_233, "uuid": "0b7a3e1c-5d4f-4a2b-8c9d-0e1f2a3b4c5d", "hash": "GC-7Q4K-9M2P"},
    "shop": {"id": 12, "uuid": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "name": "Zoë's, Rotterdam"},
    "settlements": [
        {"id": 55_001 + n, "amount_in_cents": -1250, "settled_at": "2026-12-08T00:00:00+00:00"}
        for n in range(6)
    ],
}


def _baseline(body: bytes, signature: str) -> object:
    expected = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise ValueError("bad signature")
    return json.loads(body)


def _per_second(fn: object, repeats: int) -> float:
    timer = timeit.Timer(fn)  # type: ignore[arg-type]
    number, _ = timer.autorange()
    runs = timer.repeat(repeat=repeats, number=number)
    return number / statistics.median(runs)


def run(config: Config) -> list[Section]:
    body = json.dumps(
        {"type": "giftcard_transaction_created", "data": {"giftcard_transaction": ROW}}
    )
    raw = body.encode()
    signature = sign(raw, SECRET)
    repeats = max(config.repeats, 3 if config.quick else 7)
    event = construct_event(raw, signature, SECRET)
    assert getattr(event, "transaction", None) is not None  # the row is read, not only checked
    ours = _per_second(lambda: construct_event(raw, signature, SECRET), repeats)
    base = _per_second(lambda: _baseline(raw, signature), repeats)
    ratio = ours / base
    rows = [
        ["ours: construct_event (verify, parse, read the transaction)", f"{ours:,.0f}", "1.00x"],
        ["baseline: hmac.compare_digest + json.loads", f"{base:,.0f}", fmt_ratio(base / ours)],
    ]
    notes = [
        f"A {len(raw):,}-byte signed delivery; events per second on one core, median of "
        f"{repeats} timeit runs. Ours / baseline: {fmt_ratio(ratio)}. The baseline only checks "
        "and parses; ours also reads the transaction into the client's model.",
    ]
    goals = [
        Goal("webhooks", "construct_event, events/s / 50,000", ours / 50_000, 1.0),
        Goal("webhooks", "construct_event / hmac + json.loads", ratio, 0.8),
    ]
    return [
        Section("webhooks: construct_event", ["variant", "events/s", "vs ours"], rows, notes, goals)
    ]
