import { describe, expect, it } from "vitest";
import { DEFAULT_CONFIG, decodeJson, parseChatPacket, parseConfig, parseStageVisual, parseTokenResponse } from "../src/types";

const message = {
  id: "01HX",
  room: "main",
  authorIdentity: "viewer_abc_00000001",
  authorName: "Ada",
  avatar: "fox",
  body: "hi",
  kind: "viewer",
  createdAt: 1700000000000,
};

describe("parseChatPacket", () => {
  it("accepts message and rejected packets", () => {
    expect(parseChatPacket({ type: "message", message })).toEqual({ type: "message", message, seq: 0 });
    expect(parseChatPacket({ type: "message", message, seq: 42 })).toEqual({ type: "message", message, seq: 42 });
    expect(parseChatPacket({ type: "message", message, seq: -1 })).toEqual({ type: "message", message, seq: 0 });
    expect(parseChatPacket({ type: "rejected", messageId: "01HX", reason: "spam" })).toEqual({
      type: "rejected",
      messageId: "01HX",
      reason: "spam",
    });
    expect(parseChatPacket({ type: "removed", messageId: "01HX" })).toEqual({ type: "removed", messageId: "01HX" });
  });

  it("drops malformed packets", () => {
    for (const bad of [
      null,
      "text",
      [],
      { type: "other" },
      { type: "message" },
      { type: "message", message: { ...message, id: "" } },
      { type: "message", message: { ...message, body: 5 } },
      { type: "rejected", reason: "x" },
      { type: "removed" },
      { type: "removed", messageId: 7 },
    ]) {
      expect(parseChatPacket(bad)).toBeNull();
    }
  });

  it("normalizes odd fields", () => {
    const p = parseChatPacket({ type: "message", message: { ...message, kind: "admin", authorName: 7, createdAt: "x" } });
    expect(p?.type === "message" && p.message.kind).toBe("viewer");
    expect(p?.type === "message" && p.message.authorName).toBe("");
    expect(p?.type === "message" && typeof p.message.createdAt).toBe("number");
  });
});

describe("decodeJson", () => {
  it("decodes UTF-8 JSON and returns null otherwise", () => {
    expect(decodeJson(new TextEncoder().encode('{"a":"ü"}'))).toEqual({ a: "ü" });
    expect(decodeJson(new TextEncoder().encode("not json"))).toBeNull();
  });
});

describe("parseStageVisual", () => {
  const visual = {
    id: "v1",
    room: "main",
    kind: "clip",
    url: "/assets/v1.mp4",
    sourceUrl: "https://example.org",
    title: "A page",
    summary: "",
    topic: "t",
    createdAt: 1,
    expiresAt: 2,
  };
  it("accepts a valid visual", () => expect(parseStageVisual(visual)).toEqual(visual));
  it("requires id, url and a known kind", () => {
    expect(parseStageVisual({ ...visual, kind: "gif" })).toBeNull();
    expect(parseStageVisual({ ...visual, url: "" })).toBeNull();
    expect(parseStageVisual({ ...visual, id: 3 })).toBeNull();
  });
});

describe("parseConfig / parseTokenResponse", () => {
  it("fills defaults", () => {
    expect(parseConfig({})).toEqual(DEFAULT_CONFIG);
    expect(parseConfig({ roomName: "r", avatars: ["a", 1, ""], maxChatLength: 100 })).toMatchObject({
      roomName: "r",
      avatars: ["a"],
      maxChatLength: 100,
    });
    expect(() => parseConfig(null)).toThrow();
  });
  it("requires token and url", () => {
    expect(() => parseTokenResponse({ url: "ws://x" })).toThrow();
    expect(parseTokenResponse({ token: "t", url: "ws://x", identity: "viewer_a_1" })).toMatchObject({ token: "t" });
  });
});
