"""The fake's error answers: Leat error bodies and their messages (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

__all__ = [
    "INVALID_INPUT",
    "MESSAGES",
    "ApiError",
    "leat_error",
    "validation_error",
]

INVALID_INPUT: Final = 1003

# "Dutch | English" as in the reference where it gives one; the others follow the same pattern.
MESSAGES: Final[Mapping[int, str]] = {
    1000: "Interne fout. | Internal error.",
    1003: "De opgegeven gegevens zijn ongeldig. | The given data was invalid.",
    1008: "Winkel niet gevonden. | Shop not found.",
    1100: "Giftcardprogramma niet gevonden. | Giftcard program not found.",
    5001: "Giftcard niet gevonden. | Giftcard not found.",
    5002: "Het bedrag op de kaart is verlopen. | This giftcard has expired.",
    5003: "Het bedrag op de kaart is niet toereikend. | Insufficient amount on giftcard.",
    5006: "Deze giftcard kan niet opgewaardeerd worden. | This giftcard cannot be incremented.",
    5008: "Maximale limiet op kaart bereikt. | Max amount will be exceeded.",
    5010: "Giftcard transaction not found.",
    55025: "This is not the giftcards last transaction.",
    80300: "Webhook subscription not found.",
}


class ApiError(Exception):
    """An answer other than success, raised by the store and rendered by the app."""

    def __init__(self, status: int, body: Mapping[str, Any]) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = dict(body)


def leat_error(code: int, *, status: int = 400) -> ApiError:
    """A Leat error body ``{"message", "code", "status_code"}``."""
    return ApiError(status, {"message": MESSAGES[code], "code": code, "status_code": status})


def validation_error(errors: Mapping[str, Sequence[str]]) -> ApiError:
    """Code 1003 with Laravel-style ``errors: {field: [messages]}``."""
    err = leat_error(INVALID_INPUT)
    err.body["errors"] = {name: list(msgs) for name, msgs in errors.items()}
    return err
