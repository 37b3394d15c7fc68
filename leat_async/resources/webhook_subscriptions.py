"""``client.webhook_subscriptions``: list, create, get, update, delete (arguments -> request ->
model). Deliveries to a subscription are received with :mod:`leat_async.webhooks`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

from yarl import URL

from .._api.convert import data_parser, document
from .._api.params import check_id
from .._api.webhook_models import EVENT_TYPES, WebhookSubscription
from .._api.wire import Request, is_loopback, query_pairs

if TYPE_CHECKING:
    from .._http.dispatch import Dispatcher

__all__ = ["WebhookSubscriptions"]

_PATH: Final = "/webhook-subscriptions"
_STATUSES: Final = ("ACTIVE", "INACTIVE")
_one = data_parser(WebhookSubscription)
_many = data_parser(list[WebhookSubscription])

Status = Literal["ACTIVE", "INACTIVE"]


def _deleted(body: bytes) -> None:
    document(body)  # {"data": [], "meta": []}: any JSON object says it is done


def check_event_type(value: object) -> str:
    name = check_id(value, "event_type")
    if name not in EVENT_TYPES:
        raise ValueError(f"event_type must be one of {', '.join(sorted(EVENT_TYPES))}")
    return name


def check_status(value: object) -> str:
    if value not in _STATUSES:
        raise ValueError(f"status must be ACTIVE or INACTIVE, got {value!r:.40}")
    return str(value)


def check_url(value: object) -> str:
    """An absolute ``https://`` URL (plain ``http://`` only for a loopback host)."""
    text = check_id(value, "url")
    url = URL(text)
    if not url.is_absolute() or url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"url must be an absolute https:// URL, got {text!r:.80}")
    if url.scheme == "http" and not is_loopback(url.host):
        raise ValueError(f"url must be https:// (plain http only for loopback), got {text!r:.80}")
    if url.user or url.password:
        raise ValueError("url must not carry credentials")
    return text


class WebhookSubscriptions:
    """The account's webhook subscriptions. The secret of one is never returned by the API."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatch = dispatcher

    async def list(
        self,
        *,
        event_type: str | None = None,
        status: Status | None = None,
        timeout: float | None = None,
    ) -> list[WebhookSubscription]:
        """Every subscription (of one event type, one status); the API does not page them."""
        query = query_pairs(
            [
                ("event_type", None if event_type is None else check_event_type(event_type)),
                ("status", None if status is None else check_status(status)),
            ]
        )
        request = Request("GET", _PATH, query=query, operation="webhook_subscriptions.list")
        return (await self._dispatch.send(request, _many, timeout=timeout)).value

    async def create(
        self,
        *,
        name: str,
        event_type: str,
        url: str,
        secret: str | None = None,
        timeout: float | None = None,
    ) -> WebhookSubscription:
        """A new subscription. Never sent twice: a lost answer is ``OutcomeUnknownError``
        (``list()`` tells whether it exists). The ``secret`` is never in any error or log."""
        body: dict[str, Any] = {
            "name": check_id(name, "name"),
            "event_type": check_event_type(event_type),
            "url": check_url(url),
        }
        if secret is not None:
            if not isinstance(secret, str) or not secret:
                raise ValueError("secret must be a non-empty str (or None)")
            body["secret"] = secret
        request = Request(
            "POST",
            _PATH,
            body=body,
            operation="webhook_subscriptions.create",
            secret_fields=("secret",),
        )
        return (await self._dispatch.send(request, _one, timeout=timeout)).value

    async def get(self, uuid: str, *, timeout: float | None = None) -> WebhookSubscription:
        """The subscription; :class:`WebhookSubscriptionNotFoundError` when there is none."""
        uuid = check_id(uuid, "uuid", in_path=True)
        request = Request(
            "GET", f"{_PATH}/{uuid}", operation="webhook_subscriptions.get", subject=uuid
        )
        return (await self._dispatch.send(request, _one, timeout=timeout)).value

    async def update(
        self,
        uuid: str,
        *,
        name: str | None = None,
        url: str | None = None,
        status: Status | None = None,
        attributes: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> WebhookSubscription:
        """Change the name, url, status or watched attributes (``event_type`` and the secret
        cannot change); at least one of them."""
        uuid = check_id(uuid, "uuid", in_path=True)
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = check_id(name, "name")
        if url is not None:
            body["url"] = check_url(url)
        if status is not None:
            body["status"] = check_status(status)
        if attributes is not None:
            names = [] if isinstance(attributes, str) else [*attributes]
            if not names or not all(isinstance(a, str) and a for a in names):
                raise ValueError("attributes must be a list of non-empty str")
            body["attributes"] = names
        if not body:
            raise ValueError("update needs something to change: name, url, status or attributes")
        request = Request(
            "PUT",
            f"{_PATH}/{uuid}",
            body=body,
            operation="webhook_subscriptions.update",
            subject=uuid,
        )
        return (await self._dispatch.send(request, _one, timeout=timeout)).value

    async def delete(self, uuid: str, *, timeout: float | None = None) -> None:
        """Remove the subscription; :class:`WebhookSubscriptionNotFoundError` when unknown."""
        uuid = check_id(uuid, "uuid", in_path=True)
        request = Request(
            "DELETE", f"{_PATH}/{uuid}", operation="webhook_subscriptions.delete", subject=uuid
        )
        await self._dispatch.send(request, _deleted, timeout=timeout)
