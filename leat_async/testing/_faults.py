"""Scripted faults: answers, drops and delays the fake applies to matching requests."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Fault", "FaultBook"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """A scripted misbehaviour for matching requests.

    Match: ``method`` (case-insensitive), ``path`` (a regex, ``re.fullmatch`` against the path
    relative to ``/api/v3/oauth/clients``), ``query`` (pairs that must all be in the query);
    ``None`` matches anything. It affects the first ``times`` matching requests (``None``: all).

    ``when="before"``: the request never reaches the API (no auth, no rate limit, no state
    change): after ``delay`` seconds it is answered with ``status``/``body`` or dropped, or, with
    neither, handled normally. ``when="after"``: the request is handled (state changes!), then
    after ``delay`` seconds the answer is replaced by ``status``/``body``, dropped, or sent.
    ``headers`` go on the fault's answer, or are added to the normal one when there is no
    ``status``. A ``body`` dict is sent as JSON; ``content_type`` applies to str/bytes bodies.

    For tests that must know *when*: ``applied`` (an ``asyncio.Event``) is set when the fault
    takes effect (``"before"``: as the request arrives; ``"after"``: once the handler ran, e.g.
    the charge has landed); ``hold`` (an ``asyncio.Event``) keeps the fault waiting, after
    ``delay``, until the test sets it. The handler goes on even when the client has gone.
    """

    method: str | None = None
    path: str | None = None
    query: Mapping[str, str] | None = None
    times: int | None = 1
    status: int | None = None
    headers: Mapping[str, str] | None = None
    body: str | bytes | Mapping[str, Any] | None = None
    content_type: str = "application/json"
    when: Literal["before", "after"] = "before"
    drop: bool = False
    delay: float = 0.0
    applied: asyncio.Event | None = None
    hold: asyncio.Event | None = None

    def __post_init__(self) -> None:
        if self.when not in ("before", "after"):
            raise ValueError(f"when must be 'before' or 'after', not {self.when!r}")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be >= 1 or None")
        if self.delay < 0:
            raise ValueError("delay must be >= 0")
        if self.drop and self.status is not None:
            raise ValueError("a fault either drops the connection or answers, not both")
        if self.body is not None and self.status is None:
            raise ValueError("a fault body needs a status")
        if self.path is not None:
            re.compile(self.path)

    @property
    def answers(self) -> bool:
        return self.status is not None

    async def wait(self) -> None:
        """Signal that the fault applies, then wait out ``delay`` and ``hold``."""
        if self.applied is not None:
            self.applied.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.hold is not None:
            await self.hold.wait()

    def matches(self, method: str, path: str, query: Sequence[tuple[str, str]]) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.path is not None and re.fullmatch(self.path, path) is None:
            return False
        if self.query:
            pairs = set(query)
            return all((k, v) in pairs for k, v in self.query.items())
        return True

    def render(self) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body of the fault's own answer (``answers`` must be true)."""
        assert self.status is not None
        headers = {"Content-Type": self.content_type}
        if isinstance(self.body, Mapping):
            payload = json.dumps(self.body).encode()
            headers["Content-Type"] = "application/json"
        elif isinstance(self.body, str):
            payload = self.body.encode()
        else:
            payload = self.body or b""
        headers.update(self.headers or {})
        return self.status, headers, payload


@dataclass(slots=True)
class _Armed:
    fault: Fault
    remaining: int | None


class FaultBook:
    """Faults in the order added; the first match takes the request and uses up one time."""

    def __init__(self) -> None:
        self._armed: list[_Armed] = []

    def add(self, fault: Fault) -> None:
        self._armed.append(_Armed(fault, fault.times))

    def clear(self) -> None:
        self._armed.clear()

    def __len__(self) -> int:
        return len(self._armed)

    def take(self, method: str, path: str, query: Sequence[tuple[str, str]]) -> Fault | None:
        for armed in self._armed:
            if not armed.fault.matches(method, path, query):
                continue
            if armed.remaining is not None:
                armed.remaining -= 1
                if armed.remaining <= 0:
                    self._armed.remove(armed)
            return armed.fault
        return None
