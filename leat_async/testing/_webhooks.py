"""The fake's webhook subscriptions, and the signed deliveries it sends to them.

After every giftcard transaction made through the API (a create or a reverse), each ACTIVE
``giftcard_transaction_created`` subscription gets a ``POST`` of ``{"type": ..., "data":
{"giftcard_transaction": <the row>}}`` with a ``Signature`` header: the lowercase hex
HMAC-SHA256 of the raw body, keyed with the subscription's secret (written here from Leat's
description, sharing nothing with the client). A delivery that fails or is not answered 2xx is
tried again a few times with a backoff; every attempt is recorded in ``deliveries``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid as uuid_mod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp

from ._errors import leat_error, validation_error

__all__ = ["Delivery", "DeliveryFault", "SubscriptionRecord", "Webhooks"]

PATH: Final = "/webhook-subscriptions"
EVENT: Final = "giftcard_transaction_created"
EVENT_TYPES: Final = frozenset(
    (
        "contact_created",
        "contact_updated",
        "credit_reception_created",
        "prepaid_transaction_created",
        "giftcard_transaction_created",
        "voucher_created",
        "voucher_updated",
        "voucher_redeemed",
        "form_submission_completed",
        "referral_completed",
        "contact_identifier_created",
        "reward_updated",
        "promotion_updated",
    )
)
ATTEMPTS: Final = 4  # a failed delivery is tried this many times in all
BACKOFF: Final = 0.05  # seconds before the 2nd attempt, doubling


@dataclass
class SubscriptionRecord:
    uuid: str
    name: str
    event_type: str
    url: str
    secret: str  # never rendered
    status: str = "ACTIVE"
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    properties: list[str] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "name": self.name,
            "event_type": self.event_type,
            "url": self.url,
            "status": self.status,
            "version": "V1",
            "created_at": self.created_at.isoformat(),
            "properties": list(self.properties),
        }


@dataclass
class Delivery:
    """One delivery to one subscription: what was sent, and each attempt's status (0: no
    answer)."""

    url: str
    body: bytes
    signature: str
    statuses: list[int] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        return any(200 <= s < 300 for s in self.statuses)


@dataclass
class DeliveryFault:
    """Applied to the next delivery: sent twice, after a delay, or with a wrong signature."""

    duplicate: bool = False
    delay: float = 0.0
    wrong_signature: bool = False


class Webhooks:
    """Subscriptions, deliveries and the tasks that send them (owned by ``FakeLeat``)."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self.subscriptions: dict[str, SubscriptionRecord] = {}
        self.deliveries: list[Delivery] = []
        self.faults: list[DeliveryFault] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None

    # -- the endpoints ---------------------------------------------------------------------

    def answer(
        self, method: str, path: str, query: Sequence[tuple[str, str]], body: Any
    ) -> tuple[int, dict[str, Any]] | None:
        if path == PATH and method == "GET":
            wanted = dict(query)
            rows = [
                s.json()
                for s in self.subscriptions.values()
                if wanted.get("event_type", s.event_type) == s.event_type
                and wanted.get("status", s.status) == s.status
            ]
            return 200, {"data": rows, "meta": []}
        if path == PATH and method == "POST":
            return 200, {"data": self._create(body).json(), "meta": []}
        if not path.startswith(PATH + "/"):
            return None
        sub = self.subscriptions.get(path[len(PATH) + 1 :])
        if method not in ("GET", "PUT", "DELETE"):
            return None
        if sub is None:
            raise leat_error(80300)
        if method == "PUT":
            self._update(sub, body)
        elif method == "DELETE":
            del self.subscriptions[sub.uuid]
            return 200, {"data": [], "meta": []}
        return 200, {"data": sub.json(), "meta": []}

    def _create(self, body: Any) -> SubscriptionRecord:
        body = body if isinstance(body, dict) else {}
        errors: dict[str, list[str]] = {}
        for name in ("name", "event_type", "url"):
            if not isinstance(body.get(name), str) or not body[name]:
                errors[name] = [f"The {name} field is required."]
        if "event_type" not in errors and body["event_type"] not in EVENT_TYPES:
            errors["event_type"] = ["The selected event type is invalid."]
        if errors:
            raise validation_error(errors)
        sub = SubscriptionRecord(
            uuid=str(uuid_mod.uuid4()),
            name=body["name"],
            event_type=body["event_type"],
            url=body["url"],
            secret=str(body.get("secret") or uuid_mod.uuid4().hex),
            created_at=self._clock(),
        )
        self.subscriptions[sub.uuid] = sub
        return sub

    def _update(self, sub: SubscriptionRecord, body: Any) -> None:
        body = body if isinstance(body, dict) else {}
        if "status" in body and body["status"] not in ("ACTIVE", "INACTIVE"):
            raise validation_error({"status": ["The selected status is invalid."]})
        for name in ("name", "url", "status"):
            if isinstance(body.get(name), str) and body[name]:
                setattr(sub, name, body[name])
        if isinstance(body.get("attributes"), list):
            sub.properties = [str(a) for a in body["attributes"]]

    # -- deliveries ------------------------------------------------------------------------

    def transaction_made(self, row: dict[str, Any]) -> None:
        """Deliver ``row`` to every ACTIVE subscription of the giftcard event, in the
        background (the API's answer never waits for a delivery)."""
        payload = json.dumps({"type": EVENT, "data": {"giftcard_transaction": row}}).encode()
        for sub in list(self.subscriptions.values()):
            if sub.status != "ACTIVE" or sub.event_type != EVENT:
                continue
            fault = self.faults.pop(0) if self.faults else DeliveryFault()
            signature = hmac.new(sub.secret.encode(), payload, hashlib.sha256).hexdigest()
            if fault.wrong_signature:
                signature = hmac.new(b"not the secret", payload, hashlib.sha256).hexdigest()
            for _ in range(2 if fault.duplicate else 1):
                delivery = Delivery(sub.url, payload, signature)
                self.deliveries.append(delivery)
                task = asyncio.get_running_loop().create_task(self._send(delivery, fault.delay))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _send(self, delivery: Delivery, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        headers = {"Content-Type": "application/json", "Signature": delivery.signature}
        for attempt in range(ATTEMPTS):
            if attempt:
                await asyncio.sleep(BACKOFF * 2 ** (attempt - 1))
            try:
                async with self._http.post(
                    delivery.url, data=delivery.body, headers=headers
                ) as resp:
                    delivery.statuses.append(resp.status)
                    if 200 <= resp.status < 300:
                        return
            except (aiohttp.ClientError, OSError, TimeoutError):
                delivery.statuses.append(0)

    async def settled(self) -> None:
        """Wait until every delivery begun so far has ended (delivered or given up)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None
