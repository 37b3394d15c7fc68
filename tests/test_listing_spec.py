"""One pager for every listing: a second, minimal listing shaped like Leat's giftcard listing.

``GET /cards?page=P&limit=L`` answers ``meta: {page, per_page, last_page, total}`` (no
``limit``, no ``viewing_from``/``viewing_to``), has no ``created_at`` filter and no sort, and
its items are told apart by ``uuid``. A small aiohttp server plays it over a loopback socket.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
from aiohttp import web

from leat_async import LeatClient, Page, PageMeta, Position
from leat_async._api.params import CreatedAt
from leat_async._api.wire import API_PREFIX, Request, query_pairs
from leat_async._paging.listing import Listing
from leat_async._paging.pager import Pager

from .conftest import TOKEN


@attrs.frozen
class Card:
    uuid: str
    hash: str


class CardServer:
    def __init__(self, n: int) -> None:
        self.cards = [{"uuid": f"card-{i:03}", "hash": f"H{i}"} for i in range(n)]
        self.queries: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.queries.append(query)
        page, limit = int(query["page"]), int(query.get("limit", "30"))
        rows = self.cards[(page - 1) * limit : page * limit]
        total = len(self.cards)
        meta = {"page": page, "per_page": limit, "last_page": max(1, -(-total // limit))}
        return web.json_response({"data": rows, "meta": {**meta, "total": total}})


@pytest.fixture
async def cards() -> AsyncIterator[tuple[CardServer, str]]:
    server = CardServer(23)
    app = web.Application()
    app.router.add_get(API_PREFIX + "/cards", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield server, f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def card_page(body: bytes) -> Page[Card]:
    doc = json.loads(body)
    meta = doc["meta"]
    return Page(
        data=[Card(uuid=c["uuid"], hash=c["hash"]) for c in doc["data"]],
        meta=PageMeta(
            page=meta["page"],
            limit=meta["per_page"],
            viewing_from=None,
            viewing_to=None,
            last_page=meta["last_page"],
            total=meta["total"],
        ),
    )


def card_pager(client: LeatClient, *, per_page: int = 10, resume: Position | None = None) -> Any:
    base = query_pairs([("limit", per_page)])

    def request(number: int, bound: CreatedAt | None) -> Request:
        assert bound is None  # never asked for: this listing has no created_at
        return Request("GET", "/cards", query=(*base, ("page", str(number))), operation="list")

    listing = Listing(
        name="cards",
        parameters=base,
        per_page=per_page,
        request=request,
        parse=card_page,
        key=lambda card: card.uuid,
    )
    return Pager(listing, dispatcher=client._dispatcher, prefetch=2, resume=resume)


async def test_the_pager_walks_a_listing_without_snapshots(
    cards: tuple[CardServer, str],
) -> None:
    server, url = cards
    async with LeatClient(TOKEN, base_url=url) as client:
        pager = card_pager(client)
        first = await pager
        walked = [card.uuid async for card in pager]
        pages = [len(page.data) async for page in pager.pages()]
    assert isinstance(first.data[0], Card) and first.meta.per_page == 10
    assert walked == [c["uuid"] for c in server.cards]
    assert pages == [10, 10, 3]
    # a page per request, even on the client's first walk, and never a created_at bound
    assert [q["page"] for q in server.queries] == ["1", "1", "2", "3", "1", "2", "3"]
    assert all(set(q) == {"page", "limit"} for q in server.queries)


async def test_a_card_walk_resumes_exactly_and_shifts_hand_nothing_out_twice(
    cards: tuple[CardServer, str],
) -> None:
    server, url = cards
    async with LeatClient(TOKEN, base_url=url) as client:
        pager = card_pager(client)
        first: list[str] = []
        async for card in pager:
            first.append(card.uuid)
            if len(first) == 12:
                break
        position = Position.from_dict(json.loads(json.dumps(pager.position.to_dict())))
        assert position.listing == "cards" and "card-011" in position.seen
        server.cards.insert(0, {"uuid": "card-new", "hash": "HN"})  # everything moves one on
        rest = [card.uuid async for card in card_pager(client, resume=position)]
        with pytest.raises(ValueError, match=r"other filters.*limit"):
            card_pager(client, per_page=20, resume=position)
        with pytest.raises(ValueError, match="'cards', not of 'giftcard-transactions'"):
            client.giftcard_transactions.list(per_page=10, resume=position)
    assert first + rest == [f"card-{i:03}" for i in range(23)]
