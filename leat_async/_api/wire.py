"""What goes out: requests, their JSON, the base URL they go to (pure, no I/O).

The answers that come back are read in :mod:`leat_async._api.answers`.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from yarl import URL

from .errors import Operation

__all__ = [
    "API_PREFIX",
    "SECRET_QUERY",
    "Request",
    "check_base_url",
    "encode_json",
    "is_loopback",
    "parse_json",
    "query_pairs",
]

API_PREFIX = "/api/v3/oauth/clients"
#: Query parameters whose values are card codes (enough to spend a card): never reported.
SECRET_QUERY = frozenset({"hash", "giftcard_hash"})

try:  # a core dependency on CPython; PyPy has the standard library's json
    import orjson

    _loads: Any = orjson.loads
    _dumps: Any = orjson.dumps
except ImportError:  # pragma: no cover - depends on the environment
    _loads = json.loads

    def _dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def parse_json(body: bytes) -> Any:
    """The JSON document in ``body``; ``ValueError`` naming the real cause for anything else.

    Whatever the bytes hold (bad UTF-8, nesting deeper than the parser's stack, numbers out of
    range), with or without orjson, the failure is a ``ValueError``: never a ``RecursionError``
    or a parser's own exception type reaching the caller.
    """
    try:
        return _loads(body)
    except (ValueError, RecursionError, MemoryError, TypeError, OverflowError) as exc:
        raise ValueError(_describe_failure(exc)) from None


def encode_json(value: Any) -> bytes:
    """``value`` as compact JSON; ``ValueError`` if it cannot be (too deep, out of range)."""
    try:
        return bytes(_dumps(value))
    except (ValueError, RecursionError, TypeError, OverflowError) as exc:
        raise ValueError(f"cannot be sent as JSON: {_describe_failure(exc)}") from None


def _describe_failure(exc: BaseException) -> str:
    text = str(exc).split("\n", 1)[0][:120]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@attrs.frozen
class Request:
    """What the client will send. ``path`` is relative to the API prefix."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: Mapping[str, Any] | None = attrs.field(default=None, repr=False)  # may hold secrets
    operation: Operation = "get"  # named in errors
    subject: str | None = None  # the transaction uuid in the path, if any
    secret_fields: tuple[str, ...] = ()  # body fields never reported (a webhook's secret)

    def sent(self) -> dict[str, Any]:
        """What this request asked for, as an ``OutcomeUnknownError`` reports it."""
        if self.body is not None:
            sent = dict(self.body)
            for name in self.secret_fields:
                if name in sent:
                    sent[name] = "[redacted]"
            return sent
        return {"uuid": self.subject} if self.subject is not None else {}

    @property
    def template(self) -> str:
        """The path with its uuid as ``{uuid}``: what telemetry names (never the uuid)."""
        return self.path if self.subject is None else self.path.replace(self.subject, "{uuid}")

    def secrets(self) -> tuple[str, ...]:
        """The card codes in the query (what no report may hold)."""
        return tuple(value for name, value in self.query if name in SECRET_QUERY and value)

    def redacted_query(self) -> tuple[tuple[str, str], ...]:
        """The query with every card code as ``REDACTED``."""
        return tuple((k, "REDACTED" if k in SECRET_QUERY else v) for k, v in self.query)

    @property
    def idempotent(self) -> bool:
        return self.method == "GET"

    def url(self, base: URL) -> URL:
        # yarl percent-encodes '+' in query values as %2B; the server reads a bare '+' as a space.
        url = _endpoint(base, self.path)
        return url.with_query(self.query) if self.query else url

    def encoded_body(self) -> bytes | None:
        """The JSON body; ``ValueError`` (before anything is sent) when it cannot be encoded."""
        return None if self.body is None else encode_json(self.body)


@functools.lru_cache(maxsize=256)
def _endpoint(base: URL, path: str) -> URL:
    return base.with_path(base.path.rstrip("/") + API_PREFIX + path, encoded=False)


def check_base_url(base_url: str, *, name: str = "base_url") -> URL:
    """https anywhere; plain http only for loopback hosts (``name``: the argument, in errors)."""
    if not isinstance(base_url, str) or not base_url:
        raise ValueError(f"{name} must be a non-empty URL string")
    url = URL(base_url)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"{name} must be an http(s) URL with a host, got {base_url!r}")
    if url.user or url.password:
        raise ValueError(f"{name} must not carry credentials")
    if url.query_string or url.fragment:
        raise ValueError(f"{name} must not carry a query or fragment")
    if url.scheme == "http" and not is_loopback(url.host):
        raise ValueError(f"plain http is only allowed for loopback hosts, not {url.host!r}")
    return url


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (where plain http may go)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def query_pairs(params: Sequence[tuple[str, object | None]]) -> tuple[tuple[str, str], ...]:
    """Drop ``None`` values; everything else becomes a string."""
    return tuple((k, str(v)) for k, v in params if v is not None)
