"""The fake's ``POST /giftcards/{uuid}/send-by-email``: the e-mails it "sent", recorded.

From Leat's docs: ``contact_uuid`` (required), ``email_uuid`` (optional), ``merge_tags``
(optional, keys starting ``custom.``); unknown card 5001, bad input 1003. The documented answer
is ``{"data": {"message": "success", "data": "Email successfully sent"}, "meta": {}}``; a
third-party module reads ``{"data": "Email successfully sent"}``: ``answer_shape`` picks one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ._errors import leat_error, validation_error

__all__ = ["EmailOutbox", "SentEmail"]

_SEND: Final = re.compile(r"/giftcards/([^/]+)/send-by-email")
_SENT: Final = "Email successfully sent"


@dataclass(frozen=True, slots=True)
class SentEmail:
    """One giftcard e-mail the fake accepted."""

    giftcard_uuid: str
    contact_uuid: str
    email_uuid: str | None = None
    merge_tags: dict[str, Any] = field(default_factory=dict)


class EmailOutbox:
    """``fake.emails``: ``sent`` (every accepted e-mail, in order) and ``answer_shape``
    (``"documented"``: ``{"data": {"message": "success", "data": ...}}``; ``"flat"``:
    ``{"data": "Email successfully sent"}``), changeable at any time."""

    def __init__(self) -> None:
        self.sent: list[SentEmail] = []
        self.answer_shape: Literal["documented", "flat"] = "documented"

    def answer(
        self, cards: Mapping[str, object], method: str, path: str, body: Any
    ) -> tuple[int, bytes] | None:
        """The answer to a send-by-email request (``cards``: the cards by uuid), or ``None``
        when the request is not one."""
        m = _SEND.fullmatch(path)
        if method != "POST" or m is None:
            return None
        if m[1] not in cards:
            raise leat_error(5001)
        fields = body if isinstance(body, dict) else {}
        errors: dict[str, list[str]] = {}
        contact = fields.get("contact_uuid")
        if not isinstance(contact, str) or not contact:
            errors["contact_uuid"] = ["The contact uuid field is required."]
        email = fields.get("email_uuid")
        if email is not None and (not isinstance(email, str) or not email):
            errors["email_uuid"] = ["The email uuid must be a string."]
        tags = fields.get("merge_tags", {})
        if not isinstance(tags, dict):
            errors["merge_tags"] = ["The merge tags must be an array."]
        elif any(not str(key).startswith("custom.") for key in tags):
            errors["merge_tags"] = ["The merge tags keys must start with custom."]
        if errors:
            raise validation_error(errors)
        assert isinstance(contact, str)
        assert isinstance(tags, dict)
        self.sent.append(SentEmail(m[1], contact, email, dict(tags)))
        if self.answer_shape == "flat":
            return 200, json.dumps({"data": _SENT}).encode()
        doc = {"data": {"message": "success", "data": _SENT}, "meta": {}}
        return 200, json.dumps(doc).encode()
