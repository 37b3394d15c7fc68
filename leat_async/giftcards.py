"""``client.giftcards`` and ``client.giftcard_programs``: arguments -> request -> model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ._convert import data_parser
from ._giftcard_models import Giftcard, GiftcardProgram
from ._params import check_card_type, check_id
from ._wire import Request

if TYPE_CHECKING:
    from ._dispatch import Dispatcher

__all__ = ["GiftcardPrograms", "Giftcards"]

_PATH = "/giftcards"
_card = data_parser(Giftcard)
_programs = data_parser(list[GiftcardProgram])


class Giftcards:
    """From the code a customer types (the card's ``hash``) to the card and its uuid."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatch = dispatcher

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


class GiftcardPrograms:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatch = dispatcher

    async def list(self, *, timeout: float | None = None) -> list[GiftcardProgram]:
        """Every giftcard program of the account (one request: the API does not page them)."""
        request = Request("GET", "/giftcard-programs", operation="giftcard_programs.list")
        return (await self._dispatch.send(request, _programs, timeout=timeout)).value
