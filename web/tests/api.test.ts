import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, getChatHistory, mintToken, newClientId, parseErrorDetail, parseRetryAfter, postChat, tooManyText } from "../src/api";

function respond(status: number, body: unknown, headers: Record<string, string> = {}) {
  return vi.fn(async (_url: string, _init?: RequestInit) =>
    new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } }),
  );
}

afterEach(() => vi.unstubAllGlobals());

describe("parseRetryAfter", () => {
  it("reads seconds and HTTP dates", () => {
    expect(parseRetryAfter("7")).toBe(7);
    expect(parseRetryAfter(" 2.2 ")).toBe(3);
    expect(parseRetryAfter("0")).toBe(1);
    const now = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT");
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:28:30 GMT", now)).toBe(30);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter("soon")).toBeUndefined();
  });
});

describe("parseErrorDetail", () => {
  it("maps FastAPI validation errors to fields", () => {
    const r = parseErrorDetail({
      detail: [
        { loc: ["body", "displayName"], msg: "name is taken", type: "value_error" },
        { loc: ["body", "avatar"], msg: "unknown avatar", type: "value_error" },
      ],
    });
    expect(r.fieldErrors).toEqual({ displayName: "name is taken", avatar: "unknown avatar" });
    expect(r.message).toBe("name is taken");
  });
  it("handles string details and junk", () => {
    expect(parseErrorDetail({ detail: "nope" }).message).toBe("nope");
    expect(parseErrorDetail(null)).toEqual({ message: "", fieldErrors: {} });
    expect(parseErrorDetail({ detail: [{ loc: ["body"], msg: "bad json" }] }).message).toBe("bad json");
  });
});

describe("fetch wrappers", () => {
  it("mints a token with the JSON body", async () => {
    const f = respond(200, { token: "t", url: "ws://lk", roomName: "r", agentName: "a", identity: "viewer_x_1" });
    vi.stubGlobal("fetch", f);
    const tok = await mintToken({ displayName: "Ada", avatar: "fox", role: "viewer" });
    expect(tok.token).toBe("t");
    const [url, init] = f.mock.calls[0];
    expect(url).toBe("/api/livekit-token");
    expect(init?.method).toBe("POST");
    // the visitor travels in the edge's HttpOnly cookie: same-origin credentials, no id in the body
    expect(init?.credentials).toBe("same-origin");
    expect(JSON.parse(String(init?.body))).toEqual({ displayName: "Ada", avatar: "fox", role: "viewer" });
  });

  it("asks for a stage token for the OBS page", async () => {
    const f = respond(200, { token: "t", url: "ws://lk", roomName: "r", agentName: "a", identity: "viewer_x_1" });
    vi.stubGlobal("fetch", f);
    await mintToken({ displayName: "Stage", avatar: "fox", role: "stage" });
    expect(JSON.parse(String(f.mock.calls[0][1]?.body))).toEqual({ displayName: "Stage", avatar: "fox", role: "stage" });
  });

  it("passes a ban's 403 through with the edge's words", async () => {
    vi.stubGlobal("fetch", respond(403, { detail: "banned from this room until 2030-01-01T00:00:00Z: new tokens refused" }));
    const e = await mintToken({ displayName: "x", avatar: "fox" }).catch((err) => err);
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(403);
    expect(e.message).toBe("banned from this room until 2030-01-01T00:00:00Z: new tokens refused");
  });

  it("raises 422 with field errors and 429 with Retry-After", async () => {
    vi.stubGlobal("fetch", respond(422, { detail: [{ loc: ["body", "displayName"], msg: "too rude", type: "x" }] }));
    const e1 = await mintToken({ displayName: "x", avatar: "fox" }).catch((e) => e);
    expect(e1).toBeInstanceOf(ApiError);
    expect(e1.status).toBe(422);
    expect(e1.fieldErrors.displayName).toBe("too rude");

    vi.stubGlobal("fetch", respond(429, { detail: "slow down" }, { "Retry-After": "12" }));
    const e2 = await mintToken({ displayName: "x", avatar: "fox" }).catch((e) => e);
    expect(e2.status).toBe(429);
    expect(e2.retryAfter).toBe(12);
    expect(tooManyText(e2)).toBe("too many attempts, try again in 12 s");
  });

  it("posts chat with the bearer token", async () => {
    const f = respond(202, { id: "m1" });
    vi.stubGlobal("fetch", f);
    expect(await postChat("tok", "hello")).toBe("m1");
    const init = f.mock.calls[0][1];
    expect(new Headers(init?.headers).get("Authorization")).toBe("Bearer tok");
    expect(JSON.parse(String(init?.body))).toEqual({ body: "hello" });
  });

  it("reports an unreachable server as status 0", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Promise.reject(new TypeError("Failed to fetch"))));
    const e = await postChat("tok", "x").catch((err) => err);
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(0);
  });

  it("filters malformed history entries", async () => {
    vi.stubGlobal("fetch", respond(200, { messages: [{ id: "a", body: "x", createdAt: 1 }, { nope: 1 }, null] }));
    const page = await getChatHistory("tok");
    expect(page.messages.map((m) => m.id)).toEqual(["a"]);
    expect([page.more, page.gap]).toEqual([false, false]);
  });

  it("asks for history after a message id, and reads more and gap", async () => {
    const fetch = respond(200, { messages: [], more: true, gap: true });
    vi.stubGlobal("fetch", fetch);
    const page = await getChatHistory("tok", { after: "m-1_x", limit: 200 });
    expect([page.more, page.gap]).toEqual([true, true]);
    expect(String(fetch.mock.calls[0][0])).toBe("/api/chat/history?after=m-1_x&limit=200");
    await getChatHistory("tok");
    expect(String(fetch.mock.calls[1][0])).toBe("/api/chat/history");
  });

  it("passes 503 through with its Retry-After", async () => {
    vi.stubGlobal("fetch", respond(503, { detail: "bus down" }, { "Retry-After": "3" }));
    const e = await postChat("tok", "x").catch((err) => err);
    expect(e.status).toBe(503);
    expect(e.retryAfter).toBe(3);
  });
});

describe("chat clientId", () => {
  it("is fresh for each message and has the shape the edge accepts", () => {
    const ids = new Set(Array.from({ length: 50 }, () => newClientId()));
    expect(ids.size).toBe(50);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{8,64}$/);
  });

  it("is sent with the message", async () => {
    const f = respond(202, { id: "m1" });
    vi.stubGlobal("fetch", f);
    expect(await postChat("tok", "hello", "abcdef0123456789")).toBe("m1");
    expect(JSON.parse(String(f.mock.calls[0][1]?.body))).toEqual({ body: "hello", clientId: "abcdef0123456789" });
  });
});
