// Chat: an id-deduplicating store (pure) and the DOM view of #chat-list.
// User text is only ever inserted with textContent.
import { ApiError, newClientId } from "./api";
import { avatarGlyph } from "./profile";
import {
  PLATFORM_NAMES,
  decodeJson,
  isObject,
  parseChatPacket,
  type ChatMessage,
  type ChatPacket,
  type ChatSource,
  type HistoryPage,
  type Platform,
} from "./types";

export type EntryStatus = "pending" | "shown" | "rejected";

export interface ChatEntry {
  message: ChatMessage;
  status: EntryStatus;
  /** The message's place in the room's approval order (chat-history's `seq`); 0: none. */
  seq: number;
}

/** The most events one batch packet may carry (chat-history's MAX_BATCH_EVENTS). */
const MAX_BATCH_EVENTS = 500;

/**
 * The packets one chat-topic payload carries, in order: a batch (`type: "batch"`, what
 * chat-history sends when several events fall in its fan-out window) gives each of its events
 * (unreadable ones skipped), any other packet itself; nothing when it is not a chat packet.
 */
export function chatPacketsOf(v: unknown): ChatPacket[] {
  if (isObject(v) && v.type === "batch") {
    if (!Array.isArray(v.events)) return [];
    return v.events
      .slice(0, MAX_BATCH_EVENTS)
      .map((event) => (isObject(event) && event.type === "rejected" ? null : parseChatPacket(event)))
      .filter((packet): packet is ChatPacket => packet !== null);
  }
  const packet = parseChatPacket(v);
  return packet ? [packet] : [];
}

/** The first bytes of a compressed chat packet, version 1 (chat-history's DEFLATED_BATCH_PREFIX). */
const DEFLATED_BATCH_PREFIX = [0x00, 0x01];
/** The most a compressed chat packet may inflate to (chat-history's MAX_INFLATED_BYTES). */
const MAX_INFLATED_BYTES = 1024 * 1024;

/**
 * The JSON one chat-topic payload carries: a compressed packet (`00 01` then a batch's JSON
 * compressed with raw deflate, what chat-history sends for a busy room) inflated, any other
 * payload as JSON; null when unreadable (corrupt, or inflating beyond MAX_INFLATED_BYTES).
 */
export async function decodeChatPayload(payload: Uint8Array): Promise<unknown> {
  if (!DEFLATED_BATCH_PREFIX.every((byte, i) => payload[i] === byte)) return decodeJson(payload);
  try {
    const body = payload.slice(DEFLATED_BATCH_PREFIX.length);
    const stream = new Blob([body]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
    const reader = stream.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > MAX_INFLATED_BYTES) {
        await reader.cancel();
        return null;
      }
      chunks.push(value);
    }
    const joined = new Uint8Array(size);
    let at = 0;
    for (const chunk of chunks) {
      joined.set(chunk, at);
      at += chunk.length;
    }
    return decodeJson(joined);
  } catch {
    return null; // corrupt or cut short
  }
}

export type AddResult =
  | { kind: "added"; entry: ChatEntry; index: number; evicted: string[] }
  | { kind: "updated"; entry: ChatEntry }
  | { kind: "duplicate" };

export type RemoveResult = { kind: "removed"; index: number } | { kind: "unknown" };

/** How many removed ids are remembered (a removal may overtake its message, or history). */
const REMEMBERED_REMOVALS = 500;

/**
 * Ordered set of chat messages keyed by id: a live message with a `seq` (its place in the
 * room's approval order) goes after the last one held with a smaller `seq` (several
 * chat-history instances send at once, so packets can arrive out of order; a message without
 * one stops the search: history and host lines stay where they are); one without (history,
 * host lines, the author's own echo) by createdAt, then arrival.
 * - the same id is only ever added once (history, live packets and optimistic echo overlap);
 * - a pending echo is upgraded to "shown" when the real message arrives;
 * - a rejection can arrive before the echo is added: it is remembered and applied then;
 * - a removed id is taken out and kept out, also when the removal arrives before the message
 *   (a live packet or a history load that raced the removal).
 */
export class ChatStore {
  private readonly entries: ChatEntry[] = [];
  private readonly byId = new Map<string, ChatEntry>();
  private readonly rejectedEarly = new Map<string, string>();
  private readonly removed = new Set<string>();

  constructor(readonly capacity = 200) {}

  get size(): number {
    return this.entries.length;
  }

  list(): readonly ChatEntry[] {
    return this.entries;
  }

  get(id: string): ChatEntry | undefined {
    return this.byId.get(id);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  isRemoved(id: string): boolean {
    return this.removed.has(id);
  }

  add(message: ChatMessage, status: EntryStatus = "shown", seq = 0): AddResult {
    if (this.removed.has(message.id)) return { kind: "duplicate" };
    const existing = this.byId.get(message.id);
    if (existing) {
      if (existing.status === "pending" && status === "shown") {
        existing.status = "shown";
        existing.message = message;
        existing.seq ||= seq;
        return { kind: "updated", entry: existing };
      }
      return { kind: "duplicate" };
    }
    if (this.rejectedEarly.has(message.id)) {
      status = "rejected";
      this.rejectedEarly.delete(message.id);
    }
    const entry: ChatEntry = { message, status, seq };
    let index = this.entries.length;
    if (seq > 0) {
      while (index > 0 && this.entries[index - 1].seq > seq) index--;
    } else {
      while (index > 0 && this.entries[index - 1].message.createdAt > message.createdAt) index--;
    }
    this.entries.splice(index, 0, entry);
    this.byId.set(message.id, entry);
    const evicted: string[] = [];
    while (this.entries.length > this.capacity) {
      const old = this.entries.shift()!;
      this.byId.delete(old.message.id);
      evicted.push(old.message.id);
      index--;
    }
    if (index < 0) {
      // the new message itself was the oldest and got evicted
      return { kind: "duplicate" };
    }
    return { kind: "added", entry, index, evicted };
  }

  /** Takes a message out for good (an operator removed it); remembers the id either way. */
  remove(id: string): RemoveResult {
    this.removed.add(id);
    if (this.removed.size > REMEMBERED_REMOVALS) {
      const first = this.removed.values().next().value;
      if (first !== undefined) this.removed.delete(first);
    }
    const entry = this.byId.get(id);
    if (!entry) return { kind: "unknown" };
    const index = this.entries.indexOf(entry);
    this.entries.splice(index, 1);
    this.byId.delete(id);
    return { kind: "removed", index };
  }

  /** Marks a message rejected. Returns the entry if it is known, else remembers the id. */
  reject(id: string, reason = ""): ChatEntry | undefined {
    const entry = this.byId.get(id);
    if (entry) {
      entry.status = "rejected";
      return entry;
    }
    this.rejectedEarly.set(id, reason);
    if (this.rejectedEarly.size > 100) {
      const first = this.rejectedEarly.keys().next().value;
      if (first !== undefined) this.rejectedEarly.delete(first);
    }
    return undefined;
  }
}

export function formatTime(ms: number): string {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** Each platform's mark, drawn inline (never a remote image): a background and a glyph. */
const PLATFORM_MARKS: Record<Platform, { fill: string; glyph: string }> = {
  // a play button
  youtube: { fill: "#ff0033", glyph: "M9.5 7.5v9l7-4.5z" },
  // a speech bubble with two bars
  twitch: { fill: "#9146ff", glyph: "M7 6h11v7.5l-3 3h-3l-2 2v-2H7zM11 9v3.5h1.5V9zm3.5 0v3.5H16V9z" },
};

/** A platform's mark as an inline SVG (decorative: the badge beside the name says it in text). */
export function platformMark(platform: Platform, doc: Document = document): SVGSVGElement {
  const mark = PLATFORM_MARKS[platform];
  const svg = doc.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", `platform-mark platform-${platform}`);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const disc = doc.createElementNS(SVG_NS, "circle");
  disc.setAttribute("cx", "12");
  disc.setAttribute("cy", "12");
  disc.setAttribute("r", "12");
  disc.setAttribute("fill", mark.fill);
  const glyph = doc.createElementNS(SVG_NS, "path");
  glyph.setAttribute("d", mark.glyph);
  glyph.setAttribute("fill", "#fff");
  glyph.setAttribute("fill-rule", "evenodd");
  svg.append(disc, glyph);
  return svg;
}

/** How the page labels a platform event (a line that is not a plain message). */
export const EVENT_LABELS: Record<string, string> = {
  super_chat: "Super Chat",
  membership: "New member",
  subscription: "Subscribed",
  cheer: "Cheer",
};

/** The marks shown for an author's platform roles, most telling first (cheap: text only). */
const ROLE_MARKS: readonly { role: string; text: string; title: string }[] = [
  { role: "broadcaster", text: "streamer", title: "the channel's broadcaster" },
  { role: "moderator", text: "mod", title: "a moderator of the channel" },
];

/** The event label of a platform line ("Super Chat · $5.00"), or "" for a plain message. */
export function eventLabel(source: ChatSource): string {
  const label = EVENT_LABELS[source.event];
  if (!label) return "";
  return source.amount ? `${label} · ${source.amount}` : label;
}

function small(doc: Document, className: string, text: string, title = ""): HTMLSpanElement {
  const span = doc.createElement("span");
  span.className = className;
  span.textContent = text;
  if (title) span.title = title;
  return span;
}

/** One `li.chat-message` for a chat entry; all user text goes through textContent. A line from
 *  YouTube's or Twitch's chat gets the platform's mark as its avatar, a badge naming the platform
 *  by the name, role marks, and an event (Super Chat, membership, ...) a label with its amount. */
export function renderMessage(entry: Pick<ChatEntry, "message" | "status">, doc: Document = document): HTMLLIElement {
  const { message } = entry;
  const source = message.source;
  const li = doc.createElement("li");
  li.className = `chat-message chat-${message.kind}`;
  li.dataset.id = message.id;
  li.dataset.kind = message.kind;
  updateStatus(li, entry.status);

  const avatar = doc.createElement("span");
  avatar.className = "chat-avatar";
  avatar.setAttribute("aria-hidden", "true");
  if (source) avatar.append(platformMark(source.platform, doc));
  else avatar.textContent = message.kind === "host" ? "🎙️" : avatarGlyph(message.avatar);

  const meta = doc.createElement("div");
  meta.className = "chat-meta";
  const author = doc.createElement("span");
  author.className = "chat-author";
  author.textContent = message.authorName || (message.kind === "system" ? "system" : "anonymous");
  const time = doc.createElement("time");
  time.className = "chat-time";
  const when = new Date(message.createdAt);
  if (!Number.isNaN(when.getTime())) {
    time.dateTime = when.toISOString();
    time.textContent = formatTime(message.createdAt);
  }
  meta.append(author);
  if (message.kind === "host") {
    // a fixed label, never user text: host lines read apart from viewers' at a glance
    const badge = doc.createElement("span");
    badge.className = "chat-badge";
    badge.textContent = "host";
    meta.append(badge);
  }
  if (source) {
    const name = PLATFORM_NAMES[source.platform];
    li.dataset.platform = source.platform;
    meta.append(small(doc, `chat-platform chat-platform-${source.platform}`, name, `from ${name} chat`));
    for (const mark of ROLE_MARKS) {
      if (source.roles.includes(mark.role)) meta.append(small(doc, "chat-role", mark.text, mark.title));
    }
  }
  meta.append(time);

  const body = doc.createElement("div");
  body.className = "chat-body";
  body.textContent = message.body;

  const content = doc.createElement("div");
  content.className = "chat-content";
  content.append(meta);
  const label = source ? eventLabel(source) : "";
  if (source && label) {
    li.classList.add("chat-event");
    li.dataset.event = source.event;
    content.append(small(doc, "chat-event-label", label));
  }
  content.append(body);
  li.append(avatar, content);
  return li;
}

function updateStatus(li: HTMLElement, status: EntryStatus): void {
  li.dataset.status = status;
  li.classList.toggle("pending", status === "pending");
  li.classList.toggle("rejected", status === "rejected");
  li.title = status === "rejected" ? "not shown to others" : status === "pending" ? "sending…" : "";
}

/** Keeps #chat-list in step with a ChatStore; sticks to the bottom while the user is there. */
export class ChatView {
  readonly store: ChatStore;

  constructor(
    private readonly list: HTMLElement,
    capacity = 200,
  ) {
    this.store = new ChatStore(capacity);
  }

  add(message: ChatMessage, status: EntryStatus = "shown", seq = 0): void {
    const stick = this.nearBottom();
    const result = this.store.add(message, status, seq);
    if (result.kind === "duplicate") return;
    if (result.kind === "updated") {
      const li = this.find(message.id);
      if (li) updateStatus(li, result.entry.status);
      return;
    }
    for (const id of result.evicted) this.find(id)?.remove();
    const li = renderMessage(result.entry, this.list.ownerDocument);
    this.list.insertBefore(li, this.list.children[result.index] ?? null);
    if (stick) this.scrollToBottom();
  }

  /** Hides a removed message at once (and any later copy of it). */
  remove(id: string): void {
    if (this.store.remove(id).kind === "removed") this.find(id)?.remove();
  }

  reject(id: string, reason: string): void {
    const entry = this.store.reject(id, reason);
    const li = entry && this.find(id);
    if (li) updateStatus(li, "rejected");
  }

  scrollToBottom(): void {
    this.list.scrollTop = this.list.scrollHeight;
  }

  private nearBottom(): boolean {
    const el = this.list;
    return el.scrollHeight - el.scrollTop - el.clientHeight < 48;
  }

  private find(id: string): HTMLElement | undefined {
    for (const child of Array.from(this.list.children)) {
      if (child instanceof HTMLElement && child.dataset.id === id) return child;
    }
    return undefined;
  }
}

/**
 * The clientId of the chat message being sent. Kept while the same text is sent again (the
 * page's retry after renewing an expired token, or the viewer pressing send after a 503 or a
 * network error, when the edge may already have stored it), so a resend is shown once; a new
 * one once that message was accepted or the text changed (a new message).
 */
export class SendIds {
  private pending: { body: string; clientId: string } | null = null;

  constructor(private readonly make: () => string = newClientId) {}

  idFor(body: string): string {
    if (this.pending?.body !== body) this.pending = { body, clientId: this.make() };
    return this.pending.clientId;
  }

  /** The edge accepted `body`: sending the same text again is a new message. */
  accepted(body: string): void {
    if (this.pending?.body === body) this.pending = null;
  }
}

/**
 * Send one chat message: on a 401 renew the token (`renew`) and send it once more, with the
 * same clientId. Returns the id the edge gave it.
 */
export async function sendChat(
  body: string,
  ids: SendIds,
  post: (body: string, clientId: string) => Promise<string>,
  renew: () => Promise<void>,
): Promise<string> {
  const clientId = ids.idFor(body);
  let id: string;
  try {
    id = await post(body, clientId);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    await renew();
    id = await post(body, clientId);
  }
  ids.accepted(body);
  return id;
}

/**
 * How many shown messages before the newest one a catch-up asks from. chat-history sends a
 * batch of messages at once and retries a failed send later, so a message stored before the
 * newest one we hold may not have reached us yet when the connection dropped; the overlap is
 * dropped by id.
 */
export const CATCH_UP_OVERLAP = 100;
/** Messages per history request while catching up (the edge's maximum). */
export const CATCH_UP_PAGE = 200;
/** History requests per catch-up at most (the edge keeps ~2000 messages: 10 pages). */
export const CATCH_UP_MAX_PAGES = 20;

/** The id to catch up after: the shown message `overlap` before the newest shown one (or the
 *  oldest shown); undefined when nothing is shown (then the newest messages are loaded). */
export function resumeCursor(store: ChatStore, overlap = CATCH_UP_OVERLAP): string | undefined {
  // pending echoes and rejected lines are not in history: they cannot be a cursor
  const shown = store.list().filter((entry) => entry.status === "shown");
  if (!shown.length) return undefined;
  return shown[Math.max(0, shown.length - 1 - overlap)].message.id;
}

export interface CatchUpResult {
  pages: number;
  /** some messages between the cursor and what was loaded are not shown */
  gap: boolean;
}

/**
 * Load history after `cursor` page by page until the edge says there is no more, handing every
 * message to `add` (which de-duplicates by id). Without a cursor: one request for the newest.
 */
export async function catchUp(
  fetchPage: (after: string | undefined) => Promise<HistoryPage>,
  cursor: string | undefined,
  add: (message: ChatMessage) => void,
  maxPages = CATCH_UP_MAX_PAGES,
): Promise<CatchUpResult> {
  let after = cursor;
  let gap = false;
  for (let pages = 1; ; pages++) {
    const page = await fetchPage(after);
    for (const message of page.messages) add(message);
    gap ||= page.gap;
    const last = page.messages.at(-1);
    if (!page.more || last === undefined) return { pages, gap };
    if (pages >= maxPages) return { pages, gap: true };
    after = last.id;
  }
}

/**
 * Where the page catches up from after a lost connection. The point is taken when the
 * connection drops (`lost`), not when it is back: live messages that arrive after the rejoin
 * but before the history answer would otherwise move it past the messages missed meanwhile.
 * It is held until a catch-up from it succeeded, across further drops and failed attempts.
 */
export class ResumePoint {
  private held: { cursor: string | undefined } | null = null;

  constructor(
    private readonly store: ChatStore,
    private readonly overlap = CATCH_UP_OVERLAP,
  ) {}

  /** The connection is down (or reconnecting): remember the point, unless one is held. */
  lost(): void {
    this.held ??= { cursor: resumeCursor(this.store, this.overlap) };
  }

  /** Joined (again): the cursor to catch up after; held until `caughtUp`. */
  from(): string | undefined {
    this.lost();
    return this.held?.cursor;
  }

  /** A catch-up went through: the next drop takes a new point. */
  caughtUp(): void {
    this.held = null;
  }
}
