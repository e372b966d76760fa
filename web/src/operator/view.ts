// DOM for the console's lists. Everything from the network goes in as text (textContent), never markup.
import { LAYOUTS, type Layout, type StageVisual } from "../types";
import { LAYOUT_TEXT, banChoices, memoryKeyOf, outcomeText, platformBadge } from "./format";
import type { ChatEntry } from "./model";
import type { ShowSummary } from "./shows";

/** Makes an element with a class and, optionally, its text. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, className = "", text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(text: string, className: string, onClick: (b: HTMLButtonElement) => void): HTMLButtonElement {
  const b = el("button", className, text);
  b.type = "button";
  b.addEventListener("click", () => onClick(b));
  return b;
}

export interface ChatActions {
  remove(entry: ChatEntry, control: HTMLButtonElement): void;
  ban(entry: ChatEntry, scope: "visitor" | "network", control: HTMLButtonElement): void;
  /** Erase the author as their "Forget me" does (memory card, chat lines, keys). */
  forget?(entry: ChatEntry, key: string, control: HTMLButtonElement): void;
}

const timeOf = (ms: number) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });

/** One chat line: time, badge, author, body, moderation outcome (with checks), and its controls. */
export function renderChatEntry(entry: ChatEntry, actions: ChatActions): HTMLLIElement {
  const m = entry.message;
  const li = el("li", "op-chat-entry");
  li.dataset.id = m.id;
  li.dataset.outcome = entry.outcome;
  li.dataset.kind = m.kind;
  const head = el("div", "op-chat-head");
  head.append(el("time", "op-muted", timeOf(m.createdAt)));
  const badge = platformBadge(entry);
  if (badge) {
    const b = el("span", "op-badge", badge);
    b.dataset.platform = m.source?.platform ?? "";
    head.append(b);
  }
  const author = el("span", "op-author", m.authorName || m.authorIdentity || m.kind);
  author.title = m.authorIdentity;
  head.append(author, el("span", "op-outcome", outcomeText(entry)));
  li.append(head, el("p", "op-chat-body", m.body));

  const controls = el("div", "op-chat-controls");
  if (entry.outcome !== "removed" && entry.outcome !== "rejected") {
    controls.append(button("Remove", "ghost op-remove", (b) => actions.remove(entry, b)));
  }
  const bans = banChoices(entry);
  if (bans.visitor) controls.append(button("Ban visitor", "ghost op-ban-visitor", (b) => actions.ban(entry, "visitor", b)));
  if (bans.network) controls.append(button("Ban network", "ghost op-ban-network", (b) => actions.ban(entry, "network", b)));
  const key = memoryKeyOf(entry.message.authorIdentity);
  const forget = actions.forget;
  if (forget && key && entry.message.kind === "viewer") controls.append(button("Forget", "ghost op-forget", (b) => forget(entry, key, b)));
  if (controls.childElementCount) li.append(controls);
  return li;
}

/** One recent visual: thumbnail (images only), title, kind, and Pin. */
export function renderVisual(visual: StageVisual, onPin: (v: StageVisual, control: HTMLButtonElement) => void): HTMLLIElement {
  const li = el("li", "op-visual");
  li.dataset.id = visual.id;
  if (visual.kind !== "clip") {
    const img = el("img", "op-visual-thumb");
    img.src = visual.url;
    img.alt = "";
    img.loading = "lazy";
    li.append(img);
  }
  const text = el("div", "op-visual-text");
  text.append(el("span", "op-visual-title", visual.title || visual.sourceUrl || visual.topic || visual.id));
  text.append(el("span", "op-muted", `${visual.kind}${visual.topic ? ` · ${visual.topic}` : ""}`));
  li.append(text, button("Pin", "ghost op-pin", (b) => onPin(visual, b)));
  return li;
}

/** The five layouts as radio inputs named `layout`; returns them by layout. */
export function renderLayoutChoices(container: HTMLElement, onChoose: (layout: Layout) => void): Map<Layout, HTMLInputElement> {
  const inputs = new Map<Layout, HTMLInputElement>();
  for (const layout of LAYOUTS) {
    const label = el("label", "op-layout-choice");
    const input = el("input");
    input.type = "radio";
    input.name = "layout";
    input.value = layout;
    input.addEventListener("change", () => input.checked && onChoose(layout));
    label.append(input, el("span", "", LAYOUT_TEXT[layout]));
    container.append(label);
    inputs.set(layout, input);
  }
  return inputs;
}

/** Shows an action's outcome beside its control: `ok` text or the error. */
export function showResult(target: HTMLElement, kind: "ok" | "error" | "busy", text: string): void {
  target.hidden = false;
  target.dataset.kind = kind;
  target.textContent = text;
}

/** The shows as buttons (name, title, state); the picked one is pressed. */
export function renderShowList(shows: ShowSummary[], picked: string | undefined, onPick: (room: string) => void): HTMLLIElement[] {
  return shows.map((show) => {
    const li = el("li", "op-show-item");
    li.dataset.room = show.room;
    li.dataset.state = show.state;
    const pick = button("", "ghost op-show-pick", () => onPick(show.room));
    pick.setAttribute("aria-pressed", String(show.room === picked));
    pick.append(el("span", "op-show-room", show.room));
    if (show.title) pick.append(el("span", "op-muted", show.title));
    pick.append(el("span", "op-show-state", show.state === "live" ? "live" : "ended"));
    li.append(pick);
    return li;
  });
}
