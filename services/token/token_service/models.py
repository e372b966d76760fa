"""Request and response bodies of the edge's HTTP API (camelCase JSON).

User text is sanitized here with `livestage.text.clean_text` before its limits are checked, so
a 422 names the field and the rule, and what passes is what gets stored and shown.
"""

from __future__ import annotations

import re
import secrets
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from livestage.schemas import MAX_CHAT_CHARS, MAX_NAME_CHARS, ChatMessage
from livestage.text import clean_text

VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


def _clean_between(low: int, high: int) -> AfterValidator:
    def check(value: str) -> str:
        cleaned = clean_text(value)
        if not low <= len(cleaned) <= high:
            raise ValueError(
                f"must be {low}-{high} visible characters after removing control, bidi and "
                f"zero-width characters and extra spaces (got {len(cleaned)})"
            )
        return cleaned

    return AfterValidator(check)


class ApiModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, extra="forbid"
    )


class TokenRequest(ApiModel):
    """A viewer's profile; `visitorId` is generated when missing."""

    display_name: Annotated[
        str, Field(max_length=4 * MAX_NAME_CHARS), _clean_between(1, MAX_NAME_CHARS)
    ]
    avatar: str = Field(max_length=32, description="One of the ids in GET /api/config `avatars`.")
    visitor_id: str | None = Field(default=None, max_length=64, validate_default=True)

    @field_validator("visitor_id")
    @classmethod
    def _visitor_id_shape(cls, value: str | None) -> str:
        if value is None or value == "":
            return secrets.token_urlsafe(18)
        if not VISITOR_ID.fullmatch(value):
            raise ValueError("must be 8-64 characters of A-Z, a-z, 0-9, '_' or '-'")
        return value


class TokenResponse(ApiModel):
    token: str
    url: str
    room_name: str
    agent_name: str
    identity: str


class ChatRequest(ApiModel):
    """A chat line; `clientId` (optional) makes retries of the same send idempotent."""

    body: Annotated[str, Field(max_length=4 * MAX_CHAT_CHARS), _clean_between(1, MAX_CHAT_CHARS)]
    client_id: str | None = Field(
        default=None,
        description="Client-chosen id of this send ([A-Za-z0-9_-]{8,64}); resending with the "
        "same clientId stores the message once.",
    )

    @field_validator("client_id")
    @classmethod
    def _client_id_shape(cls, value: str | None) -> str | None:
        if value is not None and not CLIENT_ID.fullmatch(value):
            raise ValueError("must be 8-64 characters of A-Z, a-z, 0-9, '_' or '-'")
        return value


class ChatAccepted(ApiModel):
    id: str


class HistoryResponse(ApiModel):
    messages: list[ChatMessage]


class PublicConfig(ApiModel):
    """What the pages need to know; nothing secret."""

    room_name: str
    avatars: list[str]
    chat_topic: str
    stage_topic: str
    max_name_length: int = MAX_NAME_CHARS
    max_chat_length: int = MAX_CHAT_CHARS
    avatar_identities: list[str]


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Every error: `detail` is a sentence or, for 422, one item per bad field."""

    detail: str | list[ErrorItem]


class HealthResponse(BaseModel):
    status: str
    checks: dict[str, str] = {}
