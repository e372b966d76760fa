// @vitest-environment happy-dom
import { describe, expect, it, vi } from "vitest";
import type { ChatEntry } from "../src/operator/model";
import { chatEntry } from "./operator-fixtures";
import { renderChatEntry, renderLayoutChoices, renderVisual } from "../src/operator/view";

const XSS = "<img src=x onerror=alert(1)>";

const entry = (over: Partial<ChatEntry> = {}) => chatEntry(over, { authorName: XSS, body: XSS, createdAt: 0 });

describe("renderChatEntry", () => {
  it("puts names and bodies in as text, never as markup", () => {
    const li = renderChatEntry(entry(), { remove: vi.fn(), ban: vi.fn() });
    expect(li.querySelector("img")).toBeNull();
    expect(li.querySelector(".op-chat-body")?.textContent).toBe(XSS);
    expect(li.querySelector(".op-author")?.textContent).toBe(XSS);
  });

  it("offers remove and both bans on a shown viewer line, and calls back with the entry", () => {
    const actions = { remove: vi.fn(), ban: vi.fn() };
    const e = entry();
    const li = renderChatEntry(e, actions);
    li.querySelector<HTMLButtonElement>(".op-remove")?.click();
    li.querySelector<HTMLButtonElement>(".op-ban-network")?.click();
    expect(actions.remove).toHaveBeenCalledWith(e, expect.anything());
    expect(actions.ban).toHaveBeenCalledWith(e, "network", expect.anything());
    expect(li.dataset.outcome).toBe("approved");
  });

  it("shows a rejected line with its checks and without remove", () => {
    const li = renderChatEntry(entry({ outcome: "rejected", checks: ["links"], reason: "a link" }), { remove: vi.fn(), ban: vi.fn() });
    expect(li.querySelector(".op-outcome")?.textContent).toBe("rejected: links (a link)");
    expect(li.querySelector(".op-remove")).toBeNull();
    expect(li.querySelector(".op-ban-visitor")).not.toBeNull();
  });
});

describe("the Forget control", () => {
  it("erases a viewer by their visitor tag, a platform author by their identity", () => {
    const forget = vi.fn();
    const viewer = chatEntry({}, { authorIdentity: "viewer_0123456789abcdef_x1y2" });
    renderChatEntry(viewer, { remove: vi.fn(), ban: vi.fn(), forget }).querySelector<HTMLButtonElement>(".op-forget")?.click();
    expect(forget).toHaveBeenCalledWith(viewer, "0123456789abcdef", expect.anything());
    const twitch = chatEntry({}, { authorIdentity: "twitch:4242" });
    renderChatEntry(twitch, { remove: vi.fn(), ban: vi.fn(), forget }).querySelector<HTMLButtonElement>(".op-forget")?.click();
    expect(forget).toHaveBeenLastCalledWith(twitch, "twitch:4242", expect.anything());
  });

  it("is not offered for the host's lines", () => {
    const host = chatEntry({}, { authorIdentity: "livestage-host", kind: "host" });
    expect(renderChatEntry(host, { remove: vi.fn(), ban: vi.fn(), forget: vi.fn() }).querySelector(".op-forget")).toBeNull();
  });
});

describe("renderVisual and the layout choices", () => {
  it("pins the visual it shows", () => {
    const onPin = vi.fn();
    const visual = { id: "v1", room: "main", kind: "screenshot" as const, url: "/media/v1.png", sourceUrl: "", title: XSS, summary: "", topic: "", createdAt: 0, expiresAt: 0 };
    const li = renderVisual(visual, onPin);
    expect(li.querySelector(".op-visual-title")?.textContent).toBe(XSS);
    li.querySelector<HTMLButtonElement>(".op-pin")?.click();
    expect(onPin).toHaveBeenCalledWith(visual, expect.anything());
  });

  it("renders the five layouts as one radio group", () => {
    const box = document.createElement("div");
    const chosen: string[] = [];
    const inputs = renderLayoutChoices(box, (layout) => chosen.push(layout));
    expect([...inputs.keys()]).toEqual(["corner", "side", "center", "visual-only", "host-only"]);
    expect(new Set([...inputs.values()].map((i) => i.name))).toEqual(new Set(["layout"]));
    const side = inputs.get("side");
    if (!side) throw new Error("no side input");
    side.checked = true;
    side.dispatchEvent(new Event("change"));
    expect(chosen).toEqual(["side"]);
  });
});
