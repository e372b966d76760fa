import { describe, expect, it } from "vitest";
import {
  backendsText,
  banChoices,
  durationText,
  egressRunning,
  egressText,
  fallbackText,
  hostStateText,
  numbersText,
  outcomeText,
  platformBadge,
} from "../src/operator/format";
import { NO_HOST, NO_NUMBERS } from "../src/operator/model";
import { chatEntry } from "./operator-fixtures";

const entry = chatEntry;

describe("durationText", () => {
  it("reads like a person would say it", () => {
    expect(durationText(-5)).toBe("0 s");
    expect(durationText(42_900)).toBe("42 s");
    expect(durationText(185_000)).toBe("3 min 5 s");
    expect(durationText(120_000)).toBe("2 min");
    expect(durationText((2 * 60 + 4) * 60_000)).toBe("2 h 4 min");
  });
});

describe("host text", () => {
  it("says the state, for how long, and why it ended", () => {
    const live = { ...NO_HOST, state: "live" as const, since: 1_000, voice: "openai-realtime", avatar: "anam" };
    expect(hostStateText(live, 61_000)).toBe("Host live for 1 min");
    expect(backendsText(live)).toBe("voice openai-realtime · avatar anam");
    expect(hostStateText({ ...NO_HOST, state: "ended", since: 0, reason: "operator" }, 5)).toBe("Host ended (operator)");
    expect(hostStateText(NO_HOST, 5)).toBe("No host");
    expect(backendsText(NO_HOST)).toBe("");
  });

  it("says which backend took over and why", () => {
    expect(fallbackText({ at: 0, voice: "piper", avatar: "", reason: "realtime timed out" }, 30_000)).toBe(
      "30 s ago → voice piper: realtime timed out",
    );
    expect(fallbackText({ at: 0, voice: "", avatar: "", reason: "" }, 0)).toBe("0 s ago → local backends");
  });
});

describe("numbersText", () => {
  it("formats spend against the cap, shares as percent and the p50", () => {
    const n = numbersText({ viewers: 12, chatPerMinute: 3.456, rejectedShare: 0.125, spendTodayUsd: 8.5, spendCapUsd: 10, reactionP50Ms: 912.4, reactions: 10 });
    expect(n).toEqual({
      viewers: "12",
      chatPerMinute: "3.5",
      rejected: "12.5 %",
      spend: "$8.50 of $10.00 (85 %)",
      spendShare: 0.85,
      reaction: "912 ms (last 10 answers)",
    });
  });

  it("says when there is no cap and no answer yet", () => {
    const n = numbersText({ ...NO_NUMBERS, spendTodayUsd: 0.456, reactions: 0 });
    expect(n.spend).toBe("$0.46 (no cap)");
    expect(n.spendShare).toBeNull();
    expect(n.reaction).toBe("no answers yet");
    expect(numbersText({ ...NO_NUMBERS, spendTodayUsd: 30, spendCapUsd: 10 }).spendShare).toBe(1);
  });
});

describe("chat entries", () => {
  it("name the checks that refused a message", () => {
    expect(outcomeText(entry())).toBe("shown");
    expect(outcomeText(entry({ outcome: "pending" }))).toBe("checking");
    expect(outcomeText(entry({ outcome: "rejected", checks: ["links", "spam"], reason: "a link" }))).toBe("rejected: links, spam (a link)");
  });

  it("badge platform lines and never offer a network ban for them", () => {
    const twitch = entry({}, {
      authorIdentity: "twitch:123",
      source: { platform: "twitch", userId: "123", messageId: "x", roles: [], event: "message", amount: "" },
    });
    expect(platformBadge(twitch)).toBe("Twitch");
    expect(banChoices(twitch)).toEqual({ visitor: true, network: false });
    expect(platformBadge(entry())).toBeNull();
    expect(banChoices(entry())).toEqual({ visitor: true, network: true });
    expect(banChoices(entry({}, { kind: "host" }))).toEqual({ visitor: false, network: false });
  });
});

describe("egress text", () => {
  it("shows the state, target, time on air and error", () => {
    expect(egressText(null, 0)).toBe("Not streaming");
    const active = { id: "e1", room: "main", createdAt: 0, egressId: "EG", status: "active" as const, target: "rtmp://a.rtmp.youtube.com/live2", error: "", startedAt: 1_000 };
    expect(egressText(active, 61_000)).toBe("Live to rtmp://a.rtmp.youtube.com/live2 for 1 min");
    expect(egressRunning(active)).toBe(true);
    const failed = { ...active, status: "failed" as const, error: "ingest refused the stream" };
    expect(egressText(failed, 0)).toBe("Failed to rtmp://a.rtmp.youtube.com/live2: ingest refused the stream");
    expect(egressRunning(failed)).toBe(false);
  });
});
