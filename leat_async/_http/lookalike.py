"""Which transaction a lost create or reverse made, among look-alikes: one pure decision.

Lost requests of the same card, shop and amount whose time windows overlap form a *group*;
the matching transactions in the group's window that no one has claimed are its
*candidates*. The server's rows cannot tell look-alikes apart, except when it echoes
``custom_attributes``. The rest is counting:

- where the server echoes ``custom_attributes``, a row whose attributes are not what a member
  sent is not that member's;
- a member that got a 2xx status is known to have landed and has first claim;
- one member and one candidate: the candidate is the member's;
- one 2xx member, the others unknown, and one candidate: the 2xx member's;
- once no member can land any more (every deadline has passed): as many candidates as 2xx
  members means the others made nothing; as many as members means all landed;
- anything else cannot be told apart: the decision says so (:class:`Ambiguous`), never guesses.

What cannot be known: a look-alike made by another process or client whose attributes (if any)
are not echoed. It counts as a candidate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from .._api.models import GiftcardTransaction

__all__ = [
    "Ambiguous",
    "Candidate",
    "Decision",
    "Found",
    "Lost",
    "Missing",
    "Nothing",
    "Wait",
    "decide",
    "echo_matches",
]


@attrs.frozen
class Lost:
    """A lost request as the decision sees it."""

    ticket: str
    landed: bool  # answered with a 2xx status: it was processed
    low: datetime  # where its transaction can be: [low, high] in the server's created_at
    high: datetime
    attributes: Mapping[str, Any] | None = None  # the custom_attributes it sent


@attrs.frozen
class Candidate:
    """A matching transaction no one has claimed, and the attributes the server echoed."""

    tx: GiftcardTransaction
    echo: Mapping[str, Any] | None = None  # ``None``: the server did not echo any


@attrs.frozen
class Found:
    tx: GiftcardTransaction


@attrs.frozen
class Nothing:
    """The request made no transaction."""


@attrs.frozen
class Wait:
    """Not known yet: a member may still land."""


@attrs.frozen
class Missing:
    """It got a 2xx, yet its transaction is not among the candidates."""


@attrs.frozen
class Ambiguous:
    """Look-alikes that cannot be told apart: ``landed`` of the group's members made
    ``transactions`` (``landed`` is ``None`` when even the count cannot be trusted)."""

    landed: int | None
    transactions: tuple[GiftcardTransaction, ...]


Decision = Found | Nothing | Wait | Missing | Ambiguous


def echo_matches(sent: Mapping[str, Any] | None, echo: Mapping[str, Any] | Sequence[Any]) -> bool:
    """The echoed attributes are what was sent (a value may come back as its text)."""
    if not isinstance(echo, Mapping):  # PHP sends an empty array as []
        echo = {}
    sent = sent or {}
    if not sent:
        return not echo
    return all(key in echo and _same(value, echo[key]) for key, value in sent.items())


def _same(sent: object, echoed: object) -> bool:
    if sent == echoed and type(sent) is type(echoed):
        return True
    if isinstance(sent, bool):
        return str(echoed).lower() in (("true", "1") if sent else ("false", "0"))
    return sent is not None and str(sent) == str(echoed)


def decide(
    target: Lost, group: Sequence[Lost], candidates: Sequence[Candidate], *, final: bool
) -> Decision:
    """What ``target`` (a member of ``group``) made, given the group's ``candidates``.

    ``final``: no member of the group can land any more.
    """
    members = {m.ticket: m for m in group}
    members[target.ticket] = target
    plain = [c.tx for c in candidates if c.echo is None]
    echoed = [c for c in candidates if c.echo is not None]
    if not echoed:
        return _count(target, list(members.values()), plain, final=final)
    # The server echoes what each request sent: only the rows that echo the target's
    # attributes can be its, and only members that sent the same can be its rivals for them
    # (rows that echo nothing could be anyone's).
    mine = [c.tx for c in echoed if echo_matches(target.attributes, c.echo or {})]
    rivals = [
        m
        for m in members.values()
        if plain or m is target or _same_attributes(m.attributes, target.attributes)
    ]
    return _count(target, rivals, mine + plain, final=final)


def _same_attributes(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    return echo_matches(a, b or {}) and echo_matches(b, a or {})


def _count(
    target: Lost, rest: list[Lost], pool: list[GiftcardTransaction], *, final: bool
) -> Decision:
    """The counting rules of the module's docstring, on the members no echo resolved."""
    n, m = len(rest), len(pool)
    k = sum(1 for member in rest if member.landed)
    if n == 1:
        if m == 1:
            return Found(pool[0])
        if m > 1:
            return Ambiguous(None, tuple(pool))
        if not final:
            return Wait()
        return Missing() if target.landed else Nothing()
    if target.landed and k == 1 and m == 1:
        return Found(pool[0])  # its row is visible (it was answered): this is the one
    if not final:
        return Wait()
    if m < k:
        return Missing() if target.landed and m == 0 else Ambiguous(None, tuple(pool))
    if m == k and not target.landed:
        return Nothing()
    return Ambiguous(m, tuple(pool))
