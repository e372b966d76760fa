// Words and figures the console shows: pure functions of the state (and of `now` where time matters).
import { PLATFORM_NAMES, type Layout } from "../types";
import type { ChatEntry, Egress, EgressStatus, Fallback, HostState, HostStatus, Numbers, Outcome } from "./model";

/** "42 s", "3 min 5 s", "2 h 4 min": how long since `since` (ms), never negative. */
export function durationText(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const h = Math.floor(m / 60);
  return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
}

export const HOST_STATE_TEXT: Record<HostState, string> = {
  none: "No host",
  waiting: "Host waiting for viewers",
  live: "Host live",
  released: "Host paused, paid sessions released",
  ended: "Host ended",
};

/** One line: the state, for how long, and why when it says. */
export function hostStateText(host: HostStatus, now: number): string {
  let text = HOST_STATE_TEXT[host.state];
  if (host.since > 0 && host.state !== "none") text += ` for ${durationText(now - host.since)}`;
  if (host.reason && (host.state === "ended" || host.state === "released" || host.state === "none")) text += ` (${host.reason})`;
  return text;
}

/** "voice openai-realtime · avatar anam", or "" with no host. */
export function backendsText(host: HostStatus): string {
  const parts: string[] = [];
  if (host.voice) parts.push(`voice ${host.voice}`);
  if (host.avatar) parts.push(`avatar ${host.avatar}`);
  return parts.join(" · ");
}

export function fallbackText(fallback: Fallback, now: number): string {
  const to = [fallback.voice && `voice ${fallback.voice}`, fallback.avatar && `avatar ${fallback.avatar}`].filter(Boolean).join(", ");
  const why = fallback.reason ? `: ${fallback.reason}` : "";
  return `${durationText(now - fallback.at)} ago → ${to || "local backends"}${why}`;
}

const usd = (x: number) => `$${x.toFixed(2)}`;
const trimNumber = (x: number, digits: number) => String(Number(x.toFixed(digits)));

export interface NumbersText {
  viewers: string;
  chatPerMinute: string;
  rejected: string;
  spend: string;
  /** the spend as a share of the cap, 0..1, or null without a cap (for a meter) */
  spendShare: number | null;
  reaction: string;
}

export function numbersText(n: Numbers): NumbersText {
  const capped = n.spendCapUsd > 0;
  return {
    viewers: String(n.viewers),
    chatPerMinute: trimNumber(n.chatPerMinute, 1),
    rejected: `${trimNumber(n.rejectedShare * 100, 1)} %`,
    spend: capped
      ? `${usd(n.spendTodayUsd)} of ${usd(n.spendCapUsd)} (${Math.round((n.spendTodayUsd / n.spendCapUsd) * 100)} %)`
      : `${usd(n.spendTodayUsd)} (no cap)`,
    spendShare: capped ? Math.min(1, n.spendTodayUsd / n.spendCapUsd) : null,
    reaction:
      n.reactionP50Ms === null
        ? "no answers yet"
        : `${Math.round(n.reactionP50Ms)} ms (last ${n.reactions} answer${n.reactions === 1 ? "" : "s"})`,
  };
}

export const OUTCOME_TEXT: Record<Outcome, string> = {
  pending: "checking",
  approved: "shown",
  rejected: "rejected",
  removed: "removed",
};

/** "rejected: spam, links (too many links)": what moderation said about a message. */
export function outcomeText(entry: ChatEntry): string {
  let text = OUTCOME_TEXT[entry.outcome];
  if (entry.outcome === "rejected" || entry.outcome === "removed") {
    if (entry.checks.length) text += `: ${entry.checks.join(", ")}`;
    if (entry.reason) text += ` (${entry.reason})`;
  }
  return text;
}

/** "YouTube", "Twitch", or null for page chat. */
export function platformBadge(entry: ChatEntry): string | null {
  return entry.message.source ? PLATFORM_NAMES[entry.message.source.platform] : null;
}

/** Whether the console offers to ban this message's author, and how. */
export function banChoices(entry: ChatEntry): { visitor: boolean; network: boolean } {
  const m = entry.message;
  if (m.kind !== "viewer" || !m.authorIdentity) return { visitor: false, network: false };
  // Livestage never sees a platform chat user's network
  return { visitor: true, network: !m.source };
}

/** Whose memory a chat author's identity is (as the edge's `memory_key_of`): the visitor tag of
 * a viewer identity, a platform identity itself; null for anyone else (the host). */
export function memoryKeyOf(identity: string): string | null {
  const viewer = /^viewer_([a-z0-9]{8,32})_[A-Za-z0-9_-]+$/.exec(identity);
  if (viewer) return viewer[1];
  return /^(youtube|twitch):[A-Za-z0-9_-]{1,64}$/.test(identity) ? identity : null;
}

export const EGRESS_STATUS_TEXT: Record<EgressStatus, string> = {
  starting: "Starting…",
  active: "Live",
  ending: "Stopping…",
  complete: "Stopped",
  failed: "Failed",
  aborted: "Aborted",
};

/** Whether an egress is (about to be) on air: a stop makes sense, a start does not. */
export const egressRunning = (e: Egress | null): boolean => e !== null && (e.status === "starting" || e.status === "active");

export function egressText(e: Egress | null, now: number): string {
  if (!e) return "Not streaming";
  let text = EGRESS_STATUS_TEXT[e.status];
  if (e.target) text += ` to ${e.target}`;
  if (e.status === "active" && e.startedAt > 0) text += ` for ${durationText(now - e.startedAt)}`;
  if (e.error) text += `: ${e.error}`;
  return text;
}

export const LAYOUT_TEXT: Record<Layout, string> = {
  corner: "Corner (host lower right)",
  side: "Side (host beside the visual)",
  center: "Center (host in front)",
  "visual-only": "Visual only",
  "host-only": "Host only",
};
