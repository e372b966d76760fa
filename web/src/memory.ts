// "What <host> remembers about me" and "Forget me" on the viewer page: the parser of
// GET /api/me/memory (MemoryAnswer in the wire schema) and the card's rendering. The card is the
// viewer's own words and the host's answers: every text goes in with textContent, never as markup.

import { isObject, num, str } from "./types";

export interface MemoryFact {
  text: string;
  at: number;
  messageId: string;
  source: "rules" | "model";
}
export interface MemoryQuestion {
  messageId: string;
  text: string;
  askedAt: number;
  answer: string;
  answeredAt: number | null;
}
export interface MemoryTopic {
  name: string;
  at: number;
}
export interface MemoryShows {
  count: number;
  last: string[];
}
export interface MemoryCard {
  key: string;
  names: string[];
  firstSeen: number;
  lastSeen: number;
  shows: MemoryShows;
  topics: MemoryTopic[];
  questions: MemoryQuestion[];
  facts: MemoryFact[];
}
export interface MemoryAnswer {
  card: MemoryCard | null;
  enabled: boolean;
  retentionDays: number;
}

const list = <T>(v: unknown, parse: (item: unknown) => T | null): T[] =>
  Array.isArray(v) ? v.map(parse).filter((x): x is T => x !== null) : [];

const texts = (v: unknown): string[] => list(v, (x) => (typeof x === "string" ? x : null));

export function parseMemoryFact(v: unknown): MemoryFact | null {
  if (!isObject(v) || typeof v.text !== "string") return null;
  return { text: v.text, at: num(v.at), messageId: str(v.messageId), source: v.source === "model" ? "model" : "rules" };
}

export function parseMemoryQuestion(v: unknown): MemoryQuestion | null {
  if (!isObject(v) || typeof v.text !== "string") return null;
  const answeredAt = typeof v.answeredAt === "number" ? v.answeredAt : null;
  return { messageId: str(v.messageId), text: v.text, askedAt: num(v.askedAt), answer: str(v.answer), answeredAt };
}

export function parseMemoryTopic(v: unknown): MemoryTopic | null {
  if (!isObject(v) || typeof v.name !== "string") return null;
  return { name: v.name, at: num(v.at) };
}

export function parseMemoryShows(v: unknown): MemoryShows {
  if (!isObject(v)) return { count: 0, last: [] };
  return { count: num(v.count), last: texts(v.last) };
}

export function parseMemoryCard(v: unknown): MemoryCard | null {
  if (!isObject(v) || typeof v.key !== "string") return null;
  return {
    key: v.key,
    names: texts(v.names),
    firstSeen: num(v.firstSeen),
    lastSeen: num(v.lastSeen),
    shows: parseMemoryShows(v.shows),
    topics: list(v.topics, parseMemoryTopic),
    questions: list(v.questions, parseMemoryQuestion),
    facts: list(v.facts, parseMemoryFact),
  };
}

/** The answer of GET /api/me/memory; null when it is not one. */
export function parseMemoryAnswer(v: unknown): MemoryAnswer | null {
  if (!isObject(v) || !("card" in v)) return null;
  const card = v.card === null ? null : parseMemoryCard(v.card);
  if (v.card !== null && card === null) return null;
  return { card, enabled: v.enabled !== false, retentionDays: num(v.retentionDays, 180) };
}

/** "What Cara remembers about me" (the host's name from its participant; "the host" without). */
export function memoryHeading(hostName: string): string {
  return `What ${hostName.trim() || "the host"} remembers about me`;
}

const day = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

function row(label: string, items: string[]): HTMLElement {
  const section = document.createElement("section");
  section.className = "memory-row";
  const title = document.createElement("h3");
  title.textContent = label;
  const ul = document.createElement("ul");
  for (const item of items) {
    const li = document.createElement("li");
    li.textContent = item;
    ul.append(li);
  }
  section.append(title, ul);
  return section;
}

/** Fills `into` with the card (text only), or says that nothing is remembered. */
export function renderMemory(into: HTMLElement, answer: MemoryAnswer): void {
  const card = answer.card;
  if (!card) {
    const empty = document.createElement("p");
    empty.className = "memory-empty";
    empty.textContent = answer.enabled
      ? "Nothing is remembered about you."
      : "Nothing is remembered about you: this stream does not remember its viewers.";
    into.replaceChildren(empty);
    into.dataset.empty = "true";
    return;
  }
  const rows: HTMLElement[] = [];
  if (card.names.length) rows.push(row("Names", card.names));
  if (card.facts.length) rows.push(row("Things you said about yourself", card.facts.map((f) => f.text)));
  if (card.questions.length)
    rows.push(row("Your last questions", card.questions.map((q) => (q.answer ? `${q.text} — answered: ${q.answer}` : q.text))));
  if (card.topics.length) rows.push(row("Topics", card.topics.map((t) => t.name)));
  rows.push(
    row("Visits", [
      `${card.shows.count} show${card.shows.count === 1 ? "" : "s"} attended`,
      `first seen ${day(card.firstSeen)}, last seen ${day(card.lastSeen)}`,
      `kept ${answer.retentionDays} days after your last visit`,
    ]),
  );
  into.replaceChildren(...rows);
  delete into.dataset.empty;
}
