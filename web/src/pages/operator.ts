// Entry point of "/operator", the console an operator keeps open during a show: sign in once
// (the edge keeps the session in an HttpOnly cookie), then live panels fed by one EventSource
// and the controls that call the operator API. It operates on one show at a time, picked in the
// shows panel and remembered in the URL (`/operator?show=quiz`; none: the default show): every
// call and the event stream carry `show=`, the preview is that show's stage. State lives in operator/model.ts (pure); this
// file renders it and wires the controls.
import "../styles.css";
import "../operator.css";
import { byId, showState } from "../dom";
import type { Layout, StageVisual } from "../types";
import { ApiError } from "../api";
import { currentSession, del, errorText, isSignedOut, post, signIn, signInErrorText, signOut } from "../operator/api";
import { type FeedHandlers, OperatorFeed, eventsUrl } from "../operator/events";
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
import { type NewShowForm, type ShowSummary, consoleUrl, createShow, deleteShow, forShow, listShows, pickedShow, previewUrl } from "../operator/shows";
import { el, renderChatEntry, renderLayoutChoices, renderShowList, renderVisual, showResult } from "../operator/view";

const PREVIEW_WIDTH = 640;

let state: ConsoleState = EMPTY_STATE;
let expiryTimer = 0;
/** The show the console operates on; undefined: the default show. */
let show: string | undefined = pickedShow(location.search);
let shows: ShowSummary[] = [];
/** A path of the operator API for the picked show. */
const here = (path: string) => forShow(path, show);

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

const feedHandlers: FeedHandlers = {
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
};
let feed = new OperatorFeed(feedHandlers, eventsUrl(show));

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
  if (!preview.getAttribute("src")) preview.src = previewUrl(show);
  feed.start();
  void refreshShows();
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
  control.addEventListener("click", () => void act(control, hostResult, () => post(here(path)), ok));
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
  if (await act(submit, byId("say-result"), () => post(here("/host/say"), { text }), "Sent to the host")) sayText.value = "";
});

onForm("persona-form", (submit) => {
  const name = byId<HTMLInputElement>("persona-name").value.trim();
  void act(submit, byId("persona-result"), () => post(here("/host/persona"), { name }), `Switching to ${name}`);
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
    void act(showYes, result, () => post(here("/show/end"), reason ? { reason } : {}), "Show ended").then((ok) => {
      if (ok) showEndReason.value = "";
      void refreshShows();
    });
  } else {
    void act(showYes, result, () => post(here("/show/start")), "Show started").then(() => refreshShows());
  }
});

// Chat moderation.
const chatResult = byId("chat-result");
const banDuration = byId<HTMLSelectElement>("ban-duration");
const chatActions = {
  remove: (entry: ChatEntry, control: HTMLButtonElement) =>
    void act(control, chatResult, () => del(here(`/chat/messages/${encodeURIComponent(entry.message.id)}`)), `Removed “${entry.message.body.slice(0, 40)}”`),
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
    void act(control, chatResult, () => post(here("/bans"), body), `Banned ${who}${scope === "network" ? " and their network" : ""} ${forHow}`);
  },
  forget: (entry: ChatEntry, key: string, control: HTMLButtonElement) => {
    const who = entry.message.authorName || entry.message.authorIdentity;
    // erasing cannot be undone (a ban can): ask first
    if (!window.confirm(`Forget ${who}? Their memory card and their chat lines in every show are erased (a ban stays).`)) return;
    void act(control, chatResult, () => del(`/viewers/${encodeURIComponent(key)}/memory`), `Forgot ${who}: memory and chat lines erased`);
  },
};

// Stage: its commands name the room in the body.
const stageRoom = (): { room?: string } => (show ? { room: show } : {});
const layoutResult = byId("layout-result");
const layoutInputs = renderLayoutChoices(byId("layout-choices"), (layout: Layout) => {
  // refused: the radio goes back to the layout the stage really has
  void act(null, layoutResult, () => post("/stage/layout", { layout, ...stageRoom() }), `Layout: ${layout}`).then((ok) => ok ?? render());
});

onForm("capture-form", (submit) => {
  const url = byId<HTMLInputElement>("capture-url").value.trim();
  const kind = byId<HTMLSelectElement>("capture-kind").value;
  void act(submit, byId("capture-result"), () => post("/stage/capture", { url, kind, ...stageRoom() }), `Capturing (${kind})…`);
});
onForm("backdrop-form", (submit) => {
  const prompt = byId<HTMLInputElement>("backdrop-prompt").value.trim();
  void act(submit, byId("backdrop-result"), () => post("/stage/backdrop", { prompt, ...stageRoom() }), "Generating the backdrop…");
});
const visualsResult = byId("visuals-result");
const unpin = byId<HTMLButtonElement>("unpin");
unpin.addEventListener("click", () => void act(unpin, visualsResult, () => post("/stage/unpin", stageRoom()), "Unpinned: the stage changes by itself again"));
const pinVisual = (visual: StageVisual, control: HTMLButtonElement) =>
  void act(control, visualsResult, () => post("/stage/pin", { visualId: visual.id, ...stageRoom() }), `Pinned “${visual.title || visual.id}”`);

// Egress: the stream key goes to the edge once and is cleared from the form whatever happens.
const egressResult = byId("egress-result");
const egressKey = byId<HTMLInputElement>("egress-stream-key");
onForm("egress-form", (submit) => {
  const rtmpUrl = byId<HTMLInputElement>("egress-url").value.trim();
  const streamKey = egressKey.value;
  egressKey.value = "";
  void act(submit, egressResult, () => post(here("/egress"), { rtmpUrl, streamKey }), "Starting the stream…").then((body) => {
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
  if (id) void act(egressStop, egressResult, () => del(here(`/egress/${encodeURIComponent(id)}`)), "Stopping the stream…");
});

// ---- shows ----

const showsResult = byId("shows-result");
const showList = byId("show-list");
const deleteButton = byId<HTMLButtonElement>("show-delete");
const deleteConfirm = byId("delete-confirm");
const defaultRoom = () => shows[0]?.room;

/** Reloads the shows list (the picked one's state comes from its live feed). */
async function refreshShows(): Promise<void> {
  try {
    shows = await listShows();
  } catch (err) {
    if (isSignedOut(err)) return showSignIn("Your session ended: sign in again");
    showResult(showsResult, "error", `Shows not listed: ${errorText(err)}`);
    return;
  }
  if (show && !shows.some((s) => s.room === show)) {
    const gone = show;
    pickShow(undefined);
    showResult(showsResult, "error", `No show named ${gone}: showing the default show`);
  }
  renderShows();
}

function renderShows(): void {
  const picked = show ?? defaultRoom();
  const listed = shows.map((s) => (s.room === picked && state.room === picked ? { ...s, state: state.show } : s));
  showList.replaceChildren(...renderShowList(listed, picked, (room) => pickShow(room === defaultRoom() ? undefined : room)));
  deleteButton.hidden = show === undefined;
  if (show === undefined) deleteConfirm.hidden = true;
}

/** Operates on another show: its event stream, its preview, its URL; the panels start empty. */
function pickShow(room: string | undefined): void {
  if (room === show) return;
  show = room;
  history.replaceState(null, "", consoleUrl(location.href, show));
  feed.stop();
  state = EMPTY_STATE;
  chatRows.clear();
  renderedChat = renderedVisuals = null;
  deleteConfirm.hidden = true;
  for (const result of document.querySelectorAll<HTMLElement>(".op-result")) result.hidden = true;
  feed = new OperatorFeed(feedHandlers, eventsUrl(show));
  if (!consoleView.hidden) {
    preview.src = previewUrl(show);
    feed.start();
  }
  render();
}

deleteButton.addEventListener("click", () => {
  if (!show) return;
  byId("delete-confirm-text").textContent = `Delete the show ${show}? It ends (the host leaves, viewers see “The show has ended”) and its configuration is forgotten.`;
  deleteConfirm.hidden = false;
});
byId("delete-confirm-no").addEventListener("click", () => (deleteConfirm.hidden = true));
const deleteYes = byId<HTMLButtonElement>("delete-confirm-yes");
deleteYes.addEventListener("click", () => {
  const room = show;
  deleteConfirm.hidden = true;
  if (!room) return;
  void act(deleteYes, showsResult, () => deleteShow(room), `Deleted ${room}`).then(async (ok) => {
    if (!ok) return;
    pickShow(undefined);
    showResult(showsResult, "ok", `Deleted ${room}`);
    await refreshShows();
  });
});

const NEW_SHOW_FIELDS = ["room", "title", "persona", "voice", "avatar", "topics"] as const;
const newShowInput = (field: (typeof NEW_SHOW_FIELDS)[number]) => byId<HTMLInputElement | HTMLSelectElement>(`new-show-${field}`);

/** Each 422 field error beside its field (`stage.topics` is `topics`); true when any was shown. */
function showFieldErrors(err: unknown): boolean {
  const fields = err instanceof ApiError && err.status === 422 ? err.fieldErrors : {};
  let shown = false;
  for (const field of NEW_SHOW_FIELDS) {
    const message = fields[field];
    const target = byId(`new-show-${field}-error`);
    target.hidden = !message;
    target.textContent = message ?? "";
    newShowInput(field).setAttribute("aria-invalid", message ? "true" : "false");
    shown ||= Boolean(message);
  }
  return shown;
}

onForm("new-show-form", (submit) => {
  const form = {
    ...(Object.fromEntries(NEW_SHOW_FIELDS.map((f) => [f, newShowInput(f).value])) as unknown as NewShowForm),
    memory: byId<HTMLInputElement>("new-show-memory").checked,
  };
  const result = byId("new-show-result");
  showFieldErrors(null);
  submit.disabled = true;
  showResult(result, "busy", "Creating…");
  void (async () => {
    try {
      await createShow(form);
      byId<HTMLFormElement>("new-show-form").reset();
      showResult(result, "ok", `Created ${form.room.trim()}`);
      await refreshShows();
      pickShow(form.room.trim());
      renderShows();
    } catch (err) {
      if (isSignedOut(err)) showSignIn("Your session ended: sign in again");
      showResult(result, "error", showFieldErrors(err) ? "Check the fields marked above" : errorText(err));
    } finally {
      submit.disabled = false;
    }
  })();
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
  renderShows();
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
