import { describe, expect, it } from "vitest";
import {
  EMPTY_STATE,
  MAX_CHAT_ENTRIES,
  MAX_VISUALS,
  applyEvent,
  parseEgress,
  parseHostStatus,
  parseNumbers,
  upsertById,
  type ConsoleState,
} from "../src/operator/model";
import { chatMessage } from "./operator-fixtures";

const message = (id: string, body = "hi") => chatMessage({ id, body });
const visual = (id: string) => ({ id, room: "main", kind: "screenshot", url: `/media/${id}.png`, title: id, createdAt: 1, expiresAt: 2 });

const snapshot = {
  room: "main",
  show: { state: "live", layout: "side" },
  chat: [
    { message: message("m1"), outcome: "approved", reason: "", checks: [] },
    { message: message("m2", "buy now"), outcome: "rejected", reason: "spam link", checks: ["links", "spam"] },
    { message: { id: "" }, outcome: "approved" },
  ],
  visuals: [visual("v1"), visual("v2")],
  host: { state: "live", jobId: "job1", voice: "openai-realtime", avatar: "anam", fallbacks: [], reason: "", since: 1000 },
  egress: null,
  numbers: { viewers: 3, chatPerMinute: 1.5, rejectedShare: 0.25, spendTodayUsd: 1.2, spendCapUsd: 10, reactionP50Ms: 900, reactions: 10 },
};

const loaded = (): ConsoleState => applyEvent(EMPTY_STATE, "snapshot", snapshot);

describe("applyEvent", () => {
  it("takes a snapshot whole, dropping malformed entries", () => {
    const s = loaded();
    expect(s.room).toBe("main");
    expect(s.layout).toBe("side");
    expect(s.chat.map((e) => [e.message.id, e.outcome, e.checks])).toEqual([
      ["m1", "approved", []],
      ["m2", "rejected", ["links", "spam"]],
    ]);
    // newest visual first
    expect(s.visuals.map((v) => v.id)).toEqual(["v2", "v1"]);
    expect(s.host).toMatchObject({ state: "live", voice: "openai-realtime", avatar: "anam" });
    expect(s.numbers.viewers).toBe(3);
    expect(s.egress).toBeNull();
  });

  it("replaces a chat entry with the same message id where it stood, appends new ones", () => {
    const before = loaded();
    const after = applyEvent(before, "chat", { message: message("m1"), outcome: "removed", reason: "operator", checks: [] });
    expect(after.chat.map((e) => [e.message.id, e.outcome])).toEqual([
      ["m1", "removed"],
      ["m2", "rejected"],
    ]);
    // the untouched entry is the same object (the page re-renders only what changed)
    expect(after.chat[1]).toBe(before.chat[1]);
    const more = applyEvent(after, "chat", { message: message("m3"), outcome: "pending" });
    expect(more.chat.map((e) => e.message.id)).toEqual(["m1", "m2", "m3"]);
    expect(more.chat[2]?.outcome).toBe("pending");
  });

  it("keeps the newest chat entries and visuals only", () => {
    let s = loaded();
    for (let i = 0; i < MAX_CHAT_ENTRIES + 5; i++) s = applyEvent(s, "chat", { message: message(`x${i}`), outcome: "approved" });
    expect(s.chat).toHaveLength(MAX_CHAT_ENTRIES);
    expect(s.chat.at(-1)?.message.id).toBe(`x${MAX_CHAT_ENTRIES + 4}`);
    for (let i = 0; i < MAX_VISUALS + 3; i++) s = applyEvent(s, "visual", visual(`w${i}`));
    expect(s.visuals).toHaveLength(MAX_VISUALS);
    expect(s.visuals[0]?.id).toBe(`w${MAX_VISUALS + 2}`);
  });

  it("follows layout, show, host, egress and numbers events", () => {
    let s = loaded();
    s = applyEvent(s, "layout", { layout: "visual-only" });
    expect(s.layout).toBe("visual-only");
    s = applyEvent(s, "show", { state: "ended", reason: "operator" });
    expect([s.show, s.showReason]).toEqual(["ended", "operator"]);
    s = applyEvent(s, "host", { state: "released", since: 5 });
    expect(s.host.state).toBe("released");
    s = applyEvent(s, "egress", { egressId: "EG_1", status: "failed", target: "rtmp://x/live", error: "ingest refused" });
    expect(s.egress).toMatchObject({ egressId: "EG_1", status: "failed", target: "rtmp://x/live", error: "ingest refused", startedAt: 0 });
    s = applyEvent(s, "egress", null);
    expect(s.egress).toBeNull();
    s = applyEvent(s, "numbers", { viewers: 7 });
    expect(s.numbers.viewers).toBe(7);
    expect(s.numbers.reactionP50Ms).toBeNull();
  });

  it("ignores malformed events", () => {
    const s = loaded();
    expect(applyEvent(s, "layout", { layout: "upside-down" })).toBe(s);
    expect(applyEvent(s, "show", { state: "paused" })).toBe(s);
    expect(applyEvent(s, "chat", { outcome: "approved" })).toBe(s);
    expect(applyEvent(s, "visual", { id: "v9" })).toBe(s);
    expect(applyEvent(s, "host", "live")).toBe(s);
    expect(applyEvent(s, "numbers", 5)).toBe(s);
  });
});

describe("parsers", () => {
  it("read a host status leniently", () => {
    const h = parseHostStatus({ state: "weird", fallbacks: [{ at: 5, voice: "piper", reason: "realtime down" }, "junk"] });
    expect(h.state).toBe("none");
    expect(h.fallbacks).toEqual([{ at: 5, voice: "piper", avatar: "", reason: "realtime down" }]);
  });

  it("clamp numbers and keep a missing p50 missing", () => {
    expect(parseNumbers({ viewers: -2, rejectedShare: -1, reactionP50Ms: null })).toMatchObject({ viewers: 0, rejectedShare: 0, reactionP50Ms: null });
    expect(parseNumbers({ reactionP50Ms: 0 }).reactionP50Ms).toBe(0);
  });

  it("know an egress only by a known status", () => {
    expect(parseEgress({ egressId: "EG", status: "exploded" })).toBeNull();
    expect(parseEgress({ egressId: "EG", status: "active", startedAt: 9 })?.startedAt).toBe(9);
  });
});

describe("upsertById", () => {
  const id = (x: { id: string }) => x.id;
  it("replaces in place, adds at either end and trims the far end", () => {
    const list = [{ id: "a" }, { id: "b" }];
    expect(upsertById(list, { id: "a", v: 1 } as { id: string }, id, 5)).toEqual([{ id: "a", v: 1 }, { id: "b" }]);
    expect(upsertById(list, { id: "c" }, id, 2).map(id)).toEqual(["b", "c"]);
    expect(upsertById(list, { id: "c" }, id, 2, true).map(id)).toEqual(["c", "a"]);
  });
});
