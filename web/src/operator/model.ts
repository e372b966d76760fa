// The operator console's state and the events that change it (GET /api/operator/events, SSE).
// Pure: parse what arrives, fold it into the state; the page renders the result.
import {
  DEFAULT_LAYOUT,
  isObject,
  num,
  parseChatMessage,
  parseLayout,
  parseStageVisual,
  str,
  strList,
  type ChatMessage,
  type Layout,
  type ShowState,
  type StageVisual,
} from "../types";

export type Outcome = "pending" | "approved" | "rejected" | "removed";
const OUTCOMES: readonly string[] = ["pending", "approved", "rejected", "removed"];

/** One chat message as moderation sees it; `checks` name the rules that refused it. */
export interface ChatEntry {
  message: ChatMessage;
  outcome: Outcome;
  reason: string;
  checks: string[];
}

export type HostState = "none" | "waiting" | "live" | "released" | "ended";
const HOST_STATES: readonly string[] = ["none", "waiting", "live", "released", "ended"];

/** A backend that failed during the show and what took over. */
export interface Fallback {
  at: number;
  voice: string;
  avatar: string;
  reason: string;
}

export interface HostStatus {
  state: HostState;
  jobId: string;
  voice: string;
  avatar: string;
  fallbacks: Fallback[];
  reason: string;
  since: number;
}

export type EgressStatus = "starting" | "active" | "ending" | "complete" | "failed" | "aborted";
const EGRESS_STATUSES: readonly string[] = ["starting", "active", "ending", "complete", "failed", "aborted"];

/** The web egress of /stage to an RTMP ingest (an EgressEvent); `target` never carries the stream key. */
export interface Egress {
  id: string;
  room: string;
  egressId: string;
  status: EgressStatus;
  target: string;
  error: string;
  startedAt: number;
  createdAt: number;
}

export interface Numbers {
  viewers: number;
  chatPerMinute: number;
  /** 0..1 */
  rejectedShare: number;
  spendTodayUsd: number;
  /** 0: no cap */
  spendCapUsd: number;
  reactionP50Ms: number | null;
  /** how many answers the p50 is over */
  reactions: number;
}

export interface ConsoleState {
  room: string;
  show: ShowState;
  showReason: string;
  layout: Layout;
  /** oldest first */
  chat: ChatEntry[];
  /** newest first */
  visuals: StageVisual[];
  host: HostStatus;
  egress: Egress | null;
  numbers: Numbers;
}

export const MAX_CHAT_ENTRIES = 200;
export const MAX_VISUALS = 12;

export const NO_HOST: HostStatus = { state: "none", jobId: "", voice: "", avatar: "", fallbacks: [], reason: "", since: 0 };
export const NO_NUMBERS: Numbers = {
  viewers: 0,
  chatPerMinute: 0,
  rejectedShare: 0,
  spendTodayUsd: 0,
  spendCapUsd: 0,
  reactionP50Ms: null,
  reactions: 0,
};

export const EMPTY_STATE: ConsoleState = {
  room: "",
  show: "live",
  showReason: "",
  layout: DEFAULT_LAYOUT,
  chat: [],
  visuals: [],
  host: NO_HOST,
  egress: null,
  numbers: NO_NUMBERS,
};

export function parseChatEntry(v: unknown): ChatEntry | null {
  if (!isObject(v)) return null;
  const message = parseChatMessage(v.message);
  if (!message) return null;
  const outcome = OUTCOMES.includes(str(v.outcome)) ? (v.outcome as Outcome) : "pending";
  return { message, outcome, reason: str(v.reason), checks: strList(v.checks) };
}

export function parseFallback(v: unknown): Fallback | null {
  if (!isObject(v)) return null;
  return { at: num(v.at), voice: str(v.voice), avatar: str(v.avatar), reason: str(v.reason) };
}

export function parseHostStatus(v: unknown): HostStatus {
  if (!isObject(v)) return NO_HOST;
  const fallbacks = Array.isArray(v.fallbacks) ? v.fallbacks.map(parseFallback).filter((f): f is Fallback => f !== null) : [];
  return {
    state: HOST_STATES.includes(str(v.state)) ? (v.state as HostState) : "none",
    jobId: str(v.jobId),
    voice: str(v.voice),
    avatar: str(v.avatar),
    fallbacks,
    reason: str(v.reason),
    since: num(v.since),
  };
}

/** An egress, or null for none (or one this page cannot read). */
export function parseEgress(v: unknown): Egress | null {
  if (!isObject(v) || !EGRESS_STATUSES.includes(str(v.status))) return null;
  return {
    id: str(v.id),
    room: str(v.room),
    egressId: str(v.egressId),
    status: v.status as EgressStatus,
    target: str(v.target),
    error: str(v.error),
    startedAt: num(v.startedAt),
    createdAt: num(v.createdAt),
  };
}

export function parseNumbers(v: unknown): Numbers {
  if (!isObject(v)) return NO_NUMBERS;
  const nonNegative = (x: unknown) => Math.max(0, num(x));
  const p50 = v.reactionP50Ms;
  return {
    viewers: Math.floor(nonNegative(v.viewers)),
    chatPerMinute: nonNegative(v.chatPerMinute),
    rejectedShare: nonNegative(v.rejectedShare),
    spendTodayUsd: nonNegative(v.spendTodayUsd),
    spendCapUsd: nonNegative(v.spendCapUsd),
    reactionP50Ms: typeof p50 === "number" && Number.isFinite(p50) && p50 >= 0 ? p50 : null,
    reactions: Math.floor(nonNegative(v.reactions)),
  };
}

/**
 * `list` with `item` in it: an item with the same id replaces the old one where it stood, a new
 * one goes at the end (or the front with `atFront`); at most `max` kept, the far end dropped.
 */
export function upsertById<T>(list: readonly T[], item: T, idOf: (t: T) => string, max: number, atFront = false): T[] {
  const id = idOf(item);
  const at = list.findIndex((t) => idOf(t) === id);
  if (at >= 0) return list.map((t, i) => (i === at ? item : t));
  const next = atFront ? [item, ...list] : [...list, item];
  if (next.length <= max) return next;
  return atFront ? next.slice(0, max) : next.slice(next.length - max);
}

const entryId = (e: ChatEntry) => e.message.id;
const visualId = (v: StageVisual) => v.id;

/** The show's state and layout in a snapshot; the defaults (live, corner) for what is missing. */
export function parseShowStatus(v: unknown): { state: ShowState; layout: Layout } {
  const show = isObject(v) ? v : {};
  return { state: show.state === "ended" ? "ended" : "live", layout: parseLayout(show.layout) ?? DEFAULT_LAYOUT };
}

export function parseSnapshot(v: unknown): ConsoleState {
  if (!isObject(v)) return EMPTY_STATE;
  const show = parseShowStatus(v.show);
  let chat: ChatEntry[] = [];
  for (const entry of Array.isArray(v.chat) ? v.chat.map(parseChatEntry) : []) {
    if (entry) chat = upsertById(chat, entry, entryId, MAX_CHAT_ENTRIES);
  }
  let visuals: StageVisual[] = [];
  // the snapshot lists them oldest first, like the stream delivers them
  for (const visual of Array.isArray(v.visuals) ? v.visuals.map(parseStageVisual) : []) {
    if (visual) visuals = upsertById(visuals, visual, visualId, MAX_VISUALS, true);
  }
  return {
    room: str(v.room),
    show: show.state,
    showReason: "",
    layout: show.layout,
    chat,
    visuals,
    host: parseHostStatus(v.host),
    egress: parseEgress(v.egress),
    numbers: parseNumbers(v.numbers),
  };
}

/** The event names the console listens to on its EventSource. */
export const EVENT_NAMES = ["snapshot", "chat", "visual", "layout", "show", "host", "egress", "numbers"] as const;
export type EventName = (typeof EVENT_NAMES)[number];

/** The state after one event; malformed events leave it as it was. */
export function applyEvent(state: ConsoleState, name: EventName, data: unknown): ConsoleState {
  switch (name) {
    case "snapshot":
      return parseSnapshot(data);
    case "chat": {
      const entry = parseChatEntry(data);
      return entry ? { ...state, chat: upsertById(state.chat, entry, entryId, MAX_CHAT_ENTRIES) } : state;
    }
    case "visual": {
      const visual = parseStageVisual(data);
      return visual ? { ...state, visuals: upsertById(state.visuals, visual, visualId, MAX_VISUALS, true) } : state;
    }
    case "layout": {
      const layout = isObject(data) ? parseLayout(data.layout) : null;
      return layout ? { ...state, layout } : state;
    }
    case "show": {
      if (!isObject(data) || (data.state !== "live" && data.state !== "ended")) return state;
      return { ...state, show: data.state, showReason: str(data.reason) };
    }
    case "host":
      return isObject(data) ? { ...state, host: parseHostStatus(data) } : state;
    case "egress":
      // null: no egress any more
      return data === null || isObject(data) ? { ...state, egress: parseEgress(data) } : state;
    case "numbers":
      return isObject(data) ? { ...state, numbers: parseNumbers(data) } : state;
  }
}
