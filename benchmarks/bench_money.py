"""Issue 9, the money soak: checkouts on a few cards under every fault, then every loss settled.

1,000 checkouts (``--quick``: 300) charge 50 cards (each starts with the same balance) from 16
concurrent "web handlers", against the bundled fake server in this process. Before each charge
the script arms a random fault for the next POST: none, a 429 (resent), an answer lost after the
charge landed, a request lost before it reached the handler, a slow answer (longer than the
client's timeout), a handler that runs long after the client gave up, or a gateway's 502 page.
Some handlers are cancelled mid-charge (``asyncio.timeout``), as a web framework does when a
customer goes away. Amounts come from three values only, so identical look-alike charges on a
card are common: the hard case for ``recover()``.

The app keeps what it knows: each transaction it was answered, each one ``recover()`` found for
an ``OutcomeUnknownError`` (recovered concurrently, after the checkouts), and each orphan's
outcome from ``on_event``. At the end:

- every card's balance at the fake equals its start plus the sum of the transactions the app
  knows on that card;
- no transaction is known twice (claimed by two requests);
- every transaction at the fake is known to the app (no charge unaccounted for).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from typing import Any

from leat_async import (
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
}
WEIGHTS = (40, 10, 10, 10, 10, 10, 10)


class App:
    """What the web app knows: transactions by uuid, and the losses still to settle."""

    def __init__(self) -> None:
        self.known: Counter[str] = Counter()
        self.amounts: dict[str, tuple[str, int]] = {}
        self.lost: list[OutcomeUnknownError] = []
        self.outcomes: Counter[str] = Counter()
        self.orphans = 0
        self.orphan_reported = asyncio.Event()

    def learn(self, tx: GiftcardTransaction, how: str) -> None:
        assert tx.uuid is not None
        assert tx.card.uuid is not None
        self.known[tx.uuid] += 1
        self.amounts[tx.uuid] = (tx.card.uuid, tx.amount_in_cents)
        self.outcomes[how] += 1

    def on_event(self, event: Event) -> None:
        if event.kind != "orphaned":
            return
        self.orphans += 1
        self.orphan_reported.set()
        if isinstance(event.outcome, GiftcardTransaction):
            self.learn(event.outcome, "orphan landed")
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
    try:
        async with asyncio.timeout(cancel_after):
            tx = await client.giftcard_transactions.create(
                giftcard_uuid=card.uuid, amount_in_cents=rng.choice(AMOUNTS), shop_uuid=shop.uuid
            )
    except TimeoutError:
        app.outcomes["cancelled by the handler"] += 1
    except OutcomeUnknownError as lost:
        app.lost.append(lost)
        app.outcomes["unknown"] += 1
    except (LeatAPIError, LeatConnectionError) as refused:
        app.outcomes[f"refused: {type(refused).__name__}"] += 1
    else:
        app.learn(tx, "answered")


async def _soak(n: int, seed: int) -> tuple[App, FakeLeat, float, float]:
    rng = random.Random(seed)
    app = App()
    async with FakeLeat(token="soak-token") as fake:
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
            found = await asyncio.gather(
                *(client.giftcard_transactions.recover(e, margin=0.5) for e in app.lost)
            )
            for tx in found:
                if tx is None:
                    app.outcomes["recovered: none made"] += 1
                else:
                    app.learn(tx, "recovered")
        settling = time.perf_counter() - started - checkouts
    return app, fake, checkouts, settling


def run(config: Config) -> list[Section]:
    n = 300 if config.quick else 1000
    quiet = logging.getLogger("leat_async")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # orphans and look-alikes are the point here, not news
    try:
        app, fake, checkouts, settling = asyncio.run(_soak(n, seed=9))
    finally:
        quiet.setLevel(level)
    twice = sum(1 for count in app.known.values() if count > 1)
    landed = {tx.uuid for tx in fake.transactions}
    unaccounted = len(landed - set(app.known))
    balanced = 0
    for card in fake.cards:
        known = sum(a for u, (c, a) in app.amounts.items() if c == card.uuid)
        balanced += card.balance_in_cents == START + known
    rows = [[what, str(count)] for what, count in sorted(app.outcomes.items())]
    rows += [
        ["transactions at the fake", str(len(landed))],
        ["known to the app", str(len(app.known))],
        ["known twice (claimed by two requests)", str(twice)],
        ["at the fake, unknown to the app", str(unaccounted)],
        ["cards whose balance matches the app", f"{balanced} of {len(fake.cards)}"],
    ]
    notes = [
        f"{n} checkouts by {HANDLERS} handlers on {CARDS} cards in {checkouts:.1f} s; "
        f"{len(app.lost)} unknown outcomes recovered concurrently in {settling:.1f} s "
        f"(landing_horizon {HORIZON} s). Faults drawn per charge: "
        + ", ".join(f"{k} {w} %" for k, w in zip(FAULTS, WEIGHTS, strict=True))
        + "; 10 % of handlers cancelled after 0.05-0.5 s."
    ]
    accounted = 100.0 * (len(landed) - unaccounted) / max(1, len(landed))
    exact = 100.0 * (len(app.known) - twice) / max(1, len(app.known))
    goals = [
        Goal("money", "cards balanced", 100.0 * balanced / len(fake.cards), 100, "%"),
        Goal("money", "charges accounted for", accounted, 100, "%"),
        Goal("money", "transactions claimed once", exact, 100, "%"),
    ]
    return [Section("money soak (issue 9)", ["outcome", "count"], rows, notes, goals)]
