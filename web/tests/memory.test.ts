// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { memoryHeading, parseMemoryAnswer, renderMemory, type MemoryAnswer, type MemoryCard } from "../src/memory";

const CARD: MemoryCard = {
  key: "0123456789abcdef",
  names: ["Marta", "<img src=x onerror=alert(1)>"],
  firstSeen: Date.UTC(2026, 0, 2),
  lastSeen: Date.UTC(2026, 5, 7),
  shows: { count: 3, last: ["livestage:1", "livestage:2", "livestage:3"] },
  topics: [{ name: "aurora", at: 5 }],
  questions: [
    { messageId: "q1", text: "will the aurora show?", askedAt: 6, answer: "Best in March.", answeredAt: 7 },
    { messageId: "q2", text: "and <b>tonight</b>?", askedAt: 8, answer: "", answeredAt: null },
  ],
  facts: [{ text: "is from Lisbon", at: 4, messageId: "m1", source: "rules" }],
};

describe("parseMemoryAnswer", () => {
  it("keeps a whole answer as it came", () => {
    const answer = { card: CARD, enabled: true, retentionDays: 180 };
    expect(parseMemoryAnswer(answer)).toEqual(answer);
  });

  it("takes a null card as nothing remembered", () => {
    expect(parseMemoryAnswer({ card: null, enabled: false, retentionDays: 30 })).toEqual({ card: null, enabled: false, retentionDays: 30 });
  });

  it("refuses what is not an answer, or a card without a key", () => {
    expect(parseMemoryAnswer(null)).toBeNull();
    expect(parseMemoryAnswer({ enabled: true })).toBeNull();
    expect(parseMemoryAnswer({ card: { names: [] }, enabled: true, retentionDays: 1 })).toBeNull();
  });

  it("drops malformed entries of a card's lists", () => {
    const answer = parseMemoryAnswer({ card: { ...CARD, facts: [{ text: 3 }, CARD.facts[0]], names: ["A", 7] }, enabled: true, retentionDays: 1 });
    expect(answer?.card?.facts).toEqual(CARD.facts);
    expect(answer?.card?.names).toEqual(["A"]);
  });
});

describe("renderMemory", () => {
  const render = (answer: MemoryAnswer): HTMLElement => {
    const into = document.createElement("div");
    renderMemory(into, answer);
    return into;
  };

  it("shows names, facts, questions with answers, topics and visits, all as text", () => {
    const into = render({ card: CARD, enabled: true, retentionDays: 180 });
    const text = into.textContent ?? "";
    for (const part of ["Marta", "is from Lisbon", "will the aurora show? — answered: Best in March.", "and <b>tonight</b>?", "aurora", "3 shows attended", "first seen 2026-01-02, last seen 2026-06-07", "kept 180 days"])
      expect(text).toContain(part);
    expect(into.querySelectorAll("img, b")).toHaveLength(0);
    expect(into.dataset.empty).toBeUndefined();
  });

  it("says nothing is remembered, and why when memory is off", () => {
    const on = render({ card: null, enabled: true, retentionDays: 180 });
    expect(on.textContent).toBe("Nothing is remembered about you.");
    expect(on.dataset.empty).toBe("true");
    expect(render({ card: null, enabled: false, retentionDays: 180 }).textContent).toContain("does not remember its viewers");
  });

  it("replaces an earlier card (after Forget me)", () => {
    const into = document.createElement("div");
    renderMemory(into, { card: CARD, enabled: true, retentionDays: 180 });
    renderMemory(into, { card: null, enabled: true, retentionDays: 180 });
    expect(into.textContent).toBe("Nothing is remembered about you.");
  });
});

describe("memoryHeading", () => {
  it("names the host, or says the host", () => {
    expect(memoryHeading("Cara")).toBe("What Cara remembers about me");
    expect(memoryHeading(" ")).toBe("What the host remembers about me");
  });
});
