// Tiny DOM helpers shared by both pages.
import { STATE_TEXT, type ConnState } from "./connection";

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el as T;
}

/** Sets data-state and the readable text of a connection indicator. */
export function showState(el: HTMLElement, state: ConnState, detail?: string): void {
  el.dataset.state = state;
  el.textContent = detail && state !== "connected" ? `${STATE_TEXT[state]} (${detail})` : STATE_TEXT[state];
}

/** Resolves after `ms`. */
export const delay = (ms: number) => new Promise<void>((r) => window.setTimeout(r, ms));
