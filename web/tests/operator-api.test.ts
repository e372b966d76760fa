import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../src/api";
import { OPERATOR_HEADER, currentSession, del, errorText, post, signIn, signInErrorText } from "../src/operator/api";
import { parseEventData } from "../src/operator/events";

function respond(status: number, body: unknown, headers: Record<string, string> = {}) {
  return vi.fn(async (_url: string, _init?: RequestInit) =>
    new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } }),
  );
}

afterEach(() => vi.unstubAllGlobals());

describe("operator calls", () => {
  it("send the same-origin header and the cookie on every state change", async () => {
    const fetch = respond(202, { id: "c1" });
    vi.stubGlobal("fetch", fetch);
    await post("/host/say", { text: "hello" });
    await del("/chat/messages/m1");
    for (const [url, init] of fetch.mock.calls) {
      const headers = new Headers(init?.headers);
      expect(headers.get(OPERATOR_HEADER)).toBe("1");
      expect(init?.credentials).toBe("same-origin");
      expect(headers.has("Authorization")).toBe(false);
      expect(url.startsWith("/api/operator/")).toBe(true);
    }
    expect(fetch.mock.calls[0]?.[1]?.body).toBe(JSON.stringify({ text: "hello" }));
    expect(fetch.mock.calls[1]?.[1]?.method).toBe("DELETE");
  });

  it("sign in posts the secret once and keeps it nowhere", async () => {
    const fetch = respond(204, undefined);
    vi.stubGlobal("fetch", fetch);
    await signIn("hunter2");
    expect(fetch.mock.calls[0]?.[0]).toBe("/api/operator/session");
    expect(fetch.mock.calls[0]?.[1]?.body).toBe(JSON.stringify({ secret: "hunter2" }));
  });

  it("reads the session: its end, or null when signed out", async () => {
    vi.stubGlobal("fetch", respond(200, { expiresAt: 1_700_000_000_000 }));
    expect(await currentSession()).toBe(1_700_000_000_000);
    vi.stubGlobal("fetch", respond(401, { detail: "no session" }));
    expect(await currentSession()).toBeNull();
    vi.stubGlobal("fetch", respond(503, { detail: "operator routes are not configured" }));
    await expect(currentSession()).rejects.toBeInstanceOf(ApiError);
  });
});

describe("error text", () => {
  const failing = async (status: number, body: unknown, headers: Record<string, string> = {}) => {
    vi.stubGlobal("fetch", respond(status, body, headers));
    return post("/x").catch((err: unknown) => err);
  };

  it("says what went wrong at sign-in", async () => {
    expect(signInErrorText(await failing(401, { detail: "wrong" }))).toBe("Wrong operator secret");
    expect(signInErrorText(await failing(429, { detail: "slow down" }, { "Retry-After": "30" }))).toBe(
      "Too many attempts, try again in 30 s",
    );
    expect(signInErrorText(await failing(503, { detail: "operator routes are not configured" }))).toBe(
      "The console is not available: operator routes are not configured",
    );
  });

  it("names the fields of a 422 beside the control", async () => {
    const err = await failing(422, {
      detail: [
        { loc: ["body", "url"], msg: "the stage will not capture this URL: loopback" },
        { loc: ["body", "kind"], msg: "Input should be 'screenshot' or 'clip'" },
      ],
    });
    expect(errorText(err)).toBe("url: the stage will not capture this URL: loopback; kind: Input should be 'screenshot' or 'clip'");
  });

  it("covers signed-out, unreachable, rate-limited and busy backends", async () => {
    expect(errorText(await failing(401, { detail: "x" }))).toBe("Signed out: sign in again");
    expect(errorText(await failing(429, {}, { "Retry-After": "4" }))).toBe("Too many requests, try again in 4 s");
    expect(errorText(await failing(503, { detail: "the message bus is down" }, { "Retry-After": "2" }))).toBe(
      "The message bus is down (try again in 2 s)",
    );
    vi.stubGlobal("fetch", vi.fn(async () => Promise.reject(new TypeError("offline"))));
    expect(errorText(await post("/x").catch((e: unknown) => e))).toBe("Cannot reach the edge: check the connection");
  });
});

describe("parseEventData", () => {
  it("reads JSON and refuses the rest", () => {
    expect(parseEventData('{"layout":"corner"}')).toEqual({ layout: "corner" });
    expect(parseEventData("null")).toBeNull();
    expect(parseEventData("<html>")).toBeUndefined();
  });
});
