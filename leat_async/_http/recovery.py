"""Finding what a lost create or reverse did: ``recover()``, ``recover_group()`` and the claims.

A lost request is matched by what it asked for: the same giftcard, shop and amount, created
between its sending and its deadline. Three rules keep a transaction from going to the wrong
request:

- every transaction this client accounts for is *claimed*: one its create or reverse made (the
  claim is taken in the request's own task, as its answer is read), or one recovery gave to a
  lost request or a group. A claimed transaction is never given to another lost request;
- before it decides, recovery waits for this client's creates and reverses that could have
  made the same transaction and are still under way; a search and the claim that follows it are
  one step with no other task in between;
- the client remembers its own lost requests: look-alikes among them are decided together
  (see :mod:`._lookalike`), and where they cannot be told apart recovery says so
  (:class:`~leat_async.AmbiguousOutcomeError`) instead of guessing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import attrs

from .._api.models import GiftcardTransaction
from .._api.unknown import AmbiguousOutcomeError, OutcomeUnknownError
from .clock import ServerClock
from .lookalike import Ambiguous, Candidate, Decision, Found, Missing, Nothing, Wait, decide
from .lost import GetOne, Key, ListWindow, LostRequests, Searches, Span, last_landing
from .money import MoneyTasks

__all__ = ["Claims", "GroupOutcome", "Recovery"]

log = logging.getLogger("leat_async")

#: Seconds between searches while a lost request may still land: doubling up to the cap.
FIRST_POLL: Final = 0.5
MAX_POLL: Final = 8.0
MADE: Final = "made"  # the claim of a transaction a create or reverse of this client returned


@attrs.frozen
class GroupOutcome:
    """What a group of look-alike lost requests made, as far as it can be known.

    - ``requests``: the group's lost requests (``OutcomeUnknownError``);
    - ``landed``: how many of them made a transaction;
    - ``transactions``: the transactions they made, all of them (claimed for the group: never
      given to another lost request);
    - ``known``: by ``error.ticket``, the requests whose own outcome is certain: their
      transaction, or ``None`` when they made none. The others are interchangeable: *some*
      ``landed - (known transactions)`` of them made the rest.
    """

    requests: tuple[OutcomeUnknownError, ...]
    landed: int
    transactions: tuple[GiftcardTransaction, ...]
    known: Mapping[str, GiftcardTransaction | None]


class Claims:
    """Transactions this client has accounted for, by uuid (the most recent ``limit``)."""

    def __init__(self, limit: int = 10_000) -> None:
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._limit = limit

    def claim(self, tx: GiftcardTransaction, owner: str = MADE) -> GiftcardTransaction:
        if tx.uuid is not None:
            self._owners[tx.uuid] = owner
            self._owners.move_to_end(tx.uuid)
            while len(self._owners) > self._limit:
                self._owners.popitem(last=False)
        return tx

    def owner(self, uuid: str) -> str | None:
        return self._owners.get(uuid)


class Recovery:
    def __init__(
        self,
        *,
        claims: Claims,
        money: MoneyTasks,
        window: ListWindow,
        get: GetOne,
        clock: ServerClock,
    ) -> None:
        self._claims = claims
        self._money = money
        self._searches = Searches(window)
        #: decided lost requests: their transaction, None (made none), or their group's outcome
        self._lost: LostRequests[GiftcardTransaction | GroupOutcome | None] = LostRequests(
            get=get, clock=clock
        )

    def lost(self, error: OutcomeUnknownError) -> None:
        """Remember a lost request of this client (called as it is raised, in its own task)."""
        self._lost.remember(error)

    async def recover(
        self, error: OutcomeUnknownError, *, wait: bool, margin: float
    ) -> GiftcardTransaction | None:
        _check(error)
        margin = max(0.0, margin)
        if error not in self._lost:
            self._lost.remember(
                error
            )  # one unpickled elsewhere: a member of its groups from now on
        key = await self._lost.key(error)
        delay = FIRST_POLL
        while True:
            if error.ticket in self._lost.settled:
                return self._answer(error, self._lost.settled[error.ticket])
            decision, group, end = await self._decide(error, key, margin, wait=wait)
            if isinstance(decision, Found):
                return self._settle(error, self._claims.claim(decision.tx, _owner(error)))
            if isinstance(decision, Nothing):
                return self._settle(error, None)
            if isinstance(decision, Missing):
                # the server said it did it: "none was made" would be a lie
                log.warning("recover: a %s answered %s is not found", error.operation, error.status)
                raise error
            if isinstance(decision, Ambiguous):
                raise _ambiguous(error, group, decision.transactions, decision.landed)
            if error.ticket in self._lost.settled:
                continue  # decided meanwhile (its group was resolved): that answer
            if not wait:
                raise error  # still unknown: it may land later, or a look-alike is under way
            log.info("recover: the lost %s is not decided yet; looking again", error.operation)
            left = (end - datetime.now(UTC)).total_seconds()
            await asyncio.sleep(min(delay, max(0.0, left)))
            delay = min(delay * 2, MAX_POLL)

    async def recover_group(
        self, errors: Sequence[OutcomeUnknownError], *, wait: bool, margin: float
    ) -> GroupOutcome:
        if not errors:
            raise ValueError("recover_group() takes at least one OutcomeUnknownError")
        for error in errors:
            _check(error)
            if error not in self._lost:
                self._lost.remember(error)
        keys = {await self._lost.key(error) for error in errors}
        if len(keys) > 1:
            raise ValueError("recover_group(): the requests differ in card, shop or amount")
        key = keys.pop()
        margin = max(0.0, margin)
        while True:
            end = _latest(errors, margin)
            left = (end - datetime.now(UTC)).total_seconds()
            if left <= 0:
                break
            if not wait:
                raise errors[0]
            await asyncio.sleep(min(left, MAX_POLL))
        while self._look_alikes(key):
            await asyncio.wait(self._look_alikes(key))
        return await self._resolve_group(list(errors), key, margin)

    # -- the decisions ---------------------------------------------------------------------

    async def _decide(
        self, error: OutcomeUnknownError, key: Key, margin: float, *, wait: bool
    ) -> tuple[Decision, list[OutcomeUnknownError], datetime]:
        """One decision for ``error``, its group, and when the group can no longer land."""
        widened = False
        while True:
            busy = self._look_alikes(key)
            if busy:
                if not wait:
                    return Wait(), [error], last_landing(error)
                log.info(
                    "recover: waiting for %d create(s) or reverse(s) under way that could have "
                    "made the same transaction",
                    len(busy),
                )
                await asyncio.wait(busy)  # never cancels them
                continue
            group = await self._lost.group(error, key, margin)
            end = _latest(group, margin)
            final = datetime.now(UTC) >= end  # a search begun after the end sees all that lands
            window = self._lost.span(group, margin)
            rows = await self._searches.rows(key[1], window, not_before=end if final else None)
            if error.ticket in self._lost.settled:
                return Wait(), group, end  # decided while we searched: recover() answers
            if self._look_alikes(key):
                continue  # one started while we searched: its answer decides first
            # members decided while we searched have their rows claimed: they are out
            group = [m for m in group if m is error or m.ticket not in self._lost.settled]
            mine = self._held_by(rows, _owner(error))
            if mine is not None:
                return Found(mine), group, end  # recovered before: the same answer again
            candidates = self._candidates(rows, key)
            wider = self._lost.span(group, margin)
            if not candidates and not widened and _reaches_further(wider, window):
                widened = True  # the search's own answer told the server's clock: look there
                continue
            lost = [self._lost.as_lost(member, margin) for member in group]
            return decide(lost[0], lost, candidates, final=final), group, end

    async def _resolve_group(
        self, errors: list[OutcomeUnknownError], key: Key, margin: float
    ) -> GroupOutcome:
        group = {e.ticket: e for e in errors}
        for member in await self._lost.group(errors[0], key, margin, also=errors):
            group.setdefault(member.ticket, member)
        known: dict[str, GiftcardTransaction | None] = {}
        for ticket in group:
            settled = self._lost.settled.get(ticket, _NONE)
            if isinstance(settled, GroupOutcome):
                return settled  # resolved before, as a whole: the same answer again
            if settled is not _NONE:
                known[ticket] = settled  # type: ignore[assignment]
        members = [m for m in group.values() if m.ticket not in known]
        candidates: list[Candidate] = []
        if members:
            span = self._lost.span(members, margin)
            rows = await self._searches.rows(key[1], span, not_before=_latest(members, margin))
            candidates = self._candidates(rows, key)
        progress = True
        while progress:  # decide who can be decided; each decision narrows the rest
            progress = False
            for member in [m for m in members if m.ticket not in known]:
                lost = [self._lost.as_lost(m, margin) for m in members if m.ticket not in known]
                target = self._lost.as_lost(member, margin)
                decision = decide(target, lost, candidates, final=True)
                if isinstance(decision, Found):
                    known[member.ticket] = self._settle(
                        member, self._claims.claim(decision.tx, _owner(member))
                    )
                    candidates = [c for c in candidates if c.tx is not decision.tx]
                    progress = True
                elif isinstance(decision, Nothing):
                    known[member.ticket] = self._settle(member, None)
                    progress = True
        owner = "group " + " ".join(sorted(m.ticket for m in members if m.ticket not in known))
        rest = tuple(self._claims.claim(c.tx, owner) for c in candidates)
        made = tuple(tx for tx in known.values() if tx is not None)
        outcome = GroupOutcome(
            requests=tuple(group.values()),
            landed=len(made) + len(rest),
            transactions=made + rest,
            known=known,
        )
        for member in members:
            if member.ticket not in known:
                self._lost.settled[member.ticket] = outcome
        return outcome

    def _answer(
        self, error: OutcomeUnknownError, settled: GiftcardTransaction | GroupOutcome | None
    ) -> GiftcardTransaction | None:
        if isinstance(settled, GroupOutcome):
            raise _ambiguous(error, list(settled.requests), settled.transactions, settled.landed)
        return settled

    def _settle(
        self, error: OutcomeUnknownError, tx: GiftcardTransaction | None
    ) -> GiftcardTransaction | None:
        self._lost.settled[error.ticket] = tx
        return tx

    # -- candidates ----------------------------------------------------------------------

    def _candidates(self, rows: list[tuple[GiftcardTransaction, Any]], key: Key) -> list[Candidate]:
        """The rows that match ``key`` and that no one has claimed."""
        card, _, amount = key
        return [
            Candidate(tx, echo)
            for tx, echo in rows
            if tx.uuid is not None
            and tx.card.uuid == card
            and tx.amount_in_cents == amount
            and self._claims.owner(tx.uuid) is None
        ]

    def _held_by(
        self, rows: list[tuple[GiftcardTransaction, Any]], owner: str
    ) -> GiftcardTransaction | None:
        for tx, _ in rows:
            if tx.uuid is not None and self._claims.owner(tx.uuid) == owner:
                return tx
        return None

    def _look_alikes(self, key: Key) -> list[asyncio.Task[Any]]:
        """Creates with the same card, shop and amount, and reverses, still under way."""
        tasks = []
        for request, task in self._money.running():
            body = request.body or {}
            if request.operation == "reverse" or (
                request.operation == "create"
                and (body.get("giftcard_uuid"), body.get("shop_uuid"), body.get("amount_in_cents"))
                == key
            ):
                tasks.append(task)
        return tasks


_NONE: Final = object()


def _check(error: object) -> None:
    if not isinstance(error, OutcomeUnknownError):
        raise TypeError("recover() takes the OutcomeUnknownError of a create or reverse")


def _ambiguous(
    error: OutcomeUnknownError,
    group: Sequence[OutcomeUnknownError],
    transactions: Sequence[GiftcardTransaction],
    landed: int | None,
) -> AmbiguousOutcomeError:
    return AmbiguousOutcomeError.of(
        error, requests=tuple(group), transactions=tuple(transactions), landed=landed
    )


def _latest(group: Sequence[OutcomeUnknownError], margin: float) -> datetime:
    """When none of ``group`` can land any more (and the margin past it)."""
    return max(map(last_landing, group)) + timedelta(seconds=margin)


def _reaches_further(wider: Span, window: Span) -> bool:
    """The new window covers a whole second or more that the old one did not."""
    second = timedelta(seconds=1)
    return wider[0] <= window[0] - second or wider[1] >= window[1] + second


def _owner(error: OutcomeUnknownError) -> str:
    """Who claims for a lost request: the same error (even unpickled elsewhere) is one owner,
    and two identical requests lost at the same instant are two."""
    return f"lost {error.ticket}"
