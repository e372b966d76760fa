// Wire types shared with the edge (JSON, camelCase) and their runtime validators.
// Everything that arrives over the network is checked here before the UI touches it.
// The Python side's models are in wire/schema.json (generated; tests/wire.test.ts holds these
// parsers to it, so a field renamed on either side fails a test).

export interface AppConfig {
  roomName: string;
  title: string;
  avatars: string[];
  chatTopic: string;
  stageTopic: string;
  maxNameLength: number;
  maxChatLength: number;
  avatarIdentities: string[];
  layout: Layout;
  showState: ShowState;
}

/** Where the host stands on the stage (the operator chooses; see styles.css `[data-layout]`). */
export type Layout = "corner" | "side" | "center" | "visual-only" | "host-only";
export const LAYOUTS: readonly Layout[] = ["corner", "side", "center", "visual-only", "host-only"];
export const DEFAULT_LAYOUT: Layout = "corner";
export type ShowState = "live" | "ended";

export function parseLayout(v: unknown): Layout | null {
  return typeof v === "string" && (LAYOUTS as readonly string[]).includes(v) ? (v as Layout) : null;
}

export interface TokenResponse {
  token: string;
  url: string;
  roomName: string;
  agentName: string;
  identity: string;
}

export type ChatKind = "viewer" | "host" | "system";

export type Platform = "youtube" | "twitch";
export const PLATFORMS: readonly Platform[] = ["youtube", "twitch"];
export const PLATFORM_NAMES: Record<Platform, string> = { youtube: "YouTube", twitch: "Twitch" };

/** Where a line from YouTube's or Twitch's own chat came from (page chat has none). */
export interface ChatSource {
  platform: Platform;
  userId: string;
  messageId: string;
  /** broadcaster, moderator, member, subscriber, vip (unknown ones dropped) */
  roles: string[];
  /** message, super_chat, membership, subscription, cheer */
  event: string;
  /** as the platform shows it ("$5.00", "100 bits"), or "" */
  amount: string;
}

export interface ChatMessage {
  id: string;
  room: string;
  authorIdentity: string;
  authorName: string;
  avatar: string;
  body: string;
  kind: ChatKind;
  createdAt: number;
  /** only on lines from a platform's chat */
  source?: ChatSource;
}

export type VisualKind = "screenshot" | "clip" | "backdrop";

export interface StageVisual {
  id: string;
  room: string;
  kind: VisualKind;
  url: string;
  sourceUrl: string;
  title: string;
  summary: string;
  topic: string;
  createdAt: number;
  expiresAt: number;
}

export type ChatPacket =
  | { type: "message"; message: ChatMessage; seq: number }
  | { type: "rejected"; messageId: string; reason: string }
  | { type: "removed"; messageId: string };

type Obj = Record<string, unknown>;

export const isObject = (v: unknown): v is Obj =>
  typeof v === "object" && v !== null && !Array.isArray(v);

export const str = (v: unknown, fallback = ""): string => (typeof v === "string" ? v : fallback);
export const num = (v: unknown, fallback = 0): number =>
  typeof v === "number" && Number.isFinite(v) ? v : fallback;
export const strList = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === "string" && x.length > 0) : [];

export const DEFAULT_CONFIG: AppConfig = {
  roomName: "",
  title: "Livestage",
  avatars: ["fox", "owl", "cat", "robot", "panda", "frog"],
  chatTopic: "anam-live-chat",
  stageTopic: "anam-stage-visual",
  maxNameLength: 32,
  maxChatLength: 500,
  avatarIdentities: ["anam-avatar-host", "avatar-host"],
  layout: DEFAULT_LAYOUT,
  showState: "live",
};

/** Lenient: missing fields fall back to the documented defaults. */
export function parseConfig(v: unknown): AppConfig {
  if (!isObject(v)) throw new Error("config is not an object");
  const d = DEFAULT_CONFIG;
  const avatars = strList(v.avatars);
  const ids = strList(v.avatarIdentities);
  const posInt = (x: unknown, f: number) => {
    const n = num(x, f);
    return n >= 1 ? Math.floor(n) : f;
  };
  return {
    roomName: str(v.roomName, d.roomName),
    title: str(v.title) || d.title,
    avatars: avatars.length ? avatars : d.avatars,
    chatTopic: str(v.chatTopic) || d.chatTopic,
    stageTopic: str(v.stageTopic) || d.stageTopic,
    maxNameLength: posInt(v.maxNameLength, d.maxNameLength),
    maxChatLength: posInt(v.maxChatLength, d.maxChatLength),
    avatarIdentities: ids.length ? ids : d.avatarIdentities,
    layout: parseLayout(v.layout) ?? d.layout,
    showState: v.showState === "ended" ? "ended" : "live",
  };
}

export function parseTokenResponse(v: unknown): TokenResponse {
  if (!isObject(v) || typeof v.token !== "string" || typeof v.url !== "string" || !v.token) {
    throw new Error("malformed token response");
  }
  return {
    token: v.token,
    url: v.url,
    roomName: str(v.roomName),
    agentName: str(v.agentName),
    identity: str(v.identity),
  };
}

const CHAT_KINDS: readonly string[] = ["viewer", "host", "system"];
const PLATFORM_ROLES: readonly string[] = ["broadcaster", "moderator", "member", "subscriber", "vip"];
const PLATFORM_EVENTS: readonly string[] = ["message", "super_chat", "membership", "subscription", "cheer"];

/** A message's `source`; undefined when absent or not understood (the line shows as page chat). */
export function parseChatSource(v: unknown): ChatSource | undefined {
  if (!isObject(v) || !PLATFORMS.includes(v.platform as Platform)) return undefined;
  const event = str(v.event);
  return {
    platform: v.platform as Platform,
    userId: str(v.userId),
    messageId: str(v.messageId),
    roles: strList(v.roles).filter((role) => PLATFORM_ROLES.includes(role)),
    event: PLATFORM_EVENTS.includes(event) ? event : "message",
    amount: str(v.amount),
  };
}
const VISUAL_KINDS: readonly string[] = ["screenshot", "clip", "backdrop"];

export function parseChatMessage(v: unknown): ChatMessage | null {
  if (!isObject(v)) return null;
  const id = str(v.id);
  const body = str(v.body);
  if (!id || typeof v.body !== "string") return null;
  const kind = CHAT_KINDS.includes(str(v.kind)) ? (v.kind as ChatKind) : "viewer";
  return {
    id,
    room: str(v.room),
    authorIdentity: str(v.authorIdentity),
    authorName: str(v.authorName),
    avatar: str(v.avatar),
    body,
    kind,
    createdAt: num(v.createdAt, Date.now()),
    source: parseChatSource(v.source),
  };
}

/** The id in a `POST /api/chat` 202 body; null when there is none. */
export function parseChatAccepted(v: unknown): string | null {
  return isObject(v) && typeof v.id === "string" && v.id ? v.id : null;
}

/** One answer of `GET /api/chat/history` (see `HistoryResponse` in the wire schema). */
export interface HistoryPage {
  /** oldest first; with `after`: in the order they were sent to the room */
  messages: ChatMessage[];
  /** more were stored after the last one: ask again after its id */
  more: boolean;
  /** the `after` message is no longer in history: these are the newest, some before them are missing */
  gap: boolean;
}

/** `GET /api/chat/history`: the valid messages (malformed ones are dropped) and the paging flags. */
export function parseChatHistory(v: unknown): HistoryPage {
  const list = isObject(v) && Array.isArray(v.messages) ? v.messages : [];
  return {
    messages: list.map(parseChatMessage).filter((m): m is ChatMessage => m !== null),
    more: isObject(v) && v.more === true,
    gap: isObject(v) && v.gap === true,
  };
}

export function parseChatPacket(v: unknown): ChatPacket | null {
  if (!isObject(v)) return null;
  if (v.type === "message") {
    const message = parseChatMessage(v.message);
    // seq: the message's place in the room's approval order (0 or absent: none)
    const seq = num(v.seq);
    return message ? { type: "message", message, seq: Number.isInteger(seq) && seq > 0 ? seq : 0 } : null;
  }
  if (v.type === "rejected") {
    const messageId = str(v.messageId);
    return messageId ? { type: "rejected", messageId, reason: str(v.reason) } : null;
  }
  if (v.type === "removed") {
    const messageId = str(v.messageId);
    return messageId ? { type: "removed", messageId } : null;
  }
  return null;
}

export function parseStageVisual(v: unknown): StageVisual | null {
  if (!isObject(v)) return null;
  const id = str(v.id);
  const url = str(v.url);
  const kind = str(v.kind);
  if (!id || !url || !VISUAL_KINDS.includes(kind)) return null;
  return {
    id,
    room: str(v.room),
    kind: kind as VisualKind,
    url,
    sourceUrl: str(v.sourceUrl),
    title: str(v.title),
    summary: str(v.summary),
    topic: str(v.topic),
    createdAt: num(v.createdAt),
    expiresAt: num(v.expiresAt),
  };
}

/** An operator switched the stage layout (`StageLayoutEvent` on the stage topic). */
export interface StageLayoutEvent {
  type: "layout";
  id: string;
  room: string;
  layout: Layout;
  createdAt: number;
}

/** An operator ended or started the show (`ShowEvent` on the stage topic). */
export interface ShowEvent {
  type: "show";
  id: string;
  room: string;
  state: ShowState;
  reason: string;
  createdAt: number;
}

/** What the stage topic carries: a visual (no `type`), a layout switch or a show state. */
export type StagePacket = { type: "visual"; visual: StageVisual } | StageLayoutEvent | ShowEvent;

export function parseStageLayoutEvent(v: unknown): StageLayoutEvent | null {
  if (!isObject(v) || v.type !== "layout") return null;
  const id = str(v.id);
  const layout = parseLayout(v.layout);
  if (!id || !layout) return null;
  return { type: "layout", id, room: str(v.room), layout, createdAt: num(v.createdAt) };
}

export function parseShowEvent(v: unknown): ShowEvent | null {
  if (!isObject(v) || v.type !== "show") return null;
  const id = str(v.id);
  if (!id || (v.state !== "live" && v.state !== "ended")) return null;
  return { type: "show", id, room: str(v.room), state: v.state, reason: str(v.reason), createdAt: num(v.createdAt) };
}

/** One stage-topic packet; null when it is none of the three (an unknown `type` included). */
export function parseStagePacket(v: unknown): StagePacket | null {
  if (!isObject(v)) return null;
  if (v.type === undefined) {
    const visual = parseStageVisual(v);
    return visual ? { type: "visual", visual } : null;
  }
  if (v.type === "layout") return parseStageLayoutEvent(v);
  if (v.type === "show") return parseShowEvent(v);
  return null;
}

/** Decode a LiveKit data payload as UTF-8 JSON; null when it is not JSON. */
export function decodeJson(payload: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(payload));
  } catch {
    return null;
  }
}
