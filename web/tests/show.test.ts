import { afterEach, describe, expect, it, vi } from "vitest";
import { getConfig, mintToken } from "../src/api";
import { showFromPath, showFromQuery } from "../src/show";

afterEach(() => vi.unstubAllGlobals());

describe("showFromPath", () => {
  it("reads /s/<show>", () => {
    expect(showFromPath("/s/quiz-night")).toBe("quiz-night");
    expect(showFromPath("/s/Late_Show_2/")).toBe("Late_Show_2");
    expect(showFromPath("/s/%61bc")).toBe("abc");
  });
  it("is the default show on / and elsewhere", () => {
    expect(showFromPath("/")).toBeUndefined();
    expect(showFromPath("/index.html")).toBeUndefined();
    expect(showFromPath("/s/")).toBeUndefined();
    expect(showFromPath("/s/a/b")).toBeUndefined();
    expect(showFromPath("/x/s/quiz")).toBeUndefined();
  });
  it("refuses names that are no room name", () => {
    expect(showFromPath("/s/%3Cscript%3E")).toBeUndefined();
    expect(showFromPath("/s/a.b")).toBeUndefined();
    expect(showFromPath(`/s/${"x".repeat(65)}`)).toBeUndefined();
    expect(showFromPath("/s/%E0%A4%A")).toBeUndefined(); // malformed escape
  });
});

describe("showFromQuery", () => {
  it("reads ?show= for the stage page", () => {
    expect(showFromQuery(new URLSearchParams("show=quiz&width=1280"))).toBe("quiz");
    expect(showFromQuery(new URLSearchParams("width=1280"))).toBeUndefined();
    expect(showFromQuery(new URLSearchParams("show="))).toBeUndefined();
    expect(showFromQuery(new URLSearchParams("show=a%20b"))).toBeUndefined();
  });
});

describe("the show travels to the edge", () => {
  const config = { roomName: "quiz", title: "Quiz night", avatars: ["fox"] };
  it("asks for the show's config, or the default one", async () => {
    const f = vi.fn(async (_url: string, _init?: RequestInit) => new Response(JSON.stringify(config), { status: 200 }));
    vi.stubGlobal("fetch", f);
    expect((await getConfig("quiz")).title).toBe("Quiz night");
    await getConfig();
    expect(f.mock.calls.map((call) => call[0])).toEqual(["/api/config?show=quiz", "/api/config"]);
  });
  it("names the show in the token request, and leaves it out for the default show", async () => {
    const token = { token: "t", url: "ws://lk", roomName: "quiz", agentName: "a", identity: "viewer_x_1" };
    const f = vi.fn(async (_url: string, _init?: RequestInit) => new Response(JSON.stringify(token), { status: 200 }));
    vi.stubGlobal("fetch", f);
    await mintToken({ displayName: "Ada", avatar: "fox", role: "viewer", show: "quiz" });
    await mintToken({ displayName: "Ada", avatar: "fox", role: "viewer", show: undefined });
    const bodies = f.mock.calls.map((call) => JSON.parse(String(call[1]?.body)));
    expect(bodies).toEqual([
      { displayName: "Ada", avatar: "fox", role: "viewer", show: "quiz" },
      { displayName: "Ada", avatar: "fox", role: "viewer" },
    ]);
  });
});
