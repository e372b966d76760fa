// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../src/api";
import { OPERATOR_HEADER } from "../src/operator/api";
import { eventsUrl } from "../src/operator/events";
import { consoleUrl, createShow, deleteShow, forShow, listShows, newShowBody, parseShows, pickedShow, previewUrl } from "../src/operator/shows";
import { renderShowList } from "../src/operator/view";

const XSS = "<img src=x onerror=alert(1)>";

function respond(status: number, body: unknown) {
  return vi.fn(async (_url: string, _init?: RequestInit) =>
    new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { "content-type": "application/json" } }),
  );
}

afterEach(() => vi.unstubAllGlobals());

const info = (room: unknown, state = "live", title = "") => ({ config: { room, title }, state, reason: state === "ended" ? "done" : "", layout: "corner" });

describe("the shows list", () => {
  it("keeps well-formed shows in the edge's order and drops the rest", () => {
    const shows = parseShows({ shows: [info("main"), info("quiz", "ended", "Quiz night"), info("bad room"), info(7), "junk"] });
    expect(shows).toEqual([
      { room: "main", title: "", state: "live", reason: "" },
      { room: "quiz", title: "Quiz night", state: "ended", reason: "done" },
    ]);
    expect(parseShows({})).toEqual([]);
    expect(parseShows(null)).toEqual([]);
  });

  it("renders names and titles as text, the picked show pressed", () => {
    const picked: string[] = [];
    const items = renderShowList(
      [
        { room: "main", title: XSS, state: "live", reason: "" },
        { room: "quiz", title: "Quiz", state: "ended", reason: "" },
      ],
      "quiz",
      (room) => picked.push(room),
    );
    expect(items.map((li) => li.dataset.room)).toEqual(["main", "quiz"]);
    expect(items[0]?.querySelector("img")).toBeNull();
    expect(items[0]?.textContent).toContain(XSS);
    expect(items.map((li) => li.querySelector("button")?.getAttribute("aria-pressed"))).toEqual(["false", "true"]);
    expect(items[1]?.dataset.state).toBe("ended");
    items[0]?.querySelector("button")?.click();
    expect(picked).toEqual(["main"]);
  });
});

describe("the picked show", () => {
  it("comes from the URL, and only a valid show name", () => {
    expect(pickedShow("?show=quiz")).toBe("quiz");
    expect(pickedShow("")).toBeUndefined();
    expect(pickedShow("?show=%3Cscript%3E")).toBeUndefined();
  });

  it("goes in the URL, the default show as none", () => {
    expect(consoleUrl("https://edge.test/operator?x=1#chat", "quiz")).toBe("/operator?x=1&show=quiz#chat");
    expect(consoleUrl("https://edge.test/operator?show=quiz", undefined)).toBe("/operator");
  });

  it("is on every API path, the event stream and the preview", () => {
    expect(forShow("/host/pause", "quiz")).toBe("/host/pause?show=quiz");
    expect(forShow("/egress?x=1", "quiz")).toBe("/egress?x=1&show=quiz");
    expect(forShow("/host/pause", undefined)).toBe("/host/pause");
    expect(eventsUrl("quiz")).toBe("/api/operator/events?show=quiz");
    expect(eventsUrl(undefined)).toBe("/api/operator/events");
    const url = new URL(previewUrl("quiz"), "https://edge.test");
    expect(url.pathname).toBe("/stage");
    expect(Object.fromEntries(url.searchParams)).toEqual({ captions: "1", width: "640", height: "360", preview: "1", show: "quiz" });
    expect(new URL(previewUrl(undefined), "https://edge.test").searchParams.has("show")).toBe(false);
  });
});

describe("creating and deleting shows", () => {
  const form = { room: " quiz ", title: " Quiz night ", persona: "", voice: "local", avatar: "", topics: "space, cooking\n, " };

  it("sends empty choices as the deployment's setting and the topics as a list", () => {
    expect(newShowBody(form)).toEqual({
      room: "quiz",
      title: "Quiz night",
      persona: null,
      voice: "local",
      avatar: null,
      stage: { topics: ["space", "cooking"] },
    });
  });

  it("turns memory of regulars off only when asked", () => {
    const form = { room: "quiz", title: "Quiz", persona: "", voice: "", avatar: "", topics: "" };
    expect(newShowBody({ ...form, memory: false })).toMatchObject({ memory: false });
    expect(newShowBody({ ...form, memory: true })).not.toHaveProperty("memory");
  });

  it("calls the shows routes with the operator header", async () => {
    const fetch = respond(201, info("quiz"));
    vi.stubGlobal("fetch", fetch);
    await createShow(form);
    await deleteShow("quiz");
    expect(fetch.mock.calls.map(([url, init]) => [url, init?.method])).toEqual([
      ["/api/operator/shows", "POST"],
      ["/api/operator/shows/quiz", "DELETE"],
    ]);
    for (const [, init] of fetch.mock.calls) expect(new Headers(init?.headers).get(OPERATOR_HEADER)).toBe("1");
    vi.stubGlobal("fetch", respond(200, { shows: [info("main"), info("quiz")] }));
    expect((await listShows()).map((s) => s.room)).toEqual(["main", "quiz"]);
  });

  it("hands a refusal's field errors to the form", async () => {
    vi.stubGlobal(
      "fetch",
      respond(422, { detail: [{ loc: ["body", "stage", "topics"], msg: "unknown topic: knitting", type: "value_error" }] }),
    );
    const refused = await createShow(form).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).fieldErrors).toEqual({ topics: "unknown topic: knitting" });
  });
});
