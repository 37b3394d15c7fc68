"""The errors of a create or reverse whose outcome is unknown (see the tree in ``errors``).

They carry what was sent and when, so that ``recover()`` can find the transaction later, even
in another process: they pickle with their state, never with the token.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .errors import LeatError, Operation
from .models import GiftcardTransaction

__all__ = ["AmbiguousOutcomeError", "OutcomeUnknownError"]


class OutcomeUnknownError(LeatError):
    """A create or reverse was sent, but no usable answer came back.

    The transaction may or may not exist. The request is never resent by the client; pass this
    error to ``await client.giftcard_transactions.recover(error)`` to find out. ``.message``
    names the real cause (a timeout, a dropped connection, a gateway's page, an unreadable
    answer); ``.deadline`` is the moment after which the request can no longer land;
    ``.status`` the answer's status, if one came (a 2xx: it landed); ``.finished_at`` when the
    server's application said it was done with it, if it did.
    """

    def __init__(
        self,
        message: str,
        *,
        operation: Operation,
        method: str,
        path: str,
        sent: Mapping[str, Any],
        sent_at: datetime,
        deadline: datetime,
        status: int | None = None,
        attempts: int = 1,
        finished_at: datetime | None = None,
    ) -> None:
        super().__init__(message, method=method, path=path, attempts=attempts)
        #: this lost request, and no other (pickled with it): what ``recover()`` claims by
        self.ticket: str = secrets.token_hex(8)
        #: when the server's application said it was done with the request (a 2xx, or its own
        #: error answer): whatever it did had happened by then. ``None``: no such answer.
        self.finished_at: datetime | None = finished_at
        self.operation: Operation = operation
        self.sent: dict[str, Any] = dict(sent)
        self.sent_at: datetime = sent_at
        self.deadline: datetime = deadline
        self.status: int | None = status

    def __str__(self) -> str:
        if self.operation in ("create", "reverse"):  # giftcard transactions
            then = "use recover()"
        else:
            then = "look it up before trying again"
        return (
            f"outcome of {self.operation} unknown: {self.message}; sent at "
            f"{self.sent_at.isoformat()}, may still land until {self.deadline.isoformat()}; "
            f"{then}{self._request_text()}"
        )


class AmbiguousOutcomeError(OutcomeUnknownError):
    """Lost requests that look alike (same card, shop and amount, overlapping in time) and
    that ``recover()`` cannot tell apart: it will not guess which made which transaction.

    - ``requests``: the group's lost requests (this one included), each an
      ``OutcomeUnknownError`` with its ``.sent`` (map them back to your orders);
    - ``transactions``: the matching transactions the group may have made;
    - ``landed``: how many of the group made one (``None`` when even that is not certain);
    - ``landed_for_certain``: this request surely made one of them (it was answered with a
      2xx, or every member of the group landed).

    Resolve the group as a whole: ``await client.giftcard_transactions.recover_group(
    error.requests)`` (a ``GroupOutcome``), e.g. to refund the ones you cannot attribute.
    Its ``ticket`` is this request's own: ``recover(error)`` answers for it again.
    """

    requests: tuple[OutcomeUnknownError, ...]
    transactions: tuple[GiftcardTransaction, ...]
    landed: int | None

    @classmethod
    def of(
        cls,
        error: OutcomeUnknownError,
        *,
        requests: tuple[OutcomeUnknownError, ...],
        transactions: tuple[GiftcardTransaction, ...],
        landed: int | None,
    ) -> AmbiguousOutcomeError:
        """The ambiguity of ``error``'s group (``error`` stays what it was)."""
        ambiguous = cls(
            error.message,
            operation=error.operation,
            method=error.method or "POST",
            path=error.path or "",
            sent=error.sent,
            sent_at=error.sent_at,
            deadline=error.deadline,
            status=error.status,
            attempts=error.attempts,
            finished_at=error.finished_at,
        )
        ambiguous.ticket = error.ticket
        ambiguous.requests = tuple(_plain(r) for r in requests)
        ambiguous.transactions = transactions
        ambiguous.landed = landed
        return ambiguous

    @property
    def landed_for_certain(self) -> bool:
        if self.status is not None and 200 <= self.status < 300:
            return True
        return self.landed is not None and self.landed == len(self.requests)

    def __str__(self) -> str:
        count = "an unknown number" if self.landed is None else str(self.landed)
        return (
            f"outcome of {self.operation} unknown: {len(self.requests)} lost requests with the "
            f"same card, shop and amount cannot be told apart ({count} of them made "
            f"{len(self.transactions)} matching transaction(s)); resolve them together with "
            f"recover_group(error.requests) [{self.message}]{self._request_text()}"
        )


def _plain(error: OutcomeUnknownError) -> OutcomeUnknownError:
    """A group's member as its own lost request (never a group of groups)."""
    if not isinstance(error, AmbiguousOutcomeError):
        return error
    plain = OutcomeUnknownError.__new__(OutcomeUnknownError)
    plain.args = error.args
    state = dict(error.__dict__)
    for name in ("requests", "transactions", "landed"):
        state.pop(name, None)
    plain.__dict__.update(state)
    return plain
