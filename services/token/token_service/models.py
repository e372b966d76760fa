"""Request and response bodies of the edge's HTTP API (camelCase JSON).

User text is sanitized here with `livestage.text.clean_text` before its limits are checked, so
a 422 names the field and the rule, and what passes is what gets stored and shown.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from livestage.schemas import (
    DEFAULT_LAYOUT,
    MAX_CHAT_CHARS,
    MAX_NAME_CHARS,
    ChatMessage,
    Layout,
    ShortText,
    ShowState,
)
from livestage.subjects import ROOM_NAME_PATTERN
from livestage.text import clean_text

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
    """A viewer's profile, and the role the token is for.

    Who the visitor is comes from the edge's own `livestage_visitor` cookie (set on the first
    answer), never from the body.
    """

    display_name: Annotated[
        str, Field(max_length=4 * MAX_NAME_CHARS), _clean_between(1, MAX_NAME_CHARS)
    ]
    avatar: str = Field(max_length=32, description="One of the ids in GET /api/config `avatars`.")
    role: Literal["viewer", "stage", "preview"] = Field(
        "viewer",
        description="`viewer` (the viewer page), `stage` (the OBS stage page: subscribe-only, "
        "refused by chat, an audience for the host) or `preview` (the operator console's "
        "preview: subscribe-only, refused by chat, and no audience: its identity is "
        "`preview_...`, which no viewer count includes, and it dispatches no host).",
    )
    show: str | None = Field(
        None,
        pattern=f"^{ROOM_NAME_PATTERN.pattern}$",
        description="The show to watch (its room name, as in `/s/<show>`); default: the "
        "deployment's default show. 404 when no show has that name; an ended show still "
        "gets tokens.",
    )


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
    """Approved chat, oldest first; with `after`, what was stored after that message."""

    messages: list[ChatMessage]
    more: bool = Field(
        False,
        description="More messages were stored after the last one here: ask again with "
        "`after` set to its id.",
    )
    gap: bool = Field(
        False,
        description="The `after` message is no longer in history (trimmed by count or age, "
        "or removed): these are the newest messages instead, and some between it and them "
        "are not shown.",
    )


class PublicConfig(ApiModel):
    """What the pages need to know; nothing secret."""

    room_name: str = Field(description="The show's room.")
    title: str = Field(description="The show's title.")
    avatars: list[str]
    chat_topic: str
    stage_topic: str
    max_name_length: int = MAX_NAME_CHARS
    max_chat_length: int = MAX_CHAT_CHARS
    avatar_identities: list[str]
    layout: Layout = Field(DEFAULT_LAYOUT, description="The stage layout the operator chose.")
    show_state: ShowState = Field(
        "live", description="`ended` after an operator ended the show, until they start it."
    )


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


DependencyStateName = Literal["ok", "degraded", "down"]


class DependencyStatus(ApiModel):
    state: DependencyStateName
    needed_by: list[str] = Field(description="What the edge cannot do while this is down.")


class DependencyDetail(DependencyStatus):
    detail: str = Field(description="What the last check saw.")
    latency_ms: int = Field(description="How long the last check took.")


class StatusResponse(ApiModel):
    """The edge's dependencies as last checked (every TOKEN_STATUS_INTERVAL_S)."""

    status: Literal["ok", "degraded"]
    checked_at: int = Field(description="When the checks ran, epoch ms.")
    dependencies: dict[str, DependencyStatus]


class OperatorStatusResponse(StatusResponse):
    dependencies: dict[str, DependencyDetail]  # type: ignore[assignment]


MAX_BAN_S = 365 * 24 * 3600


class BanRequest(ApiModel):
    """Ban a visitor: name them by a participant `identity` or by their `visitorTag`; a
    YouTube or Twitch chat author by their platform `identity`."""

    identity: str | None = Field(
        default=None,
        max_length=128,
        description="A viewer identity (`viewer_<visitorTag>_<suffix>`) whose visitor to ban, "
        "or a platform chat author's identity (`twitch:<user id>`, `youtube:<channel id>`: "
        "a platform message's `authorIdentity`).",
    )
    visitor_tag: str | None = Field(
        default=None, pattern=r"^[a-z0-9]{8,32}$", description="The visitor tag to ban."
    )
    reason: Annotated[str, Field(max_length=1200), _clean_between(0, 300)] = ""
    duration_s: int | None = Field(
        default=None,
        gt=0,
        le=MAX_BAN_S,
        description="How long the ban lasts (seconds); absent: permanent.",
    )
    scope: Literal["visitor", "network"] = Field(
        default="visitor",
        description="`visitor` bans the visitor (every token of theirs); `network` also bans "
        "the network the edge last saw them come from (IPv4 address or IPv6 /64), so a client "
        "without their cookie is refused too. The network part lasts `durationS`, at most "
        "TOKEN_NETWORK_BAN_MAX_S. Not for a platform chat author (a 422).",
    )


class BanInfo(ApiModel):
    visitor_tag: str = Field(
        description="The banned visitor's tag; empty for a platform chat author (named by "
        "`identity`, which is what DELETE takes then)"
    )
    identity: str
    reason: ShortText
    created_at: int = Field(description="epoch ms")
    expires_at: int = Field(description="epoch ms; 0 = permanent")
    scope: Literal["visitor", "network"]
    network: str = Field(description="scope network: the banned network; else empty")
    network_expires_at: int = Field(
        description="epoch ms the network part lifts; 0 when the scope is visitor"
    )


class BanList(ApiModel):
    bans: list[BanInfo]
