// @vitest-environment happy-dom
import { deflateRawSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { ApiError } from "../src/api";
import {
  ChatStore,
  ChatView,
  ResumePoint,
  SendIds,
  catchUp,
  chatPacketsOf,
  decodeChatPayload,
  eventLabel,
  renderMessage,
  resumeCursor,
  sendChat,
} from "../src/chat";
import type { ChatMessage, HistoryPage } from "../src/types";

let seq = 0;
function msg(over: Partial<ChatMessage> = {}): ChatMessage {
  seq++;
  return {
    id: `m${seq}`,
    room: "main",
    authorIdentity: "viewer_abc_00000001",
    authorName: "Ada",
    avatar: "fox",
    body: "hello",
    kind: "viewer",
    createdAt: 1_700_000_000_000 + seq,
    ...over,
  };
}

describe("ChatStore", () => {
  it("adds a message once per id", () => {
    const store = new ChatStore();
    const m = msg();
    expect(store.add(m).kind).toBe("added");
    expect(store.add({ ...m }).kind).toBe("duplicate");
    expect(store.size).toBe(1);
  });

  it("upgrades a pending echo when the real message arrives, and only once", () => {
    const store = new ChatStore();
    const m = msg();
    store.add(m, "pending");
    const r = store.add({ ...m, createdAt: m.createdAt + 5 });
    expect(r.kind).toBe("updated");
    expect(store.get(m.id)?.status).toBe("shown");
    expect(store.add(m).kind).toBe("duplicate");
  });

  it("does not downgrade a shown message to pending (echo after live packet)", () => {
    const store = new ChatStore();
    const m = msg();
    store.add(m);
    expect(store.add(m, "pending").kind).toBe("duplicate");
    expect(store.get(m.id)?.status).toBe("shown");
  });

  it("keeps createdAt order when history arrives after live messages", () => {
    const store = new ChatStore();
    const live = msg({ createdAt: 2000 });
    const old1 = msg({ createdAt: 1000 });
    const old2 = msg({ createdAt: 1500 });
    store.add(live);
    expect(store.add(old1)).toMatchObject({ kind: "added", index: 0 });
    expect(store.add(old2)).toMatchObject({ kind: "added", index: 1 });
    expect(store.list().map((e) => e.message.id)).toEqual([old1.id, old2.id, live.id]);
  });

  it("evicts the oldest past capacity", () => {
    const store = new ChatStore(3);
    const ms = [msg(), msg(), msg(), msg()];
    const results = ms.map((m) => store.add(m));
    expect(results[3]).toMatchObject({ kind: "added", evicted: [ms[0].id], index: 2 });
    expect(store.has(ms[0].id)).toBe(false);
    expect(store.size).toBe(3);
  });

  it("applies a rejection that arrives before the echo", () => {
    const store = new ChatStore();
    const m = msg();
    expect(store.reject(m.id, "spam")).toBeUndefined();
    store.add(m, "pending");
    expect(store.get(m.id)?.status).toBe("rejected");
  });

  it("removes a message and keeps it out when it comes again", () => {
    const store = new ChatStore();
    const [a, b, c] = [msg(), msg(), msg()];
    for (const m of [a, b, c]) store.add(m);
    expect(store.remove(b.id)).toEqual({ kind: "removed", index: 1 });
    expect(store.list().map((e) => e.message.id)).toEqual([a.id, c.id]);
    expect(store.add(b).kind).toBe("duplicate"); // a late live packet or a history reload
    expect(store.has(b.id)).toBe(false);
    expect(store.remove(b.id)).toEqual({ kind: "unknown" });
  });

  it("applies a removal that arrives before its message", () => {
    const store = new ChatStore();
    const m = msg();
    expect(store.remove(m.id)).toEqual({ kind: "unknown" });
    expect(store.isRemoved(m.id)).toBe(true);
    expect(store.add(m).kind).toBe("duplicate");
    expect(store.add(m, "pending").kind).toBe("duplicate");
    expect(store.size).toBe(0);
  });

  it("marks a known message rejected", () => {
    const store = new ChatStore();
    const m = msg();
    store.add(m, "pending");
    expect(store.reject(m.id)?.status).toBe("rejected");
  });
});

describe("renderMessage", () => {
  it("renders author and body as text, never as markup", () => {
    const evil = msg({ authorName: "<b>boss</b>", body: '<img src=x onerror="alert(1)">' });
    const li = renderMessage({ message: evil, status: "shown" });
    expect(li.classList.contains("chat-message")).toBe(true);
    expect(li.dataset.id).toBe(evil.id);
    expect(li.querySelector(".chat-author")?.textContent).toBe("<b>boss</b>");
    expect(li.querySelector(".chat-body")?.textContent).toBe('<img src=x onerror="alert(1)">');
    expect(li.querySelector("img")).toBeNull();
    expect(li.querySelector("b")).toBeNull();
  });

  it("survives an out-of-range timestamp", () => {
    const li = renderMessage({ message: msg({ createdAt: 1e20 }), status: "shown" });
    expect(li.querySelector(".chat-time")?.textContent).toBe("");
  });

  it("labels host lines with a fixed badge, and only host lines", () => {
    const host = renderMessage({ message: msg({ kind: "host", authorName: "<i>Cara</i>" }), status: "shown" });
    expect(host.querySelector(".chat-badge")?.textContent).toBe("host");
    expect(host.querySelector(".chat-author")?.textContent).toBe("<i>Cara</i>");
    expect(host.querySelector("i")).toBeNull();
    const viewer = renderMessage({ message: msg({ authorName: "host" }), status: "shown" });
    expect(viewer.querySelector(".chat-badge")).toBeNull();
  });

  it("marks status and kind", () => {
    const li = renderMessage({ message: msg({ kind: "host", authorName: "Host" }), status: "pending" });
    expect(li.dataset.kind).toBe("host");
    expect(li.dataset.status).toBe("pending");
    expect(li.classList.contains("pending")).toBe(true);
    expect(li.classList.contains("chat-host")).toBe(true);
  });
});

describe("renderMessage of platform chat", () => {
  function platform(over: Partial<ChatMessage["source"] & object> = {}, message: Partial<ChatMessage> = {}): ChatMessage {
    return msg({
      authorIdentity: "twitch:42",
      authorName: "Marta",
      avatar: "twitch",
      source: { platform: "twitch", userId: "42", messageId: "t-1", roles: [], event: "message", amount: "", ...over },
      ...message,
    });
  }

  it("badges the platform by the name, as text, and draws its mark inline (no image)", () => {
    for (const [name, label] of [
      ["twitch", "Twitch"],
      ["youtube", "YouTube"],
    ] as const) {
      const li = renderMessage({ message: platform({ platform: name }, { avatar: name }), status: "shown" });
      expect(li.dataset.platform).toBe(name);
      const badge = li.querySelector(".chat-platform");
      expect(badge?.textContent).toBe(label);
      expect(badge?.getAttribute("title")).toBe(`from ${label} chat`);
      expect(li.querySelector(".chat-meta")?.firstElementChild?.className).toBe("chat-author");
      const mark = li.querySelector(".chat-avatar svg");
      expect(mark?.getAttribute("class")).toContain(`platform-${name}`);
      expect(mark?.getAttribute("aria-hidden")).toBe("true");
      expect(li.querySelector(".chat-avatar")?.textContent).toBe(""); // not the letter of "twitch"
      expect(li.querySelector("img")).toBeNull();
      expect(li.classList.contains("chat-event")).toBe(false);
    }
  });

  it("marks broadcasters and moderators, not members", () => {
    const li = renderMessage({ message: platform({ roles: ["broadcaster", "moderator", "subscriber"] }), status: "shown" });
    expect(Array.from(li.querySelectorAll(".chat-role"), (e) => e.textContent)).toEqual(["streamer", "mod"]);
    const plain = renderMessage({ message: platform({ roles: ["subscriber", "vip"] }), status: "shown" });
    expect(plain.querySelector(".chat-role")).toBeNull();
  });

  it("shows Super Chats, memberships, subs and cheers apart, with the amount, as text", () => {
    const superChat = renderMessage({
      message: platform(
        { platform: "youtube", event: "super_chat", amount: "$5.00" },
        { body: "<b>love the show</b>", authorIdentity: "youtube:UCx" },
      ),
      status: "shown",
    });
    expect(superChat.classList.contains("chat-event")).toBe(true);
    expect(superChat.dataset.event).toBe("super_chat");
    expect(superChat.querySelector(".chat-event-label")?.textContent).toBe("Super Chat · $5.00");
    expect(superChat.querySelector(".chat-body")?.textContent).toBe("<b>love the show</b>");
    expect(superChat.querySelector("b")).toBeNull();
    const evil = renderMessage({ message: platform({ event: "cheer", amount: "<img src=x>" }), status: "shown" });
    expect(evil.querySelector(".chat-event-label")?.textContent).toBe("Cheer · <img src=x>");
    expect(evil.querySelector("img")).toBeNull();
    const member = platform({ platform: "youtube", event: "membership" }).source!;
    expect(eventLabel(member)).toBe("New member");
    expect(eventLabel(platform({ event: "subscription", amount: "Tier 1" }).source!)).toBe("Subscribed · Tier 1");
    expect(eventLabel(platform().source!)).toBe("");
  });

  it("leaves page chat as it was", () => {
    const li = renderMessage({ message: msg(), status: "shown" });
    expect(li.dataset.platform).toBeUndefined();
    expect(li.querySelector(".chat-platform, .chat-role, .chat-event-label, svg")).toBeNull();
    expect(li.querySelector(".chat-avatar")?.textContent).toBe("🦊");
  });
});

describe("chatPacketsOf", () => {
  it("gives a batch's events in order and a single packet as itself", () => {
    const [a, b] = [msg(), msg()];
    const batch = {
      type: "batch",
      events: [
        { type: "message", message: a, seq: 7 },
        { type: "removed", messageId: "gone" },
        { type: "message", message: b, seq: 8 },
      ],
    };
    expect(chatPacketsOf(batch)).toEqual([
      { type: "message", message: a, seq: 7 },
      { type: "removed", messageId: "gone" },
      { type: "message", message: b, seq: 8 },
    ]);
    expect(chatPacketsOf({ type: "message", message: a })).toEqual([{ type: "message", message: a, seq: 0 }]);
    expect(chatPacketsOf({ type: "rejected", messageId: "x", reason: "no" })).toEqual([
      { type: "rejected", messageId: "x", reason: "no" },
    ]);
  });

  it("skips what it cannot read, and a rejection inside a batch (a batch goes to everyone)", () => {
    const a = msg();
    const batch = {
      type: "batch",
      events: [null, { type: "rejected", messageId: "x", reason: "no" }, { type: "message" }, { type: "message", message: a, seq: 3 }],
    };
    expect(chatPacketsOf(batch)).toEqual([{ type: "message", message: a, seq: 3 }]);
    expect(chatPacketsOf({ type: "batch" })).toEqual([]);
    expect(chatPacketsOf({ type: "batch", events: "no" })).toEqual([]);
    expect(chatPacketsOf("batch")).toEqual([]);
    expect(chatPacketsOf(null)).toEqual([]);
  });
});

describe("ChatStore approval order", () => {
  const ids = (store: ChatStore) => store.list().map((e) => e.message.id);

  it("places live messages by seq whatever order their packets came in", () => {
    const store = new ChatStore();
    // createdAt says the opposite: seq (the approval order) wins
    const [m1, m2, m3, m4] = [msg({ createdAt: 40 }), msg({ createdAt: 30 }), msg({ createdAt: 20 }), msg({ createdAt: 10 })];
    store.add(m3, "shown", 3);
    store.add(m1, "shown", 1);
    store.add(m4, "shown", 4);
    expect(store.add(m2, "shown", 2)).toMatchObject({ kind: "added", index: 1 });
    expect(ids(store)).toEqual([m1.id, m2.id, m3.id, m4.id]);
  });

  it("keeps history and host lines (no seq) where they are: a late packet goes no further back", () => {
    const store = new ChatStore();
    const old = msg({ createdAt: 5 });
    store.add(old); // from history
    const [m10, m12] = [msg(), msg()];
    store.add(m10, "shown", 10);
    const host = msg({ kind: "host", createdAt: Date.now() });
    store.add(host); // a host line, shown where it arrived
    store.add(m12, "shown", 12);
    const m11 = msg({ createdAt: 1 });
    store.add(m11, "shown", 11);
    expect(ids(store)).toEqual([old.id, m10.id, host.id, m11.id, m12.id]);
  });

  it("keeps an echo's place and takes the seq when the live copy confirms it", () => {
    const store = new ChatStore();
    const mine = msg({ createdAt: 50 });
    store.add(mine, "pending");
    expect(store.add(mine, "shown", 9).kind).toBe("updated");
    expect(store.get(mine.id)?.seq).toBe(9);
    const earlier = msg({ createdAt: 60 });
    store.add(earlier, "shown", 8);
    expect(ids(store)).toEqual([earlier.id, mine.id]);
  });
});

describe("ChatView", () => {
  it("shows a batch in approval order when its packets come out of order", () => {
    const list = document.createElement("ol");
    const view = new ChatView(list);
    const [a, b, c, d] = [msg(), msg(), msg(), msg()];
    const packets = [
      { type: "batch", events: [{ type: "message", message: c, seq: 103 }, { type: "message", message: d, seq: 104 }] },
      { type: "batch", events: [{ type: "message", message: a, seq: 101 }, { type: "message", message: b, seq: 102 }] },
    ];
    for (const packet of packets) {
      for (const event of chatPacketsOf(packet)) if (event.type === "message") view.add(event.message, "shown", event.seq);
    }
    const shown = Array.from(list.querySelectorAll<HTMLElement>(".chat-message"), (li) => li.dataset.id);
    expect(shown).toEqual([a.id, b.id, c.id, d.id]);
  });

  it("keeps the list in step with the store", () => {
    const list = document.createElement("ol");
    const view = new ChatView(list, 3);
    const a = msg({ createdAt: 10 });
    const b = msg({ createdAt: 30 });
    const c = msg({ createdAt: 20 });
    view.add(a);
    view.add(b, "pending");
    view.add(c);
    view.add(b); // confirms the echo
    view.add(a); // duplicate from history
    const ids = Array.from(list.querySelectorAll<HTMLElement>(".chat-message"), (li) => li.dataset.id);
    expect(ids).toEqual([a.id, c.id, b.id]);
    expect(list.querySelector(`[data-id="${b.id}"]`)?.getAttribute("data-status")).toBe("shown");

    view.reject(c.id, "nope");
    expect(list.querySelector(`[data-id="${c.id}"]`)?.classList.contains("rejected")).toBe(true);

    const d = msg({ createdAt: 40 });
    view.add(d);
    expect(list.children.length).toBe(3);
    expect(list.querySelector(`[data-id="${a.id}"]`)).toBeNull();
  });

  it("hides a removed message at once, and a copy of it that arrives later", () => {
    const list = document.createElement("ol");
    const view = new ChatView(list);
    const [a, b] = [msg(), msg()];
    view.add(a);
    view.add(b);
    view.remove(a.id);
    expect(list.querySelector(`[data-id="${a.id}"]`)).toBeNull();
    view.add(a); // from a history reload
    expect(Array.from(list.children, (li) => (li as HTMLElement).dataset.id)).toEqual([b.id]);

    const early = msg();
    view.remove(early.id); // the removal overtook the message
    view.add(early);
    expect(list.querySelector(`[data-id="${early.id}"]`)).toBeNull();
    expect(list.children.length).toBe(1);
  });
});

describe("sendChat clientId", () => {
  /** A fake edge that stores a message once per clientId, answering with `answers` in turn. */
  function edge(answers: Array<"ok" | 401 | 503>) {
    const calls: Array<{ body: string; clientId: string }> = [];
    const post = async (body: string, clientId: string): Promise<string> => {
      calls.push({ body, clientId });
      const answer = answers.shift() ?? "ok";
      if (answer !== "ok") throw new ApiError(answer, "no");
      return `id-${clientId}`;
    };
    return { calls, post };
  }
  let n = 0;
  const ids = () => new SendIds(() => `client-${++n}`);

  it("retries after renewing an expired token with the same clientId", async () => {
    const e = edge([401, "ok"]);
    let renewed = 0;
    const id = await sendChat("hi", ids(), e.post, async () => void renewed++);
    expect(renewed).toBe(1);
    expect(e.calls).toHaveLength(2);
    expect(e.calls[1].clientId).toBe(e.calls[0].clientId);
    expect(id).toBe(`id-${e.calls[0].clientId}`);
  });

  it("keeps the clientId when the viewer resends after a 503, and takes a new one for a new message", async () => {
    const e = edge([503, "ok", "ok", "ok"]);
    const s = ids();
    const renew = async () => {};
    await expect(sendChat("hi", s, e.post, renew)).rejects.toMatchObject({ status: 503 });
    const first = await sendChat("hi", s, e.post, renew);
    expect(e.calls[1].clientId).toBe(e.calls[0].clientId);
    // The same text sent again after it was accepted is a new message.
    const second = await sendChat("hi", s, e.post, renew);
    expect(e.calls[2].clientId).not.toBe(e.calls[1].clientId);
    expect(second).not.toBe(first);
    // Another text is a new message too.
    await sendChat("bye", s, e.post, renew);
    expect(new Set(e.calls.map((c) => c.clientId)).size).toBe(3);
  });

  it("takes a new clientId when the viewer edits the text after a failure", async () => {
    const e = edge([503, "ok"]);
    const s = ids();
    await expect(sendChat("helo", s, e.post, async () => {})).rejects.toBeInstanceOf(ApiError);
    await sendChat("hello", s, e.post, async () => {});
    expect(e.calls[1].clientId).not.toBe(e.calls[0].clientId);
  });
});

/** chat-history as the edge relays it: messages in the order they were stored, `after` paging. */
class FakeHistory {
  readonly stored: ChatMessage[] = [];
  readonly asked: (string | undefined)[] = [];

  constructor(
    readonly limit = 50,
    readonly newest = 50,
  ) {}

  page = async (after: string | undefined): Promise<HistoryPage> => {
    this.asked.push(after);
    if (after === undefined) return { messages: this.stored.slice(-this.newest), more: false, gap: false };
    const at = this.stored.findIndex((m) => m.id === after);
    if (at < 0) return { messages: this.stored.slice(-this.limit), more: false, gap: true };
    const rest = this.stored.slice(at + 1);
    return { messages: rest.slice(0, this.limit), more: rest.length > this.limit, gap: false };
  };
}

describe("catching up after a lost connection", () => {
  it("ends with every message once and in order, though 120 were sent while away", async () => {
    const history = new FakeHistory(50);
    const store = new ChatStore();
    const resume = new ResumePoint(store, 5);
    const live = (m: ChatMessage) => {
      history.stored.push(m);
      store.add(m);
    };
    for (let i = 0; i < 30; i++) live(msg());
    // a message stored just before the newest one we hold, whose send had not reached us yet
    const raced = msg();
    history.stored.push(raced);
    live(msg());
    resume.lost(); // the connection drops here
    const missed = Array.from({ length: 120 }, () => msg());
    history.stored.push(...missed);
    resume.lost(); // still down: the point stays
    // rejoined: a live message arrives before the history answer
    live(msg());

    const result = await catchUp(history.page, resume.from(), (m) => store.add(m));
    resume.caughtUp();

    expect(result).toEqual({ pages: 3, gap: false });
    expect(history.asked[0]).toBe(history.stored[25].id); // 5 shown messages before the newest
    const ids = store.list().map((e) => e.message.id);
    expect(ids).toEqual(history.stored.map((m) => m.id)); // each once, in order
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("loads the newest messages on a first join", async () => {
    const history = new FakeHistory(50, 3);
    for (let i = 0; i < 10; i++) history.stored.push(msg());
    const store = new ChatStore();
    const result = await catchUp(history.page, new ResumePoint(store).from(), (m) => store.add(m));
    expect(result).toEqual({ pages: 1, gap: false });
    expect(history.asked).toEqual([undefined]);
    expect(store.list().map((e) => e.message.id)).toEqual(history.stored.slice(-3).map((m) => m.id));
  });

  it("reports a gap when the cursor is no longer in history, or the pages run out", async () => {
    const history = new FakeHistory(2);
    for (let i = 0; i < 10; i++) history.stored.push(msg());
    const added: string[] = [];
    const gone = await catchUp(history.page, "expired-id", (m) => added.push(m.id));
    expect(gone).toEqual({ pages: 1, gap: true });
    expect(added).toEqual(history.stored.slice(-2).map((m) => m.id));
    const capped = await catchUp(history.page, history.stored[0].id, () => undefined, 3);
    expect(capped).toEqual({ pages: 3, gap: true });
  });

  it("takes the cursor from shown messages only, `overlap` before the newest", () => {
    const store = new ChatStore();
    expect(resumeCursor(store, 2)).toBeUndefined();
    const shown = [msg(), msg(), msg(), msg()];
    for (const m of shown) store.add(m);
    store.add(msg(), "pending"); // our own echo, not in history yet
    const rejected = msg();
    store.add(rejected);
    store.reject(rejected.id);
    expect(resumeCursor(store, 0)).toBe(shown[3].id);
    expect(resumeCursor(store, 2)).toBe(shown[1].id);
    expect(resumeCursor(store, 100)).toBe(shown[0].id);
  });

  it("holds the point across failed attempts until a catch-up went through", async () => {
    const store = new ChatStore();
    const first = msg();
    store.add(first);
    const resume = new ResumePoint(store, 0);
    resume.lost();
    store.add(msg()); // live, after the rejoin
    const failing = () => Promise.reject(new ApiError(503, "history down"));
    const cursor = resume.from();
    await expect(catchUp(failing, cursor, () => undefined)).rejects.toThrow("history down");
    resume.lost(); // dropped again before the next attempt
    expect(resume.from()).toBe(first.id);
    resume.caughtUp();
    expect(resume.from()).not.toBe(first.id);
  });
});

describe("decodeChatPayload", () => {
  const encode = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  const compressed = (body: Uint8Array) => new Uint8Array([0x00, 0x01, ...deflateRawSync(body)]);

  it("reads a compressed batch chat-history made (Python zlib, raw deflate) in order", async () => {
    // ChatBatchEvent of three messages and a removal, as chat-history's deflate_packet sends it
    const fromPython = Uint8Array.from(
      atob(
        "AAGN0rEOwiAQBuBXMTd3KDiYsDl2cXQxDrScltgWpYg2Td/do7HWpQ1M3P8H+AZ6cN0dQUAuXVFCAuixcS2IUz81NbatvCJ10070oFVoUgqtMTXtK5PnHY3y6UpjM0W3aNdR4dNfepB1uPCo8YV2M+ZeOmkpu5g3jblR4UilGxzrm27CO348QHNhUTpUeweC7dJ5DQm0+KBwSGLYLIbNFthsnc3i2Wxi8zg2j2HzBTZfZ/N4Np/Y2z+2xdp4VDM7+36Q4Tx8AA==",
      ),
      (c) => c.charCodeAt(0),
    );
    const packets = chatPacketsOf(await decodeChatPayload(fromPython));
    expect(packets.map((p) => (p.type === "message" ? [p.message.id, p.seq] : [p.type]))).toEqual([
      ["m0", 1],
      ["m1", 2],
      ["m2", 3],
      ["removed"],
    ]);
  });

  it("reads plain JSON packets as before, and refuses corrupt or oversized compressed ones", async () => {
    const a = msg();
    const batch = { type: "batch", events: [{ type: "message", message: a, seq: 4 }] };
    expect(await decodeChatPayload(encode({ type: "message", message: a, seq: 2 }))).toEqual({
      type: "message",
      message: a,
      seq: 2,
    });
    expect(await decodeChatPayload(compressed(encode(batch)))).toEqual(batch);
    expect(await decodeChatPayload(new Uint8Array([0x00, 0x01, 0xff, 0xff, 0x00]))).toBeNull();
    const whole = compressed(encode(batch));
    expect(await decodeChatPayload(whole.slice(0, whole.length - 4))).toBeNull();
    const bomb = compressed(new Uint8Array(1024 * 1024 + 10).fill(0x20));
    expect(await decodeChatPayload(bomb)).toBeNull();
    expect(await decodeChatPayload(new TextEncoder().encode("not json"))).toBeNull();
  });
});
