// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { CaptionView, HOST_PERSONA_ATTRIBUTE, HOST_STATE_ATTRIBUTE, findHost, parseHostState, posterInitial, showHostState } from "../src/host";

describe("parseHostState", () => {
  it("accepts the four states only", () => {
    for (const s of ["idle", "thinking", "speaking", "paused"]) expect(parseHostState(s)).toBe(s);
    for (const bad of ["", "listening", "SPEAKING", undefined, null, "<b>x</b>"]) expect(parseHostState(bad)).toBeNull();
  });
});

describe("findHost", () => {
  const host = { identity: "agent-AJ_1", isAgent: true, attributes: { [HOST_STATE_ATTRIBUTE]: "speaking", [HOST_PERSONA_ATTRIBUTE]: "Nova" } };
  it("is the agent participant that reports a host state", () => {
    expect(findHost([{ identity: "viewer_a_1", isAgent: false, attributes: { [HOST_STATE_ATTRIBUTE]: "idle" } }, host])).toEqual({
      identity: "agent-AJ_1",
      state: "speaking",
      persona: "Nova",
    });
  });
  it("ignores agents without a state (e.g. an avatar) and viewers faking one", () => {
    expect(findHost([{ identity: "avatar-host", isAgent: true, attributes: {} }])).toBeNull();
    expect(findHost([{ identity: "viewer_x_1", isAgent: false, attributes: { [HOST_STATE_ATTRIBUTE]: "speaking" } }])).toBeNull();
  });
});

function fakeTimers() {
  const pending = new Map<number, () => void>();
  let next = 1;
  return {
    setTimer: (fn: () => void) => {
      pending.set(next, fn);
      return next++;
    },
    clearTimer: (id: number) => void pending.delete(id),
    fire: () => {
      const fns = [...pending.values()];
      pending.clear();
      fns.forEach((fn) => fn());
    },
    pending,
  };
}

describe("CaptionView", () => {
  it("grows a line with each chunk and clears it after the hold", () => {
    const el = document.createElement("div");
    const timers = fakeTimers();
    const view = new CaptionView(el, { holdMs: 1000, ...timers });
    expect(el.hidden).toBe(true);
    view.append("s1", "Hey ");
    view.append("s1", "Ada, ");
    view.append("s1", "welcome!");
    expect(el.textContent).toBe("Hey Ada, welcome!");
    expect(el.hidden).toBe(false);
    view.end("s1");
    expect(timers.pending.size).toBe(1);
    timers.fire();
    expect(el.hidden).toBe(true);
    expect(view.shown).toBe("");
  });

  it("starts a new line for a new segment and keeps the newest words of a long one", () => {
    const el = document.createElement("div");
    const timers = fakeTimers();
    const view = new CaptionView(el, { maxChars: 20, ...timers });
    view.append("s1", "first line");
    view.end("s1");
    view.append("s2", "second ");
    expect(el.textContent).toBe("second");
    expect(timers.pending.size).toBe(0); // the old segment's clear was cancelled
    view.append("s2", "one that goes on and on and on");
    expect(el.textContent?.startsWith("…")).toBe(true);
    expect(el.textContent?.endsWith("and on")).toBe(true);
    expect((el.textContent ?? "").length).toBeLessThanOrEqual(21);
  });

  it("renders markup as text", () => {
    const el = document.createElement("div");
    const view = new CaptionView(el, fakeTimers());
    view.append("s", "<img src=x onerror=alert(1)>");
    expect(el.children.length).toBe(0);
    expect(el.textContent).toBe("<img src=x onerror=alert(1)>");
  });
});

describe("showHostState", () => {
  it("shows the persona and state, and hides when the host is gone", () => {
    const el = document.createElement("span");
    showHostState(el, { state: "thinking", persona: "Nova" });
    expect(el.dataset.state).toBe("thinking");
    expect(el.textContent).toBe("Nova · Thinking…");
    expect(el.hidden).toBe(false);
    showHostState(el, null);
    expect(el.hidden).toBe(true);
    expect(el.dataset.state).toBe("absent");
  });
});

describe("posterInitial", () => {
  it("is the persona's first letter, upper-cased", () => {
    expect(posterInitial("nova")).toBe("N");
    expect(posterInitial(" Ünal")).toBe("Ü");
    expect(posterInitial("")).toBe("");
    expect(posterInitial(undefined)).toBe("");
  });
});
