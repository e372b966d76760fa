"""Wire models: what crosses NATS, the LiveKit data channel and the HTTP edge.

JSON, camelCase on the wire (snake_case in Python), validated strictly: unknown fields are
refused, strings have length limits, enums are closed, timestamps are epoch milliseconds within a
sane range, and user-visible text must already be clean (see `livestage.text`). Encode with
`model.to_json()` and decode with `Model.from_json(data)`; both sides use the wire names.
"""

from __future__ import annotations

import hashlib
import time
import uuid
import zlib
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
)
from pydantic.alias_generators import to_camel

from livestage.identity import BAN_KEY_PATTERN
from livestage.subjects import ROOM_NAME_PATTERN
from livestage.text import is_clean

MIN_EPOCH_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
MAX_EPOCH_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z

MAX_NAME_CHARS = 32
MAX_CHAT_CHARS = 500
MAX_SPOKEN_CHARS = 4000


def now_ms() -> int:
    """The current time as epoch milliseconds (the wire's timestamp unit)."""
    return time.time_ns() // 1_000_000


def new_id() -> str:
    """A fresh message id: 32 lowercase hex characters."""
    return uuid.uuid4().hex


def _must_be_clean(value: str) -> str:
    if not is_clean(value):
        raise ValueError(
            "must be normalized text: no control, bidi or zero-width characters, "
            "no leading, trailing or repeated whitespace"
        )
    return value


EpochMs = Annotated[int, Field(ge=MIN_EPOCH_MS, le=MAX_EPOCH_MS, description="epoch ms")]
MESSAGE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MessageId = Annotated[str, StringConstraints(pattern=MESSAGE_ID_PATTERN)]
RoomName = Annotated[str, StringConstraints(pattern=rf"^{ROOM_NAME_PATTERN.pattern}$")]
Identity = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:@-]{1,128}$")]
DisplayName = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS), AfterValidator(_must_be_clean)
]
AvatarId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,32}$")]
ChatBody = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_CHAT_CHARS), AfterValidator(_must_be_clean)
]
ShortText = Annotated[str, StringConstraints(max_length=300)]
LongText = Annotated[str, StringConstraints(max_length=MAX_SPOKEN_CHARS)]
HttpUrl = Annotated[str, StringConstraints(max_length=2048, pattern=r"^(https?://|/)\S*$")]
VisitorTag = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]{8,32}$")]
"""The opaque, server-derived tag of a visitor (see `livestage.identity`); never the visitor id."""
BanKey = Annotated[str, StringConstraints(pattern=BAN_KEY_PATTERN)]
"""Who a ban bans: a visitor tag, or a platform chat author's identity (`twitch:<user id>`)."""


class WireModel(BaseModel):
    """Base of every wire model: camelCase aliases, strict types, no unknown fields."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="forbid",
        strict=True,
        frozen=True,
    )

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()

    def to_wire(self) -> dict[str, object]:
        return self.model_dump(mode="json", by_alias=True)

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        return cls.model_validate_json(data)


Platform = Literal["youtube", "twitch"]
"""A streaming platform whose live chat `services/chat-bridge` brings in."""
PLATFORM_NAMES: dict[str, str] = {"youtube": "YouTube", "twitch": "Twitch"}
"""How each platform is named to people (the host says "Marta on Twitch")."""
PlatformRole = Literal["broadcaster", "moderator", "member", "subscriber", "vip"]
PlatformEvent = Literal["message", "super_chat", "membership", "subscription", "cheer"]
PLATFORM_EVENT_NAMES: dict[str, str] = {
    "super_chat": "Super Chat",
    "membership": "membership",
    "subscription": "subscription",
    "cheer": "cheer",
}
"""How each platform event that is not a plain message is named to people (the host thanks
"for the Super Chat"; the page labels it)."""
PLATFORM_USER_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class ChatSource(WireModel):
    """Where a chat line from a platform's own chat came from (page chat has none).

    `user_id` is the platform's stable id of the author (a YouTube channel id, a Twitch user
    id); the author's identity is `livestage.identity.platform_identity(platform, user_id)`.
    `message_id` is the platform's id of the message (what its deletions name). `event` is
    what kind of chat item it is: a plain message, or something the host may thank (a Super
    Chat, a new member or subscriber, a cheer) with `amount` as the platform displays it
    ("$5.00", "100 bits", "Tier 1").
    """

    platform: Platform
    user_id: Annotated[str, StringConstraints(pattern=PLATFORM_USER_ID_PATTERN)]
    message_id: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    roles: list[PlatformRole] = Field(default_factory=list, max_length=5)
    event: PlatformEvent = "message"
    amount: Annotated[str, StringConstraints(max_length=32), AfterValidator(_must_be_clean)] = ""


class ChatMessage(WireModel):
    """One chat line, as stored in history and shown to viewers.

    `source` is set only for lines from a platform's chat (YouTube, Twitch) and left out of the
    JSON when absent, so page chat is byte-for-byte what it always was.
    """

    id: MessageId
    room: RoomName
    author_identity: Identity
    author_name: DisplayName
    avatar: AvatarId
    body: ChatBody
    kind: Literal["viewer", "host", "system"]
    created_at: EpochMs
    source: ChatSource | None = Field(default=None, exclude_if=lambda source: source is None)


class ModerationVerdict(WireModel):
    """Moderation's decision on one chat message (on `chat.rejected.<room>` with the reason)."""

    message_id: MessageId
    room: RoomName
    author_identity: Identity
    verdict: Literal["approved", "rejected"]
    reason: ShortText = ""
    checks: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        default_factory=list, max_length=16
    )
    decided_at: EpochMs


class SpokenTurn(WireModel):
    """What the host said in one turn, and which chat messages it answered.

    `speaker_name` / `speaker_identity` are how chat shows the turn (`kind: "host"`): the
    persona's name and the host agent's participant identity. `kind` says why it was said.
    """

    id: MessageId
    room: RoomName
    text: LongText
    reply_to: list[MessageId] = Field(default_factory=list, max_length=8)
    interrupted: bool = False
    speaker_name: DisplayName = "Host"
    speaker_identity: Identity = "host"
    kind: Literal["reply", "monologue", "say"] = "reply"
    started_at: EpochMs
    ended_at: EpochMs


class StageVisual(WireModel):
    """What is on screen: a screenshot, a short scrolling clip or a generated backdrop."""

    id: MessageId
    room: RoomName
    kind: Literal["screenshot", "clip", "backdrop"]
    url: HttpUrl
    source_url: Annotated[str, StringConstraints(max_length=2048)] = ""
    title: ShortText = ""
    summary: Annotated[str, StringConstraints(max_length=2000)] = ""
    topic: ShortText = ""
    created_at: EpochMs
    expires_at: EpochMs


class PresenceEvent(WireModel):
    """A room or participant coming or going, from LiveKit's webhooks."""

    id: MessageId
    room: RoomName
    event: Literal["participant_joined", "participant_left", "room_started", "room_finished"]
    identity: Annotated[str, StringConstraints(max_length=128)] = ""
    name: Annotated[str, StringConstraints(max_length=128)] = ""
    participant_kind: Literal["", "standard", "agent", "ingress", "egress", "sip"] = ""
    created_at: EpochMs


class HostCommand(WireModel):
    """An operator's instruction to the host (`host.control.<room>`).

    `say` speaks `text` verbatim; `persona` switches to the persona named in `text`.
    `handover` comes from a draining host-agent worker, not an operator: the job whose id is
    `text` says nothing new, lets the turn under way end, and ends (reason `shutdown`) so that
    another worker takes the room.
    """

    id: MessageId
    room: RoomName
    action: Literal["pause", "resume", "say", "skip", "persona", "handover"]
    text: LongText = ""
    created_at: EpochMs


class HostJobEvent(WireModel):
    """A host agent job's life (`host.job.<room>`): started, live (a viewer came), ended.

    `reason` says why it ended (`no_viewer`, `viewers_left`, `crashed`, `shutdown`, `operator`
    (the show was ended), ...). While live: `fallback` (a backend failed and the local one took
    over: `voice`/`avatar` are the backends now, `reason` names what failed), `released` (paused
    for `HOST_PAUSE_RELEASE_S`: the paid sessions were closed) and `rebuilt` (resumed after a
    release: the sessions are back).
    `usage` carries counted usage and estimated spend at the end (names in `livestage.metrics`).
    """

    id: MessageId
    room: RoomName
    job_id: Annotated[str, StringConstraints(max_length=128)]
    event: Literal["started", "live", "fallback", "released", "rebuilt", "ended"]
    reason: ShortText = ""
    voice: Annotated[str, StringConstraints(max_length=64)] = ""
    avatar: Annotated[str, StringConstraints(max_length=64)] = ""
    usage: dict[Annotated[str, StringConstraints(max_length=64)], float] = Field(
        default_factory=dict, max_length=32
    )
    created_at: EpochMs


class HostWorkerEvent(WireModel):
    """A host agent worker registered with LiveKit (`host.worker.<agent name>`).

    LiveKit does not offer a dispatch made while no worker could take it to a worker that
    registers later; the edge's reconciler hears this and replaces such dispatches.
    """

    id: MessageId
    agent_name: RoomName  # the subject's last token, so the same rule as a room name
    worker_id: Annotated[str, StringConstraints(max_length=128)]
    event: Literal["registered"] = "registered"
    created_at: EpochMs


class ChatRemoval(WireModel):
    """An operator removed one message (`chat.removed.<room>`), or a platform's moderators
    did (`services/chat-bridge`). Its id is `removal_id(message_id)`."""

    id: MessageId
    room: RoomName
    message_id: MessageId
    reason: ShortText = ""
    created_at: EpochMs


def removal_id(message_id: str) -> str:
    """The id of the removal of `message_id`: the same from every remover, so removing one
    message twice (an operator and the platform's moderators) stores one removal."""
    return hashlib.sha256(f"remove:{message_id}".encode()).hexdigest()[:32]


class BanEvent(WireModel):
    """An operator banned or unbanned a visitor (`chat.banned.<room>` / `chat.unbanned.<room>`).

    The ban itself lives in Redis (`livestage.bans`); this event lets services act on it (remove
    the visitor's participants from the room). `expires_at` 0 means permanent. `visitor_tag` is
    the ban's key: a visitor tag, or for a platform chat author (who has no participant in the
    room) their platform identity (`livestage.identity.ban_key_of`).
    """

    id: MessageId
    room: RoomName
    visitor_tag: BanKey
    identity: Annotated[str, StringConstraints(max_length=128)] = ""
    reason: ShortText = ""
    expires_at: int = Field(0, ge=0, le=MAX_EPOCH_MS)
    created_at: EpochMs


class StageCommand(WireModel):
    """An operator's instruction to the stage producer (`stage.command.<room>`).

    `capture` shows `url` now (`kind` screenshot or clip), `backdrop` draws one for `prompt`,
    `pin` holds visual `visual_id` on screen until `unpin`.
    """

    id: MessageId
    room: RoomName
    action: Literal["capture", "backdrop", "pin", "unpin"]
    url: Annotated[str, StringConstraints(max_length=2048)] = ""
    kind: Literal["screenshot", "clip"] = "screenshot"
    prompt: ShortText = ""
    visual_id: Annotated[str, StringConstraints(max_length=64)] = ""
    created_at: EpochMs


Layout = Literal["corner", "side", "center", "visual-only", "host-only"]
LAYOUTS: tuple[Layout, ...] = ("corner", "side", "center", "visual-only", "host-only")
DEFAULT_LAYOUT: Layout = "corner"
"""Where the host stands on the stage: `corner` (lower right, about 45% of the stage height, the
visual fully readable), `side` (the host in a column beside the visual), `center` (the host in
front of the visual), `visual-only`, `host-only`."""

ShowState = Literal["live", "ended"]


class StageLayoutEvent(WireModel):
    """The stage layout an operator chose (`stage.layout.<room>`; also the packet on the stage
    data topic, told apart from a `StageVisual` by `type`)."""

    type: Literal["layout"] = "layout"
    id: MessageId
    room: RoomName
    layout: Layout
    created_at: EpochMs


VoiceBackendName = Literal["openai-realtime", "pipeline", "local"]
AvatarBackendName = Literal["anam", "local", "none"]
SearchBackendName = Literal["sources", "searxng", "gemini"]
BackdropBackendName = Literal["procedural", "gemini"]
PersonaName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,40}$")]
"""A persona file's stem in the host agent's HOST_PERSONA_DIR (`nova`, `sage`)."""
ShowTitle = Annotated[
    str, StringConstraints(min_length=1, max_length=120), AfterValidator(_must_be_clean)
]
TopicName = Annotated[
    str, StringConstraints(min_length=1, max_length=80), AfterValidator(_must_be_clean)
]
BlockedWord = Annotated[
    str, StringConstraints(min_length=1, max_length=40), AfterValidator(_must_be_clean)
]
YouTubeVideoId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{6,20}$")]
TwitchChannelId = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,20}$")]


class ShowStageConfig(WireModel):
    """What a show's stage draws from; empty or null: the stage producer's own settings."""

    topics: list[TopicName] = Field(
        default_factory=list,
        max_length=50,
        description="Topic names of the stage producer's sources file this show uses (the "
        "others are not shown); empty: every topic.",
    )
    search: SearchBackendName | None = Field(
        None, description="Search provider; null: STAGE_SEARCH."
    )
    backdrops: BackdropBackendName | None = Field(
        None, description="Backdrop maker; null: STAGE_BACKDROP."
    )


class ShowModerationConfig(WireModel):
    """Moderation of one show's chat, on top of the deployment's checks."""

    blocked_words: list[BlockedWord] = Field(
        default_factory=list,
        max_length=200,
        description="Words refused in this show's chat (whole words, any case), besides the "
        "deployment's block list.",
    )
    room_rate: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="Most messages per minute this show's chat approves (the room cap); "
        "null: MODERATION_ROOM_RATE.",
    )


class ShowPlatformChat(WireModel):
    """The platform chats (#16's chat-bridge) that feed this show."""

    youtube_video_id: YouTubeVideoId | None = None
    twitch_channel_id: TwitchChannelId | None = None


class ShowConfig(WireModel):
    """A show: a room with its configuration (`livestage.shows.ShowStore`; `/api/operator/shows`).

    Null backends and persona mean the deployment's settings (HOST_VOICE, HOST_AVATAR,
    HOST_PERSONA_FILE). Whether it is live and its layout are the show's state, kept beside
    it (`livestage.shows.Show`)."""

    room: RoomName
    title: ShowTitle
    persona: PersonaName | None = None
    voice: VoiceBackendName | None = None
    avatar: AvatarBackendName | None = None
    stage: ShowStageConfig = Field(default_factory=ShowStageConfig)
    moderation: ShowModerationConfig = Field(default_factory=ShowModerationConfig)
    platform_chat: ShowPlatformChat = Field(default_factory=ShowPlatformChat)
    daily_cap_usd: float | None = Field(
        None, ge=0, le=100_000, description="Spend cap per UTC day; null: HOST_COST_DAILY_CAP_USD."
    )
    memory: bool = Field(
        True,
        description="The host remembers this show's regulars (reads and writes their memory "
        "cards); false: neither, whatever MEMORY_ENABLED says.",
    )
    created_at: EpochMs
    updated_at: EpochMs


class ShowEvent(WireModel):
    """An operator ended or started the show (`room.show.<room>`; also the packet on the stage
    data topic). Ended: the host job ends (reason `operator`), the stage producer stops for the
    room, the pages say "The show has ended", and no host is dispatched until `live` again.
    A deleted show is `ended`, reason `deleted`."""

    type: Literal["show"] = "show"
    id: MessageId
    room: RoomName
    state: ShowState
    reason: ShortText = ""
    created_at: EpochMs


class ShowConfigEvent(WireModel):
    """A show was created, changed or deleted (`room.config.<room>`; NATS only, never sent to a
    page: it holds moderation word lists). `config` null: deleted. Services that only talk to
    NATS (the stage producer) follow `room.config.*` from the last event per room."""

    id: MessageId
    room: RoomName
    config: ShowConfig | None
    created_at: EpochMs


EgressStatus = Literal["starting", "active", "ending", "complete", "failed", "aborted"]


class EgressEvent(WireModel):
    """A LiveKit web egress of the room's `/stage` page to an RTMP ingest (`room.egress.<room>`).

    `target` is the RTMP URL without the stream key (the key is a secret and never travels);
    `error` is LiveKit's error text when `status` is `failed` or `aborted`."""

    id: MessageId
    room: RoomName
    egress_id: Annotated[str, StringConstraints(max_length=128)]
    status: EgressStatus
    target: Annotated[str, StringConstraints(max_length=2048)] = ""
    error: ShortText = ""
    started_at: int = Field(0, ge=0, le=MAX_EPOCH_MS)
    created_at: EpochMs


class ChatMessageEvent(WireModel):
    """Data-channel packet on the chat topic: a message to show."""

    type: Literal["message"] = "message"
    message: ChatMessage
    seq: int = Field(
        0,
        ge=0,
        description="The message's place in its room's approval order: the JetStream stream "
        "sequence of its `chat.approved` message. Several chat-history instances send "
        "concurrently, so packets may arrive out of that order; a page places a message by "
        "`seq` among those it holds. 0: no place (host lines, which come from `host.spoken`): "
        "shown where it arrives.",
    )


class ChatRejectedEvent(WireModel):
    """Data-channel packet on the chat topic, to the author only: their message was refused."""

    type: Literal["rejected"] = "rejected"
    message_id: MessageId
    reason: ShortText


class ChatRemovedEvent(WireModel):
    """Data-channel packet on the chat topic, to everyone: hide this message now."""

    type: Literal["removed"] = "removed"
    message_id: MessageId


MAX_BATCH_EVENTS = 500


class ChatBatchEvent(WireModel):
    """Data-channel packet on the chat topic: several messages (and removals) at once, in
    order. chat-history gathers what a room gets within CHAT_FANOUT_WINDOW_MS into one packet
    (split to stay under LiveKit's reliable packet size); a reader handles each event as if it
    had come alone. On the wire a batch usually goes compressed: bytes 00 01 (version 1), then
    this JSON in raw deflate (RFC 1951), about a fifth of the bytes (`DEFLATED_BATCH_PREFIX`)."""

    type: Literal["batch"] = "batch"
    events: list[ChatMessageEvent | ChatRemovedEvent] = Field(
        min_length=1, max_length=MAX_BATCH_EVENTS
    )


ChatEvent = Annotated[
    ChatMessageEvent | ChatRejectedEvent | ChatRemovedEvent | ChatBatchEvent,
    Field(discriminator="type"),
]
CHAT_EVENT_ADAPTER: TypeAdapter[
    ChatMessageEvent | ChatRejectedEvent | ChatRemovedEvent | ChatBatchEvent
] = TypeAdapter(ChatEvent)

ChatSingleEvent = ChatMessageEvent | ChatRejectedEvent | ChatRemovedEvent


DEFLATED_BATCH_PREFIX = b"\x00\x01"
"""The first bytes of a compressed chat packet (version 1): the rest is a `ChatBatchEvent`'s
JSON compressed with raw deflate (RFC 1951: zlib with wbits -15, the browser's
`DecompressionStream("deflate-raw")`). Any other chat packet is JSON (a NUL byte never starts
JSON); a single message or removal always goes as plain JSON."""
MAX_INFLATED_BYTES = 1024 * 1024
"""The most a compressed chat packet may inflate to (a packet that inflates further is refused:
no deflate bomb)."""


def deflate_packet(packet: bytes) -> bytes:
    """A batch packet's JSON as a compressed chat packet (`DEFLATED_BATCH_PREFIX` + raw deflate)."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return DEFLATED_BATCH_PREFIX + compressor.compress(packet) + compressor.flush()


def inflate_packet(packet: bytes | str) -> bytes | str:
    """A chat packet's JSON: a compressed packet inflated, any other as it is. Raises
    ValueError for a compressed packet that is corrupt, cut short or inflates beyond
    `MAX_INFLATED_BYTES`."""
    if isinstance(packet, str) or not packet.startswith(DEFLATED_BATCH_PREFIX):
        return packet
    inflater = zlib.decompressobj(-15)
    try:
        data = inflater.decompress(packet[len(DEFLATED_BATCH_PREFIX) :], MAX_INFLATED_BYTES)
    except zlib.error as error:
        raise ValueError(f"compressed chat packet is corrupt: {error}") from error
    if not inflater.eof:
        if len(data) >= MAX_INFLATED_BYTES:
            raise ValueError(f"compressed chat packet inflates beyond {MAX_INFLATED_BYTES} bytes")
        raise ValueError("compressed chat packet is cut short")
    return data


def chat_events_of(packet: bytes | str) -> list[ChatSingleEvent]:
    """The events of one chat-topic packet, in order: a batch's events (also a compressed one,
    see `DEFLATED_BATCH_PREFIX`), else the packet itself. Raises pydantic's ValidationError for
    a packet that is not a chat event, ValueError for a corrupt compressed one."""
    event = CHAT_EVENT_ADAPTER.validate_json(inflate_packet(packet))
    if isinstance(event, ChatBatchEvent):
        return list(event.events)
    return [event]


class HistoryRequest(WireModel):
    """Request on `history.recent.<room>`: the newest `limit` messages, or with `after` the
    ones stored after that message (a reconnecting page catching up)."""

    room: RoomName
    limit: int = Field(50, ge=1, le=200)
    after: MessageId | None = None


class HistoryReply(WireModel):
    """Reply to a HistoryRequest: approved messages, oldest first (with `after`: in the order
    they were stored, which is the order they were sent to the room)."""

    messages: list[ChatMessage] = Field(default_factory=list, max_length=200)
    more: bool = Field(
        False, description="More messages follow the last one: ask again after its id."
    )
    gap: bool = Field(
        False,
        description="The `after` message is no longer in history (trimmed by count or age, "
        "or removed): these are the newest messages instead, and some between it and them "
        "are not shown.",
    )


class DeadLetter(WireModel):
    """A message a durable consumer gave up on, on `deadletter.<consumer>.<room>`
    (`livestage.deadletter`): everything needed to see why and to publish it again."""

    consumer: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    reason: Literal["exhausted", "invalid"]
    """`exhausted`: its last allowed delivery failed too; `invalid`: it never validates."""
    error: Annotated[str, StringConstraints(max_length=2000)]
    """The last error (exception type and text, or the validation errors)."""
    subject: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    room: RoomName
    headers: dict[str, str]
    """The original message's headers (Nats-Msg-Id, trace context)."""
    payload: str
    payload_encoding: Literal["utf-8", "base64"]
    deliveries: int = Field(ge=0)
    stream: Annotated[str, StringConstraints(max_length=64)]
    stream_seq: int = Field(ge=0)
    """The original's sequence in its stream (one dead letter per original and consumer)."""
    stored_at: EpochMs
    """When JetStream stored the original."""
    failed_at: EpochMs


WIRE_MODELS: tuple[type[WireModel], ...] = (
    ChatMessage,
    ModerationVerdict,
    SpokenTurn,
    StageVisual,
    PresenceEvent,
    HostCommand,
    HostJobEvent,
    HostWorkerEvent,
    ChatRemoval,
    BanEvent,
    StageCommand,
    ChatMessageEvent,
    ChatRejectedEvent,
    ChatRemovedEvent,
    HistoryRequest,
    HistoryReply,
    DeadLetter,
)
