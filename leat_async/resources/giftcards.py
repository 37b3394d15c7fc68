"""``client.giftcards`` and ``client.giftcard_programs``: arguments -> request -> model."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs

from .._api.convert import data_parser, document, structure
from .._api.giftcard_models import Giftcard, GiftcardProgram
from .._api.models import Page, PageMeta
from .._api.params import check_card_type, check_id, check_page
from .._api.wire import Request, query_pairs
from .._paging.listing import Listing, check_walk
from .._paging.pager import Pager
from .._paging.position import Key, Position

if TYPE_CHECKING:
    from .._http.dispatch import Dispatcher

__all__ = ["GiftcardPrograms", "Giftcards"]

_PATH = "/giftcards"
_card = data_parser(Giftcard)
_programs = data_parser(list[GiftcardProgram])


@attrs.frozen
class _CardsMeta:
    """The giftcard listing's ``meta``: ``per_page`` where transactions say ``limit``."""

    page: int
    per_page: int
    last_page: int
    total: int


def _cards_page(body: bytes) -> Page[Giftcard]:
    doc = document(body)
    meta = structure(doc["meta"], _CardsMeta)
    cards = structure(doc["data"], list[Giftcard])
    return Page(
        data=cards,
        meta=PageMeta(
            page=meta.page,
            limit=meta.per_page,
            viewing_from=None,
            viewing_to=None,
            last_page=meta.last_page,
            total=meta.total,
        ),
    )


_EMAIL_SENT = "Email successfully sent"


def _email_sent(body: bytes) -> None:
    """Both success answers: the documented ``{"data": {"message": "success", "data": "Email
    successfully sent"}}`` and the bare ``{"data": "Email successfully sent"}``."""
    data = document(body).get("data")
    if isinstance(data, dict) and data.get("message") == "success":
        data = data.get("data")
    if data != _EMAIL_SENT:
        raise ValueError(f"expected {_EMAIL_SENT!r} in data")


def _check_merge_tags(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"merge_tags must be a mapping or None, got {type(value).__name__}")
    tags: dict[str, Any] = {}
    for key, tag in value.items():
        if not isinstance(key, str) or not key.startswith("custom.") or key == "custom.":
            raise ValueError(f"merge_tags keys must start with 'custom.', got {key!r:.60}")
        if isinstance(tag, bool) or not isinstance(tag, str | int | float):
            raise TypeError(f"merge_tags[{key!r}] must be a str or a number")
        tags[key] = tag
    return tags


def card_key(fingerprint: Callable[[str], str]) -> Callable[[Giftcard], Key]:
    """What tells two cards of a listing apart: the uuid; for an old card without one its id;
    without either, a keyed digest of its code (codes are unique like uuids; a position is
    saved to checkpoint files, and a code is enough to spend a card, so positions hold none).
    A fingerprint begins ``hmac-sha256:``, which cannot begin a uuid, and an id is an int: the
    kinds never meet.
    """

    def key(card: Giftcard) -> Key:
        if card.uuid is not None:
            return card.uuid
        if card.id is not None:
            return card.id
        return fingerprint(card.hash)

    return key


class Giftcards:
    """From the code a customer types (the card's ``hash``) to the card and its uuid."""

    def __init__(
        self, dispatcher: Dispatcher, *, prefetch: int, fingerprint: Callable[[str], str]
    ) -> None:
        self._key = card_key(fingerprint)
        self._dispatch = dispatcher
        self._prefetch = prefetch

    async def find_by_hash(self, hash: str, *, timeout: float | None = None) -> Giftcard:
        """The card with this code; :class:`GiftcardNotFoundError` when there is none.

        The code is sent exactly as given: ``+``, spaces, ``&``, ``/``, ``#`` and any letters
        arrive intact. Whitespace at its ends is refused (strip what a customer typed first).
        """
        code = check_id(hash, "hash")
        request = Request(
            "GET", f"{_PATH}/find-one-by", query=(("hash", code),), operation="giftcards.find"
        )
        return (await self._dispatch.send(request, _card, timeout=timeout)).value

    async def get(self, uuid: str, *, timeout: float | None = None) -> Giftcard:
        uuid = check_id(uuid, "uuid", in_path=True)
        request = Request("GET", f"{_PATH}/{uuid}", operation="giftcards.get", subject=uuid)
        return (await self._dispatch.send(request, _card, timeout=timeout)).value

    async def create(
        self,
        *,
        giftcard_program_uuid: str,
        type: Literal["PHYSICAL", "DIGITAL"],
        timeout: float | None = None,
    ) -> Giftcard:
        """A new card of the program, with a balance of 0. Never sent twice.

        A lost answer raises :class:`OutcomeUnknownError`: the card may or may not exist.
        """
        body = {
            "giftcard_program_uuid": check_id(giftcard_program_uuid, "giftcard_program_uuid"),
            "type": check_card_type(type),
        }
        request = Request("POST", _PATH, body=body, operation="giftcards.create")
        return (await self._dispatch.send(request, _card, timeout=timeout)).value

    async def send_by_email(
        self,
        uuid: str,
        *,
        contact_uuid: str,
        email_uuid: str | None = None,
        merge_tags: Mapping[str, str | int | float] | None = None,
        timeout: float | None = None,
    ) -> None:
        """E-mail the card to a contact (an automated "Giftcard recipient" e-mail holding the
        ``giftcard.hash`` token; ``email_uuid`` picks one). ``merge_tags`` keys must begin
        ``custom.`` (else ``ValueError``, nothing sent). A POST: never sent twice unless
        provably refused; a lost answer raises :class:`OutcomeUnknownError`. An unknown card
        raises :class:`GiftcardNotFoundError`.
        """
        uuid = check_id(uuid, "uuid", in_path=True)
        body: dict[str, Any] = {"contact_uuid": check_id(contact_uuid, "contact_uuid")}
        if email_uuid is not None:
            body["email_uuid"] = check_id(email_uuid, "email_uuid")
        tags = _check_merge_tags(merge_tags)
        if tags is not None:
            body["merge_tags"] = tags
        request = Request(
            "POST",
            f"{_PATH}/{uuid}/send-by-email",
            body=body,
            operation="giftcards.send_by_email",
            subject=uuid,
        )
        await self._dispatch.send(request, _email_sent, timeout=timeout)

    def list(
        self,
        *,
        per_page: int = 100,
        page: int = 1,
        giftcard_program_uuid: str | None = None,
        prefetch: int | None = None,
        resume: Position | None = None,
    ) -> Pager[Giftcard]:
        """A pager over the cards (of one program with ``giftcard_program_uuid``), with the
        transactions pager's contract: ``await`` = the first page, ``async for`` = every card
        once, ``.pages()``, ``position`` and ``resume=``. See :class:`~leat_async.Pager`.

        The listing has no ``created_at`` filter: a walk is not a snapshot, and a card created
        during it may or may not be seen. Cards are told apart by their uuid (an old card
        without one by its id, or a digest of its code: a position never holds a code). An
        unknown program raises :class:`GiftcardProgramNotFoundError`.
        """
        per_page, page = check_page(per_page, page)
        if giftcard_program_uuid is not None:
            check_id(giftcard_program_uuid, "giftcard_program_uuid")
        check_walk(page=page, prefetch=prefetch, resume=resume)
        base = query_pairs([("limit", per_page), ("giftcard_program_uuid", giftcard_program_uuid)])

        def request(number: int, _: object) -> Request:
            query = (*base, ("page", str(number)))
            return Request("GET", _PATH, query=query, operation="giftcards.list")

        listing = Listing(
            name="giftcards",
            parameters=base,
            per_page=per_page,
            request=request,
            parse=_cards_page,
            key=self._key,
        )
        return Pager(
            listing,
            dispatcher=self._dispatch,
            page=page,
            prefetch=self._prefetch if prefetch is None else prefetch,
            resume=resume,
        )


class GiftcardPrograms:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatch = dispatcher

    async def list(self, *, timeout: float | None = None) -> list[GiftcardProgram]:
        """Every giftcard program of the account (one request: the API does not page them)."""
        request = Request("GET", "/giftcard-programs", operation="giftcard_programs.list")
        return (await self._dispatch.send(request, _programs, timeout=timeout)).value
