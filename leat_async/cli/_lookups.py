"""``leat-async giftcards|transactions|webhooks ...``: look-ups and a guarded refund.

Each prints the API's object(s): with ``--json`` as JSON with the API's field names (one object
per line for a list), else a short aligned table. A look-up that finds nothing exits 1;
``reverse`` without ``--yes`` exits 2 and sends nothing. A card code or a secret given as ``-``
is read from standard input (``read_secrets``), so it never reaches the process list.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs

from .. import (
    GiftcardNotFoundError,
    LeatClient,
    OutcomeUnknownError,
    TransactionNotFoundError,
    WebhookSubscriptionNotFoundError,
)
from ..export import transaction_json
from ..signals import run_job
from ._common import (
    EXIT_OK,
    Commands,
    UsageError,
    _add_fetch_options,
    _client,
    _created_at,
    _Failed,
    _one_line,
    _positive_int,
    _say,
)

__all__ = ["EXIT_NOT_FOUND", "add_lookups"]

EXIT_NOT_FOUND = 1
_NOT_FOUND = (GiftcardNotFoundError, TransactionNotFoundError, WebhookSubscriptionNotFoundError)
_TX_COLUMNS = ("uuid", "amount_in_cents", "type", "settled", "card_uuid", "shop_name", "created_at")
_CARD_COLUMNS = ("uuid", "type", "amount_in_cents", "active", "expiration_date", "program")
_HOOK_COLUMNS = ("uuid", "name", "event_type", "url", "status")


def add_lookups(commands: Commands) -> list[argparse.ArgumentParser]:
    """The look-up commands' parsers (each a command with actions), added to ``commands``."""
    made: list[argparse.ArgumentParser] = []

    def action(group: Commands, name: str, help: str, run: Any) -> argparse.ArgumentParser:
        parser = group.add_parser(name, help=help, description=help)
        _add_fetch_options(parser)
        parser.add_argument(
            "--json", action="store_true", help="the API's object(s) as JSON, one per line"
        )
        parser.set_defaults(run=lambda args: _run(args, run))
        made.append(parser)
        return parser

    cards = commands.add_parser("giftcards", help="look up giftcards").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    find = action(cards, "find", "the giftcard with this code (the code a customer types)", _find)
    find.add_argument("code", metavar="CODE|-", help="the card's code; - reads it from stdin")
    action(cards, "get", "the giftcard with this uuid", _card).add_argument("uuid")

    txs = commands.add_parser("transactions", help="look up and reverse transactions")
    tx_actions = txs.add_subparsers(dest="action", required=True, metavar="ACTION")
    action(tx_actions, "get", "the transaction with this uuid", _transaction).add_argument("uuid")
    listing = action(tx_actions, "list", "transactions, with the export's filters", _listing)
    listing.add_argument("--limit", metavar="N", type=_positive_int, help="at most N rows")
    reverse = action(tx_actions, "reverse", "reverse (refund) the transaction", _reverse)
    reverse.add_argument("uuid")
    reverse.add_argument("--yes", action="store_true", help="really send the reversal")

    hooks = commands.add_parser("webhooks", help="webhook subscriptions").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    action(hooks, "list", "the webhook subscriptions", _hooks)
    create = action(hooks, "create", "subscribe a URL to an event type", _subscribe)
    create.add_argument("--name", required=True)
    create.add_argument("--event-type", required=True, metavar="T")
    create.add_argument("--url", required=True, metavar="U")
    create.add_argument(
        "--secret", metavar="-", help="- reads the signing secret from standard input (only)"
    )
    action(hooks, "delete", "remove a subscription", _unsubscribe).add_argument("uuid")
    return made


def _run(args: argparse.Namespace, run: Any) -> int:
    if getattr(args, "action", None) == "reverse" and not args.yes:
        raise UsageError("reverse sends a refund: add --yes to send it (nothing was sent)")

    async def go() -> int:
        async with _client(args) as (client, _):
            try:
                rows = await run(client, args)
            except _NOT_FOUND as exc:
                _say(f"not found: {_one_line(exc)}")
                return EXIT_NOT_FOUND
        _print(rows, args.json)
        return EXIT_OK

    return run_job(go())


# -- the actions: each gives (columns, documents) ---------------------------------------------

Rows = tuple[Sequence[str], list[dict[str, Any]]]


async def _find(client: LeatClient, args: argparse.Namespace) -> Rows:
    return _CARD_COLUMNS, [_plain(await client.giftcards.find_by_hash(args.code))]


async def _card(client: LeatClient, args: argparse.Namespace) -> Rows:
    return _CARD_COLUMNS, [_plain(await client.giftcards.get(args.uuid))]


async def _transaction(client: LeatClient, args: argparse.Namespace) -> Rows:
    return _TX_COLUMNS, [transaction_json(await client.giftcard_transactions.get(args.uuid))]


async def _listing(client: LeatClient, args: argparse.Namespace) -> Rows:
    pager = client.giftcard_transactions.list(
        created_at=_created_at(args),
        shop_uuid=args.shop_uuid,
        giftcard_program_uuid=args.giftcard_program_uuid,
        giftcard_hash=args.giftcard_hash,
    )
    docs: list[dict[str, Any]] = []
    async with pager.__aiter__() as walk:  # leaving early cancels its prefetches
        async for tx in walk:
            docs.append(transaction_json(tx))
            if args.limit is not None and len(docs) >= args.limit:
                break
    return _TX_COLUMNS, docs


async def _reverse(client: LeatClient, args: argparse.Namespace) -> Rows:
    try:
        reversal = await client.giftcard_transactions.reverse(args.uuid)
    except OutcomeUnknownError as exc:
        raise _Failed(
            f"the reversal of {args.uuid} was sent, but its answer was lost "
            f"({_one_line(exc)}): it may have been made. Check before trying again: "
            "leat-async transactions list --giftcard-hash - (the card's code on standard "
            "input) shows the card's transactions"
        ) from None
    return _TX_COLUMNS, [transaction_json(reversal)]


async def _hooks(client: LeatClient, args: argparse.Namespace) -> Rows:
    return _HOOK_COLUMNS, [_plain(s) for s in await client.webhook_subscriptions.list()]


async def _subscribe(client: LeatClient, args: argparse.Namespace) -> Rows:
    made = await client.webhook_subscriptions.create(
        name=args.name, event_type=args.event_type, url=args.url, secret=args.secret
    )
    return _HOOK_COLUMNS, [_plain(made)]


async def _unsubscribe(client: LeatClient, args: argparse.Namespace) -> Rows:
    await client.webhook_subscriptions.delete(args.uuid)
    return ("uuid", "deleted"), [{"uuid": args.uuid, "deleted": True}]


# -- printing ---------------------------------------------------------------------------------


def _plain(value: Any) -> dict[str, Any]:
    doc: dict[str, Any] = attrs.asdict(value, value_serializer=_serialise)
    return doc


def _serialise(_: Any, __: Any, value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _cell(doc: dict[str, Any], column: str) -> str:
    if column == "card_uuid":
        value = doc.get("card", {}).get("uuid")
    elif column == "shop_name":
        value = doc.get("shop", {}).get("name")
    elif column == "program":
        value = (doc.get("giftcard_program") or {}).get("name")
    else:
        value = doc.get(column)
    return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _print(rows: Rows, as_json: bool) -> None:
    columns, docs = rows
    if as_json:
        for doc in docs:
            print(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
        return
    table = [list(columns), *([_cell(d, c) for c in columns] for d in docs)]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    for row in _aligned(table, widths):
        print(row)


def _aligned(table: Iterable[list[str]], widths: list[int]) -> Iterable[str]:
    for row in table:
        yield "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
