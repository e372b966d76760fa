// Entry point of "/operator", the console an operator keeps open during a show: sign in once
// (the edge keeps the session in an HttpOnly cookie), then live panels fed by one EventSource
// and the controls that call the operator API. State lives in operator/model.ts (pure); this
// file renders it and wires the controls.
import "../styles.css";
import "../operator.css";
import { byId, showState } from "../dom";
import type { Layout, StageVisual } from "../types";
import { currentSession, del, errorText, isSignedOut, post, signIn, signInErrorText, signOut } from "../operator/api";
import { OperatorFeed } from "../operator/events";
import {
  backendsText,
  durationText,
  egressRunning,
  egressText,
  fallbackText,
  hostStateText,
  numbersText,
} from "../operator/format";
import { EMPTY_STATE, applyEvent, parseEgress, type ChatEntry, type ConsoleState, type EventName } from "../operator/model";
import { el, renderChatEntry, renderLayoutChoices, renderVisual, showResult } from "../operator/view";

const PREVIEW_URL = "/stage?captions=1&width=640&height=360";
const PREVIEW_WIDTH = 640;

let state: ConsoleState = EMPTY_STATE;
let expiryTimer = 0;

// ---- session ----

const signInView = byId("sign-in");
const consoleView = byId("console");
const secretInput = byId<HTMLInputElement>("operator-secret");
const signInError = byId("sign-in-error");
const signInButton = byId<HTMLButtonElement>("sign-in-button");
const signOutButton = byId<HTMLButtonElement>("sign-out");
const sessionUntil = byId("session-until");
const feedState = byId("feed-state");
const preview = byId<HTMLIFrameElement>("preview");

const feed = new OperatorFeed({
  onEvent: (name: EventName, data: unknown) => {
    state = applyEvent(state, name, data);
    render();
  },
  onState: (s) => showState(feedState, s),
  onClosed: async () => {
    try {
      if ((await currentSession()) === null) {
        showSignIn("Your session ended: sign in again");
        return false;
      }
    } catch {
      // the edge is away: keep trying
    }
    return true;
  },
});

function showSignIn(message = ""): void {
  feed.stop();
  window.clearTimeout(expiryTimer);
  preview.removeAttribute("src");
  consoleView.hidden = true;
  signOutButton.hidden = true;
  feedState.hidden = true;
  byId("show-badge").hidden = true;
  sessionUntil.textContent = "";
  signInView.hidden = false;
  signInError.hidden = !message;
  signInError.textContent = message;
  secretInput.focus();
}

function enterConsole(expiresAt: number): void {
  signInView.hidden = true;
  signInError.hidden = true;
  consoleView.hidden = false;
  signOutButton.hidden = false;
  feedState.hidden = false;
  sessionUntil.textContent = expiresAt > 0 ? `Signed in until ${new Date(expiresAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}` : "";
  if (!preview.getAttribute("src")) preview.src = PREVIEW_URL;
  feed.start();
  window.clearTimeout(expiryTimer);
  if (expiresAt > 0) {
    // check when the session should end (setTimeout holds at most ~24 days)
    const wait = Math.min(2 ** 31 - 1, Math.max(1000, expiresAt - Date.now() + 1000));
    expiryTimer = window.setTimeout(() => void checkSession(), wait);
  }
}

/** Opens the console for a live session, or the sign-in form (saying the session ended unless `first`). */
async function checkSession(first = false): Promise<void> {
  try {
    const until = await currentSession();
    if (until === null) showSignIn(first ? "" : "Your session ended: sign in again");
    else enterConsole(until);
  } catch (err) {
    showSignIn(errorText(err));
  }
}

byId<HTMLFormElement>("sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const secret = secretInput.value;
  // the page never keeps the secret: out of the input before anything else happens
  secretInput.value = "";
  if (!secret) {
    showSignIn("Enter the operator secret");
    return;
  }
  signInButton.disabled = true;
  signInError.hidden = true;
  void (async () => {
    try {
      await signIn(secret);
      await checkSession(true);
    } catch (err) {
      showSignIn(signInErrorText(err));
    } finally {
      signInButton.disabled = false;
    }
  })();
});

signOutButton.addEventListener("click", () => {
  void signOut()
    .catch(() => undefined) // signed out either way as far as this page goes
    .then(() => showSignIn());
});

// ---- actions ----

/** Runs one operator call, showing "working", then its result or error, in `result`. */
async function act(control: HTMLButtonElement | null, result: HTMLElement, call: () => Promise<unknown>, ok: string): Promise<unknown> {
  if (control) control.disabled = true;
  showResult(result, "busy", "Working…");
  try {
    const body = await call();
    showResult(result, "ok", ok);
    return body ?? true;
  } catch (err) {
    if (isSignedOut(err)) showSignIn("Your session ended: sign in again");
    showResult(result, "error", errorText(err));
    return undefined;
  } finally {
    if (control) control.disabled = false;
  }
}

const hostResult = byId("host-result");
for (const [id, path, ok] of [
  ["host-pause", "/host/pause", "Paused"],
  ["host-resume", "/host/resume", "Resumed"],
  ["host-skip", "/host/skip", "Skipped"],
] as const) {
  const control = byId<HTMLButtonElement>(id);
  control.addEventListener("click", () => void act(control, hostResult, () => post(path), ok));
}

function onForm(formId: string, handler: (submit: HTMLButtonElement) => void): void {
  const form = byId<HTMLFormElement>(formId);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const submit = form.querySelector<HTMLButtonElement>("button[type=submit]");
    if (submit) handler(submit);
  });
}

const sayText = byId<HTMLTextAreaElement>("say-text");
onForm("say-form", async (submit) => {
  const text = sayText.value.trim();
  if (!text) return showResult(byId("say-result"), "error", "Type what the host should say");
  if (await act(submit, byId("say-result"), () => post("/host/say", { text }), "Sent to the host")) sayText.value = "";
});

onForm("persona-form", (submit) => {
  const name = byId<HTMLInputElement>("persona-name").value.trim();
  void act(submit, byId("persona-result"), () => post("/host/persona", { name }), `Switching to ${name}`);
});

// End / start the show, each behind an inline confirmation.
const showConfirm = byId("show-confirm");
const showEndReason = byId<HTMLInputElement>("show-end-reason");
let pendingShowAction: "end" | "start" = "end";
function askShow(action: "end" | "start"): void {
  pendingShowAction = action;
  byId("show-confirm-text").textContent =
    action === "end"
      ? "End the show? The host leaves, every paid session closes and viewers see “The show has ended”. No host comes back until you start the show."
      : "Start the show again? A host is dispatched as soon as viewers are watching.";
  byId("show-reason-field").hidden = action !== "end";
  byId<HTMLButtonElement>("show-confirm-yes").textContent = action === "end" ? "End the show" : "Start the show";
  showConfirm.hidden = false;
}
byId("show-end").addEventListener("click", () => askShow("end"));
byId("show-start").addEventListener("click", () => askShow("start"));
byId("show-confirm-no").addEventListener("click", () => (showConfirm.hidden = true));
const showYes = byId<HTMLButtonElement>("show-confirm-yes");
showYes.addEventListener("click", () => {
  showConfirm.hidden = true;
  const result = byId("show-result");
  if (pendingShowAction === "end") {
    const reason = showEndReason.value.trim();
    void act(showYes, result, () => post("/show/end", reason ? { reason } : {}), "Show ended").then((ok) => ok && (showEndReason.value = ""));
  } else {
    void act(showYes, result, () => post("/show/start"), "Show started");
  }
});

// Chat moderation.
const chatResult = byId("chat-result");
const banDuration = byId<HTMLSelectElement>("ban-duration");
const chatActions = {
  remove: (entry: ChatEntry, control: HTMLButtonElement) =>
    void act(control, chatResult, () => del(`/chat/messages/${encodeURIComponent(entry.message.id)}`), `Removed “${entry.message.body.slice(0, 40)}”`),
  ban: (entry: ChatEntry, scope: "visitor" | "network", control: HTMLButtonElement) => {
    const seconds = Number(banDuration.value);
    const body = {
      identity: entry.message.authorIdentity,
      scope,
      reason: "banned from the operator console",
      ...(seconds > 0 ? { durationS: seconds } : {}),
    };
    const forHow = seconds > 0 ? `for ${durationText(seconds * 1000)}` : "permanently";
    const who = entry.message.authorName || entry.message.authorIdentity;
    void act(control, chatResult, () => post("/bans", body), `Banned ${who}${scope === "network" ? " and their network" : ""} ${forHow}`);
  },
};

// Stage.
const layoutResult = byId("layout-result");
const layoutInputs = renderLayoutChoices(byId("layout-choices"), (layout: Layout) => {
  // refused: the radio goes back to the layout the stage really has
  void act(null, layoutResult, () => post("/stage/layout", { layout }), `Layout: ${layout}`).then((ok) => ok ?? render());
});

onForm("capture-form", (submit) => {
  const url = byId<HTMLInputElement>("capture-url").value.trim();
  const kind = byId<HTMLSelectElement>("capture-kind").value;
  void act(submit, byId("capture-result"), () => post("/stage/capture", { url, kind }), `Capturing (${kind})…`);
});
onForm("backdrop-form", (submit) => {
  const prompt = byId<HTMLInputElement>("backdrop-prompt").value.trim();
  void act(submit, byId("backdrop-result"), () => post("/stage/backdrop", { prompt }), "Generating the backdrop…");
});
const visualsResult = byId("visuals-result");
const unpin = byId<HTMLButtonElement>("unpin");
unpin.addEventListener("click", () => void act(unpin, visualsResult, () => post("/stage/unpin"), "Unpinned: the stage changes by itself again"));
const pinVisual = (visual: StageVisual, control: HTMLButtonElement) =>
  void act(control, visualsResult, () => post("/stage/pin", { visualId: visual.id }), `Pinned “${visual.title || visual.id}”`);

// Egress: the stream key goes to the edge once and is cleared from the form whatever happens.
const egressResult = byId("egress-result");
const egressKey = byId<HTMLInputElement>("egress-stream-key");
onForm("egress-form", (submit) => {
  const rtmpUrl = byId<HTMLInputElement>("egress-url").value.trim();
  const streamKey = egressKey.value;
  egressKey.value = "";
  void act(submit, egressResult, () => post("/egress", { rtmpUrl, streamKey }), "Starting the stream…").then((body) => {
    const egress = parseEgress(body);
    if (egress) {
      state = { ...state, egress };
      render();
    }
  });
});
const egressStop = byId<HTMLButtonElement>("egress-stop");
egressStop.addEventListener("click", () => {
  const id = state.egress?.egressId;
  if (id) void act(egressStop, egressResult, () => del(`/egress/${encodeURIComponent(id)}`), "Stopping the stream…");
});

// ---- rendering ----

const chatList = byId("op-chat-list");
const chatRows = new Map<string, { entry: ChatEntry; li: HTMLLIElement }>();
let renderedChat: ConsoleState["chat"] | null = null;
let renderedVisuals: ConsoleState["visuals"] | null = null;

function renderChat(): void {
  if (state.chat === renderedChat) return;
  renderedChat = state.chat;
  const atBottom = chatList.scrollHeight - chatList.scrollTop - chatList.clientHeight < 40;
  const rows: HTMLLIElement[] = [];
  const seen = new Set<string>();
  for (const entry of state.chat) {
    const known = chatRows.get(entry.message.id);
    const li = known && known.entry === entry ? known.li : renderChatEntry(entry, chatActions);
    chatRows.set(entry.message.id, { entry, li });
    seen.add(entry.message.id);
    rows.push(li);
  }
  for (const id of chatRows.keys()) if (!seen.has(id)) chatRows.delete(id);
  chatList.replaceChildren(...rows);
  byId("chat-empty").hidden = rows.length > 0;
  if (atBottom) chatList.scrollTop = chatList.scrollHeight;
}

function renderVisuals(): void {
  if (state.visuals === renderedVisuals) return;
  renderedVisuals = state.visuals;
  byId("visual-list").replaceChildren(...state.visuals.map((v) => renderVisual(v, pinVisual)));
  byId("visuals-empty").hidden = state.visuals.length > 0;
}

/** The parts that show durations; also run every second. */
function renderClocks(): void {
  const now = Date.now();
  const host = state.host;
  const hostLine = byId("host-state-line");
  hostLine.dataset.state = host.state;
  hostLine.textContent = hostStateText(host, now);
  byId("host-backends").textContent = backendsText(host);
  byId("host-fallbacks").replaceChildren(...host.fallbacks.map((f) => el("li", "", fallbackText(f, now))));
  const egressState = byId("egress-state");
  egressState.dataset.state = state.egress?.status ?? "none";
  egressState.textContent = egressText(state.egress, now);
}

function render(): void {
  byId("room-name").textContent = state.room ? `Room ${state.room}` : "";
  const badge = byId("show-badge");
  badge.hidden = false;
  badge.dataset.state = state.show;
  badge.textContent = state.show === "live" ? "Show live" : "Show ended";
  byId("show-state").textContent = state.show;
  byId("show-reason").textContent = state.show === "ended" && state.showReason ? `(${state.showReason})` : "";
  byId("show-end").hidden = state.show !== "live";
  byId("show-start").hidden = state.show !== "ended";

  const checked = layoutInputs.get(state.layout);
  if (checked) checked.checked = true;

  const n = numbersText(state.numbers);
  byId("num-viewers").textContent = n.viewers;
  byId("num-chat").textContent = n.chatPerMinute;
  byId("num-rejected").textContent = n.rejected;
  byId("num-spend").textContent = n.spend;
  const meter = byId<HTMLMeterElement>("num-spend-meter");
  meter.hidden = n.spendShare === null;
  meter.value = n.spendShare ?? 0;

  const running = egressRunning(state.egress);
  egressStop.hidden = !running;
  byId<HTMLButtonElement>("egress-start").disabled = running;

  renderChat();
  renderVisuals();
  renderClocks();
}

// The preview is a 640×360 /stage scaled to the panel's width.
new ResizeObserver(([entry]) => {
  if (entry) preview.style.transform = `scale(${entry.contentRect.width / PREVIEW_WIDTH})`;
}).observe(byId("preview-frame"));

window.setInterval(() => {
  if (!consoleView.hidden) renderClocks();
}, 1000);

render();
void checkSession(true);
