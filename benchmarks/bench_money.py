"""Issues 9 and 19, the money soak: checkouts on a few cards under every fault, then every loss
settled.

1,000 checkouts (``--quick``: 300) charge 50 cards (each starts with the same balance) from 16
concurrent "web handlers", against the bundled fake server in this process. Before each charge
the script arms a random fault for the next POST: none, a 429 (resent), an answer lost after the
charge landed, a request lost before it reached the handler, a slow answer (longer than the
client's timeout), a handler that runs long after the client gave up, a gateway's 502 page, a
500 with Leat's code 1000 after the charge landed, or a 200 whose body cannot be read. Some
handlers are cancelled mid-charge (``asyncio.timeout``), as a web framework does when a
customer goes away. Amounts come from three values only, so identical look-alike charges on a
card are common: the hard case for ``recover()``. The fake does not echo ``custom_attributes``
(the documented API does not), so nothing but time and status tells look-alikes apart.

Each charge carries its order number in ``custom_attributes``: the fake keeps it, which is the
ground truth the app never sees. The app keeps what it knows: each transaction it was answered,
each one ``recover()`` found for an ``OutcomeUnknownError`` (recovered concurrently, after the
checkouts), each orphan's outcome from ``on_event``, and for look-alikes ``recover()`` could not
tell apart (``AmbiguousOutcomeError``), the group's transactions from ``recover_group()``. At
the end:

- every card's balance at the fake equals its start plus the sum of the transactions the app
  knows on that card;
- no transaction is known twice (claimed by two requests), and no order was charged twice;
- no order was given another order's transaction;
- every lost request answered with a 2xx is known to have landed (its transaction, or a group
  that landed for certain);
- every transaction at the fake is known to the app (no charge unaccounted for).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from typing import Any

import attrs

from leat_async import (
    AmbiguousOutcomeError,
    Event,
    GiftcardTransaction,
    LeatAPIError,
    LeatClient,
    LeatConnectionError,
    OutcomeUnknownError,
    RetryPolicy,
)
from leat_async.testing import FakeLeat, Fault

from ._common import Config, Goal, Section

__all__ = ["run"]

CARDS = 50
START = 10_000_000
AMOUNTS = (-500, -1000, -1500)
HANDLERS = 16
TIMEOUT = 0.4  # the client's per-attempt timeout
HORIZON = 2.0  # landing_horizon: the late handler below lands within it
FAULTS: dict[str, Fault | None] = {
    "none": None,
    "429": Fault(method="POST", status=429, headers={"Retry-After": "0"}, body={"message": "x"}),
    "lost after landing": Fault(method="POST", drop=True, when="after"),
    "lost before the handler": Fault(method="POST", drop=True, when="before"),
    "slow answer": Fault(method="POST", when="after", delay=0.6),
    "late handler": Fault(method="POST", delay=1.2),
    "502 page": Fault(method="POST", status=502, body="<html>bad gateway</html>", when="after"),
    "500 after landing": Fault(
        method="POST", status=500, body={"message": "Internal error.", "code": 1000}, when="after"
    ),
    "unreadable 200": Fault(method="POST", status=200, body="<html>ok</html>", when="after"),
}
WEIGHTS = (34, 8, 8, 8, 8, 8, 8, 9, 9)


class App:
    """What the web app knows: transactions by uuid, and the losses still to settle."""

    def __init__(self) -> None:
        self.orders: dict[str, str] = {}  # order -> the transaction the app holds for it
        self.groups: dict[frozenset[str], list[str]] = {}  # look-alikes -> their transactions
        self.known: Counter[str] = Counter()
        self.amounts: dict[str, tuple[str, int]] = {}
        self.lost: list[OutcomeUnknownError] = []
        self.outcomes: Counter[str] = Counter()
        self.orphans = 0
        self.placed = 0
        self.unresolved: list[OutcomeUnknownError] = []  # a 2xx proved it landed; not known
        self.orphan_reported = asyncio.Event()

    def learn(self, tx: GiftcardTransaction, how: str, order: str | None = None) -> None:
        assert tx.uuid is not None
        assert tx.card.uuid is not None
        if order is not None:
            self.orders[order] = tx.uuid
        self.known[tx.uuid] += 1
        self.amounts[tx.uuid] = (tx.card.uuid, tx.amount_in_cents)
        self.outcomes[how] += 1

    def on_event(self, event: Event) -> None:
        if event.kind != "orphaned":
            return
        self.orphans += 1
        self.orphan_reported.set()
        if isinstance(event.outcome, GiftcardTransaction):
            self.learn(event.outcome, "orphan landed", _order(event.outcome))
        elif isinstance(event.outcome, OutcomeUnknownError):
            self.lost.append(event.outcome)
            self.outcomes["orphan unknown"] += 1
        else:
            self.outcomes["orphan refused"] += 1


async def _checkout(
    client: LeatClient, app: App, fake: FakeLeat, rng: random.Random, cards: list[Any], shop: Any
) -> None:
    kind = rng.choices(list(FAULTS), WEIGHTS)[0]
    fault = FAULTS[kind]
    if fault is not None:
        fake.add_fault(fault)
    card = rng.choice(cards)
    cancel_after = rng.uniform(0.05, 0.5) if rng.random() < 0.1 else None
    app.placed += 1
    order = f"order-{app.placed}"
    try:
        async with asyncio.timeout(cancel_after):
            tx = await client.giftcard_transactions.create(
                giftcard_uuid=card.uuid,
                amount_in_cents=rng.choice(AMOUNTS),
                shop_uuid=shop.uuid,
                custom_attributes={"order": order},
            )
    except TimeoutError:
        app.outcomes["cancelled by the handler"] += 1
    except OutcomeUnknownError as lost:
        app.lost.append(lost)
        app.outcomes["unknown"] += 1
    except (LeatAPIError, LeatConnectionError) as refused:
        app.outcomes[f"refused: {type(refused).__name__}"] += 1
    else:
        app.learn(tx, "answered", order)


def _order(made: GiftcardTransaction | OutcomeUnknownError) -> str | None:
    """The order a request was for: what it sent (the app's own record of its requests)."""
    if isinstance(made, OutcomeUnknownError):
        return str(made.sent.get("custom_attributes", {}).get("order"))
    return None  # an orphan's transaction: its order is learnt from the request, not the row


async def _settle(client: LeatClient, app: App) -> None:
    """Every lost request recovered; look-alikes that cannot be told apart, as groups."""
    gtx = client.giftcard_transactions
    found = await asyncio.gather(
        *(gtx.recover(e, margin=0.5) for e in app.lost), return_exceptions=True
    )
    groups: dict[frozenset[str], AmbiguousOutcomeError] = {}
    for lost, tx in zip(app.lost, found, strict=True):
        if isinstance(tx, AmbiguousOutcomeError):
            app.outcomes["recovered: look-alikes, as a group"] += 1
            groups.setdefault(frozenset(r.ticket for r in tx.requests), tx)
        elif isinstance(tx, BaseException):
            app.outcomes[f"recovered: {type(tx).__name__}"] += 1
            app.unresolved.append(lost)
        elif tx is None:
            app.outcomes["recovered: none made"] += 1
            if lost.status is not None and 200 <= lost.status < 300:
                app.unresolved.append(lost)  # a 2xx said it landed: "none" would be a lie
        else:
            app.learn(tx, "recovered", _order(lost))
    resolved: set[int] = set()
    for tickets, ambiguous in groups.items():
        outcome = await gtx.recover_group(ambiguous.requests, margin=0.5)
        if id(outcome) in resolved:
            continue  # seen from another member first: one group, learnt once
        resolved.add(id(outcome))
        for ticket, tx in outcome.known.items():
            if tx is not None:
                request = next(r for r in outcome.requests if r.ticket == ticket)
                app.learn(tx, "recovered", _order(request))
        for tx in outcome.transactions:
            if tx not in outcome.known.values():
                app.learn(tx, "landed in a look-alike group")
        app.groups[tickets] = [tx.uuid or "" for tx in outcome.transactions]
        for request in outcome.requests:
            if request.ticket in outcome.known:
                continue
            if request.status is not None and 200 <= request.status < 300:
                app.outcomes["answered 2xx: landed for certain, in a look-alike group"] += 1


async def _soak(n: int, seed: int, *, echo: bool) -> tuple[App, FakeLeat, float, float]:
    rng = random.Random(seed)
    app = App()
    async with FakeLeat(token="soak-token", echo_custom_attributes=echo) as fake:
        shop = fake.add_shop(name="Soak shop")
        cards = [fake.add_card(balance_in_cents=START) for _ in range(CARDS)]
        # A charge may fault more than once only through retries of a 429, so after the
        # checkouts plain requests follow; any fault left over is cleared before settling.
        started = time.perf_counter()
        async with LeatClient(
            "soak-token",
            base_url=fake.url,
            timeout=TIMEOUT,
            landing_horizon=HORIZON,
            retry=RetryPolicy(backoff_base=0.01, max_pause=1.0),
            max_concurrency=HANDLERS,
            on_event=app.on_event,
        ) as client:
            await client.giftcard_transactions.list()  # the first answer paces the rest
            queue = list(range(n))

            async def handler() -> None:
                while queue:
                    queue.pop()
                    await _checkout(client, app, fake, rng, cards, shop)

            await asyncio.gather(*(handler() for _ in range(HANDLERS)))
            while app.orphans < client.stats.orphaned:  # every orphan reports before settling
                app.orphan_reported.clear()
                await app.orphan_reported.wait()
            fake.clear_faults()
            checkouts = time.perf_counter() - started
            await _settle(client, app)
        settling = time.perf_counter() - started - checkouts
    return app, fake, checkouts, settling


def run(config: Config) -> list[Section]:
    n = 300 if config.quick else 1000
    quiet = logging.getLogger("leat_async")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # orphans and look-alikes are the point here, not news
    try:
        plain = _judge(*asyncio.run(_soak(n, seed=9, echo=False)), n=n, goals=True)
        echoed = _judge(*asyncio.run(_soak(n, seed=9, echo=True)), n=n, goals=False)
    finally:
        quiet.setLevel(level)
    rows: list[list[str]] = []
    for what in list(dict.fromkeys([*plain.counts, *echoed.counts])):
        rows.append([what, plain.counts.get(what, "0"), echoed.counts.get(what, "0")])
    notes = [
        *plain.notes,
        "The second column: the same soak against a fake that echoes "
        "custom_attributes (FakeLeat(echo_custom_attributes=True)): each order's own "
        "attributes tell look-alikes apart.",
    ]
    return [
        Section(
            "money soak (issues 9 and 19)",
            ["outcome", "count", "count, server echoes attributes"],
            rows,
            notes,
            plain.goals + echoed.goals,
        )
    ]


@attrs.frozen
class _Judged:
    counts: dict[str, str]
    notes: list[str]
    goals: list[Goal]


def _judge(
    app: App, fake: FakeLeat, checkouts: float, settling: float, *, n: int, goals: bool
) -> _Judged:
    twice = sum(1 for count in app.known.values() if count > 1)
    landed = {tx.uuid for tx in fake.transactions}
    truth = {tx.uuid: (tx.custom_attributes or {}).get("order") for tx in fake.transactions}
    wrong = sum(1 for order, uuid in app.orders.items() if truth.get(uuid) != order)
    charged = Counter(order for order in truth.values() if order is not None)
    doubled = sum(1 for count in charged.values() if count > 1)
    unaccounted = len(landed - set(app.known))
    balanced = 0
    for card in fake.cards:
        known = sum(a for u, (c, a) in app.amounts.items() if c == card.uuid)
        balanced += card.balance_in_cents == START + known
    counts = {what: str(count) for what, count in sorted(app.outcomes.items())}
    counts.update(
        {
            "transactions at the fake": str(len(landed)),
            "known to the app": str(len(app.known)),
            "known twice (claimed by two requests)": str(twice),
            "orders charged twice (at the fake)": str(doubled),
            "orders given another order's transaction": str(wrong),
            "lost after a 2xx, not known to have landed": str(len(app.unresolved)),
            "at the fake, unknown to the app": str(unaccounted),
            "cards whose balance matches the app": f"{balanced} of {len(fake.cards)}",
        }
    )
    notes = [
        f"{n} checkouts by {HANDLERS} handlers on {CARDS} cards in {checkouts:.1f} s; "
        f"{len(app.lost)} unknown outcomes recovered concurrently in {settling:.1f} s "
        f"(landing_horizon {HORIZON} s). Faults drawn per charge: "
        + ", ".join(f"{k} {w} %" for k, w in zip(FAULTS, WEIGHTS, strict=True))
        + "; 10 % of handlers cancelled after 0.05-0.5 s."
    ]
    accounted = 100.0 * (len(landed) - unaccounted) / max(1, len(landed))
    exact = 100.0 * (len(app.known) - twice - doubled) / max(1, len(app.known))
    right = 100.0 * (len(app.orders) - wrong) / max(1, len(app.orders))
    answered_2xx = sum(1 for e in app.lost if e.status is not None and 200 <= e.status < 300)
    proven = 100.0 * (answered_2xx - len(app.unresolved)) / max(1, answered_2xx)
    judged = [
        Goal("money", "cards balanced", 100.0 * balanced / len(fake.cards), 100, "%"),
        Goal("money", "charges accounted for", accounted, 100, "%"),
        Goal("money", "transactions claimed once", exact, 100, "%"),
        Goal("money", "orders given the right transaction", right, 100, "%"),
        Goal("money", "2xx-landed known to have landed", proven, 100, "%"),
    ]
    return _Judged(counts, notes, judged if goals else [])
