"""Issues 4 and 13, the converter: the cost of reading one 100-row page, ours next to pydantic v2.

The client reads a page with ``transaction_page`` (msgspec from the bytes into the attrs models;
a core dependency on CPython). Without msgspec (PyPy) it parses the JSON and structures it with
the cattrs converter: both are timed.

The page is real fake-server output (uuids, shop names, ``created_at`` with ``+00:00``,
settlement objects), fetched once; then every variant structures the same bytes, timeit-style:
loops sized to take at least 0.2 s, repeated, the median per page kept. The garbage collector
stays on (timeit turns it off by default), as it is in a real walk.
"""

from __future__ import annotations

import gc
import json
import timeit
import urllib.request
from collections.abc import Callable
from typing import Any

import orjson

from leat_async import GiftcardTransaction, Page
from leat_async._api.convert import structure, transaction_page

from ._common import TOKEN, Config, FakeServer, Section, fmt_ratio, median
from ._pydantic import PydPage

__all__ = ["run"]

PATH = "/api/v3/oauth/clients/giftcard-transactions"
TxPage = Page[GiftcardTransaction]
SEED = 10_000
PAGE = 50  # mid-listing: settled rows with a settlement object, non-null uuids


def fetch_page(url: str, page: int = PAGE) -> bytes:
    request = urllib.request.Request(  # noqa: S310 - a loopback http URL we started
        f"{url}{PATH}?perPage=100&page={page}",
        headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - same
        body: bytes = resp.read()
    return body


def per_call_us(fn: Callable[[], Any], repeats: int) -> float:
    """Median microseconds per call of ``fn`` over ``repeats`` timeit runs."""
    timer = timeit.Timer(fn, setup=gc.enable)
    number, _ = timer.autorange()
    runs = timer.repeat(repeat=repeats, number=number)
    return median([r / number for r in runs]) * 1e6


def _check(raw: bytes) -> None:
    """Both sides must read the same page the same way, or the comparison means nothing."""
    ours = transaction_page(raw)
    if ours != structure(orjson.loads(raw), TxPage):
        raise RuntimeError("msgspec and the converter read the page differently")
    theirs = PydPage.model_validate_json(raw)
    if len(ours.data) != 100 or len(theirs.data) != 100:
        raise RuntimeError("the benchmark page does not hold 100 rows")
    for a, b in zip(ours.data, theirs.data, strict=True):
        if (a.id, a.uuid, a.amount_in_cents, a.created_at, a.shop.name, a.card.uuid) != (
            b.id,
            b.uuid,
            b.amount_in_cents,
            b.created_at,
            b.shop.name,
            b.card.uuid,
        ):
            raise RuntimeError(f"ours and pydantic disagree on row {a.id}")


def run(config: Config) -> list[Section]:
    with FakeServer(seed=SEED) as server:
        raw = fetch_page(server.url)
    _check(raw)
    doc = json.loads(raw)
    repeats = max(config.repeats, 3) if config.quick else max(config.repeats, 7)

    ours = "ours: transaction_page(raw), msgspec  [what the client runs]"
    ours_json = "ours, no msgspec: structure(json.loads(raw), Page)"
    ours_orjson = "ours, no msgspec: structure(orjson.loads(raw), Page)"
    pyd = "pydantic v2: Page.model_validate_json(raw)"
    variants: dict[str, Callable[[], Any]] = {
        ours: lambda: transaction_page(raw),
        ours_json: lambda: structure(json.loads(raw), TxPage),
        ours_orjson: lambda: structure(orjson.loads(raw), TxPage),
        pyd: lambda: PydPage.model_validate_json(raw),
        "  part: json.loads(raw)": lambda: json.loads(raw),
        "  part: orjson.loads(raw)": lambda: orjson.loads(raw),
        "  part: structure(doc, Page), doc already parsed": lambda: structure(doc, TxPage),
        "  part: pydantic Page.model_validate(doc), doc already parsed": lambda: (
            PydPage.model_validate(doc)
        ),
    }
    us = {name: per_call_us(fn, repeats) for name, fn in variants.items()}
    rows = [
        [name, f"{value:,.0f}", f"{value / 100:.2f}", fmt_ratio(us[pyd] / value)]
        for name, value in us.items()
    ]
    headers = ["structuring one 100-row page", "us/page", "us/row", "pydantic json / this"]
    notes = [
        f"{len(raw):,} bytes (page {PAGE} of a {SEED:,}-row fake listing); median of {repeats} "
        "timeit runs of >= 0.2 s each, gc on. Last column > 1 means faster than pydantic's "
        "model_validate_json on the same bytes.",
    ]
    return [Section("convert: one 100-row page", headers, rows, notes=notes)]
