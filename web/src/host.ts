// The speaking host as the pages show it: its state (from its participant attributes), its
// captions (LiveKit's transcription text streams, which the agent sends in step with the audio
// it plays) and a poster when the host has no video (avatar `none`). Text only via textContent.

import { attributes } from "./wire/schema.json";

/** The values of the state attribute (`attributes.hostState.enum` in the wire schema). */
export type HostState = "idle" | "thinking" | "speaking" | "paused";

/** Participant attribute the host agent keeps its state in (from `livestage.attributes`). */
export const HOST_STATE_ATTRIBUTE: string = attributes.hostState.name;
/** Participant attribute with the host persona's name. */
export const HOST_PERSONA_ATTRIBUTE: string = attributes.hostPersona.name;
/** Text-stream topic of the agents' transcriptions (livekit-agents `lk.transcription`). */
export const TRANSCRIPTION_TOPIC = "lk.transcription";
/** Set on the last chunk's stream by livekit-agents when a segment is final. */
export const TRANSCRIPTION_FINAL_ATTRIBUTE = "lk.transcription_final";

export const HOST_STATE_TEXT: Record<HostState, string> = {
  idle: "Reading the chat",
  thinking: "Thinking…",
  speaking: "Speaking",
  paused: "Paused",
};

const STATES = new Set<string>(Object.keys(HOST_STATE_TEXT));

export function parseHostState(raw: string | undefined | null): HostState | null {
  return raw && STATES.has(raw) ? (raw as HostState) : null;
}

export interface HostCandidate {
  identity: string;
  isAgent: boolean;
  attributes: Record<string, string>;
}

/** The host agent among the participants: the AGENT-kind one that reports a host state. */
export function findHost(participants: Iterable<HostCandidate>): { identity: string; state: HostState; persona: string } | null {
  for (const p of participants) {
    if (!p.isAgent) continue;
    const state = parseHostState(p.attributes[HOST_STATE_ATTRIBUTE]);
    if (state) return { identity: p.identity, state, persona: (p.attributes[HOST_PERSONA_ATTRIBUTE] ?? "").slice(0, 32) };
  }
  return null;
}

export interface CaptionOptions {
  /** how long a finished line stays up */
  holdMs?: number;
  /** at most this many characters are shown (the newest words) */
  maxChars?: number;
  setTimer?: (fn: () => void, ms: number) => number;
  clearTimer?: (id: number) => void;
}

/**
 * Shows the host's words as they are spoken: one caption line per segment, growing with each
 * chunk, the tail kept when it gets long, cleared `holdMs` after the segment ends (or at once
 * when the next one starts).
 */
export class CaptionView {
  private segment: string | null = null;
  private text = "";
  private timer: number | null = null;
  private readonly holdMs: number;
  private readonly maxChars: number;
  private readonly setTimer: (fn: () => void, ms: number) => number;
  private readonly clearTimer: (id: number) => void;

  constructor(
    private readonly el: HTMLElement,
    opts: CaptionOptions = {},
  ) {
    this.holdMs = opts.holdMs ?? 4000;
    this.maxChars = opts.maxChars ?? 160;
    this.setTimer = opts.setTimer ?? ((fn, ms) => window.setTimeout(fn, ms));
    this.clearTimer = opts.clearTimer ?? ((id) => window.clearTimeout(id));
    this.render();
  }

  get shown(): string {
    return this.el.hidden ? "" : (this.el.textContent ?? "");
  }

  append(segmentId: string, chunk: string): void {
    this.cancelTimer();
    if (segmentId !== this.segment) {
      this.segment = segmentId;
      this.text = "";
    }
    this.text += chunk;
    this.render();
  }

  end(segmentId: string): void {
    if (segmentId !== this.segment) return;
    this.cancelTimer();
    this.timer = this.setTimer(() => this.clear(), this.holdMs);
  }

  clear(): void {
    this.cancelTimer();
    this.segment = null;
    this.text = "";
    this.render();
  }

  private cancelTimer(): void {
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
  }

  private render(): void {
    const flat = this.text.replace(/\s+/g, " ").trim();
    let shown = flat;
    if (flat.length > this.maxChars) {
      const tail = flat.slice(flat.length - this.maxChars);
      const cut = tail.indexOf(" ");
      shown = "…" + (cut >= 0 ? tail.slice(cut + 1) : tail);
    }
    this.el.textContent = shown;
    this.el.hidden = shown.length === 0;
    this.el.dataset.segment = this.segment ?? "";
  }
}

/** The host's state badge: data-state plus readable text (and the persona's name). */
export function showHostState(el: HTMLElement, host: { state: HostState; persona: string } | null): void {
  if (!host) {
    el.dataset.state = "absent";
    el.textContent = "";
    el.hidden = true;
    return;
  }
  el.dataset.state = host.state;
  el.textContent = host.persona ? `${host.persona} · ${HOST_STATE_TEXT[host.state]}` : HOST_STATE_TEXT[host.state];
  el.hidden = false;
}

/** The poster's big letter: the persona's first character (a font every machine has). */
export function posterInitial(persona: string | undefined): string {
  const first = Array.from((persona ?? "").trim())[0];
  return first ? first.toUpperCase() : "";
}
