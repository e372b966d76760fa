// Entry point of the viewer page "/" (the default show) and "/s/<show>": profile form, stage, chat.
import "../styles.css";
import { ApiError, forgetMe, getChatHistory, getConfig, getMyMemory, postChat, tooManyText } from "../api";
import { memoryHeading, renderMemory } from "../memory";
import { CATCH_UP_PAGE, ChatView, ResumePoint, SendIds, catchUp, sendChat } from "../chat";
import { ChromaKeyRenderer, parseChromaParams } from "../chromakey";
import { byId, delay, showState } from "../dom";
import { LiveSession, backoffDelay, errorText } from "../livekit";
import {
  avatarGlyph,
  browserStore,
  clearFieldErrors,
  codePointLength,
  loadProfile,
  saveProfile,
  showFieldError as showFieldErrorIn,
  showJoinError as showJoinErrorIn,
  validateDisplayName,
  type Profile,
  type ProfileErrorView,
} from "../profile";
import { CaptionView, posterInitial, showHostState } from "../host";
import { showFromPath } from "../show";
import { StageShow, StageVisualLayer } from "../stage";
import type { AppConfig, ChatMessage } from "../types";

const store = browserStore();
/** The show this page is on (its room name); undefined: the deployment's default show. */
const showName = showFromPath(location.pathname);

const el = {
  state: byId("connection-state"),
  viewers: byId("viewer-count"),
  leave: byId<HTMLButtonElement>("leave-button"),
  form: byId<HTMLFormElement>("profile-form"),
  name: byId<HTMLInputElement>("display-name"),
  nameError: byId("display-name-error"),
  avatars: byId("avatar-choices"),
  avatarError: byId("avatar-error"),
  join: byId<HTMLButtonElement>("join-button"),
  profileError: byId("profile-error"),
  chatPanel: byId("chat-panel"),
  chatList: byId("chat-list"),
  chatForm: byId<HTMLFormElement>("chat-form"),
  chatInput: byId<HTMLInputElement>("chat-input"),
  chatSend: byId<HTMLButtonElement>("chat-send"),
  chatCounter: byId("chat-counter"),
  chatNotice: byId("chat-notice"),
  whoami: byId("whoami"),
  stage: byId("stage"),
  canvas: byId<HTMLCanvasElement>("stage-canvas"),
  visual: byId("stage-visual"),
  caption: byId("stage-caption"),
  placeholder: byId("stage-placeholder"),
  hostVideo: byId<HTMLVideoElement>("host-video"),
  audioSink: byId("audio-sink"),
  enableAudio: byId<HTMLButtonElement>("enable-audio"),
  hostState: byId("host-state"),
  hostPoster: byId("host-poster"),
  hostPosterName: byId("host-poster-name"),
  hostPosterGlyph: byId("host-poster-glyph"),
  hostCaptions: byId("host-captions"),
  memoryButton: byId<HTMLButtonElement>("memory-button"),
  memoryDialog: byId<HTMLDialogElement>("memory-dialog"),
  memoryHeading: byId("memory-heading"),
  memoryCard: byId("memory-card"),
  memoryError: byId("memory-error"),
  forgetButton: byId<HTMLButtonElement>("forget-button"),
  forgetConfirm: byId("forget-confirm"),
  forgetYes: byId<HTMLButtonElement>("forget-yes"),
  forgetNo: byId<HTMLButtonElement>("forget-no"),
  memoryClose: byId<HTMLButtonElement>("memory-close"),
};

const show = new StageShow(el.stage, byId("show-ended"));
const renderer = new ChromaKeyRenderer(el.canvas, parseChromaParams(new URLSearchParams(location.search)), (look) =>
  show.setHostLook(look),
);
const visuals = new StageVisualLayer(el.visual, el.caption, { captions: true });
const chat = new ChatView(el.chatList);
const resume = new ResumePoint(chat.store);
/** History requests per (re)join before giving up until the next one (503 while it starts). */
const HISTORY_ATTEMPTS = 5;
const sendIds = new SendIds();
const captions = new CaptionView(el.hostCaptions);
let hostPresent = false;
/** The host persona's name (its participant attribute), for "What <host> remembers about me". */
let hostName = "";

/** No host video but a host agent in the room (avatar `none`): show the poster instead. */
function updatePoster(): void {
  const poster = hostPresent && !el.stage.dataset.host;
  el.hostPoster.hidden = !poster;
  if (hostPresent || el.stage.dataset.host) setPlaceholder("");
}

let config: AppConfig | null = null;
let session: LiveSession | null = null;
let profile: Profile | null = null;
let sending = false;

function setNotice(text: string, kind: "info" | "error" = "error"): void {
  el.chatNotice.textContent = text;
  el.chatNotice.dataset.kind = kind;
  el.chatNotice.hidden = !text;
}

function setPlaceholder(text: string): void {
  el.placeholder.textContent = text;
  el.placeholder.hidden = !text;
}

// ---------- profile form ----------

function renderAvatarChoices(cfg: AppConfig, selected: string): void {
  const nodes = cfg.avatars.map((avatar) => {
    const label = document.createElement("label");
    label.className = "avatar-option";
    const input = document.createElement("input");
    input.type = "radio";
    input.name = "avatar";
    input.value = avatar;
    input.checked = avatar === selected;
    const glyph = document.createElement("span");
    glyph.className = "avatar-glyph";
    glyph.setAttribute("aria-hidden", "true");
    glyph.textContent = avatarGlyph(avatar);
    const name = document.createElement("span");
    name.className = "avatar-name";
    name.textContent = avatar;
    label.append(input, glyph, name);
    return label;
  });
  el.avatars.replaceChildren(...nodes);
}

function selectedAvatar(): string {
  const checked = el.form.querySelector<HTMLInputElement>('input[name="avatar"]:checked');
  return checked?.value ?? "";
}

const errorView: ProfileErrorView = {
  name: el.name,
  nameError: el.nameError,
  avatarError: el.avatarError,
  profileError: el.profileError,
};

const clearFormErrors = (): void => clearFieldErrors(errorView);
const showFieldError = (target: HTMLElement, text: string): void => showFieldErrorIn(errorView, target, text);
const showJoinError = (err: unknown): void => showJoinErrorIn(errorView, err, errorText);

async function loadConfig(): Promise<AppConfig> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await getConfig(showName);
    } catch (err) {
      const wait = backoffDelay(attempt);
      showFieldError(el.profileError, `cannot load the configuration (${errorText(err)}), retrying in ${Math.ceil(wait / 1000)} s`);
      await delay(wait);
    }
  }
}

function setJoined(joined: boolean): void {
  el.form.hidden = joined;
  el.chatPanel.hidden = !joined;
  el.leave.hidden = !joined;
  el.join.disabled = false;
  el.join.textContent = "Join";
  if (!joined) {
    hostPresent = false;
    delete el.stage.dataset.hostState;
    showHostState(el.hostState, null);
    captions.clear();
    el.hostPoster.hidden = true;
    setPlaceholder("Join to watch the show");
    visuals.clear();
    el.viewers.textContent = "0";
    el.enableAudio.hidden = true;
  }
}

async function join(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  if (!config || session?.active) return;
  clearFormErrors();
  const cfg = config;
  const displayName = el.name.value.trim();
  const avatar = selectedAvatar();
  const nameProblem = validateDisplayName(displayName, cfg.maxNameLength);
  if (nameProblem) return showFieldError(el.nameError, nameProblem);
  if (!cfg.avatars.includes(avatar)) return showFieldError(el.avatarError, "please choose an avatar");

  profile = { displayName, avatar };
  saveProfile(store, profile);
  el.join.disabled = true;
  el.join.textContent = "Joining…";

  const current = new LiveSession({
    config: cfg,
    tokenRequest: () => ({ displayName, avatar, role: "viewer", show: showName }),
    video: el.hostVideo,
    audioSink: el.audioSink,
    hooks: {
      onState: (state, detail) => {
        showState(el.state, state, detail);
        if (state !== "connected") resume.lost();
      },
      onJoined: (_token, rejoin) => {
        setPlaceholder(el.stage.dataset.host || hostPresent ? "" : "Waiting for the host…");
        void loadHistory(rejoin);
        void getConfig(showName).then((latest) => show.follow(latest), () => undefined);
      },
      onChatPacket: (packet) => {
        if (packet.type === "message") chat.add(packet.message, "shown", packet.seq);
        else if (packet.type === "removed") chat.remove(packet.messageId);
        else {
          chat.reject(packet.messageId, packet.reason);
          setNotice(`your message was not shown: ${packet.reason || "it did not pass moderation"}`);
        }
      },
      onStageVisual: (visual) => visuals.show(visual),
      onLayout: (layout) => show.setLayout(layout),
      onShow: (state) => show.setShowState(state),
      onHostVideo: (identity) => {
        if (identity) el.stage.dataset.host = identity;
        else delete el.stage.dataset.host;
        renderer.setVideo(identity ? el.hostVideo : null);
        setPlaceholder(identity || hostPresent ? "" : "Waiting for the host…");
        updatePoster();
      },
      onHost: (host) => {
        hostPresent = host !== null;
        if (host) el.stage.dataset.hostState = host.state;
        else delete el.stage.dataset.hostState;
        showHostState(el.hostState, host);
        el.hostPosterName.textContent = host?.persona ?? "";
        if (host?.persona) hostName = host.persona;
        el.memoryButton.textContent = memoryHeading(hostName);
        el.hostPosterGlyph.textContent = posterInitial(host?.persona);
        if (!host) captions.clear();
        updatePoster();
        if (!host && !el.stage.dataset.host && session?.active) setPlaceholder("Waiting for the host…");
      },
      onCaption: (segment, chunk) => captions.append(segment, chunk),
      onCaptionEnd: (segment) => captions.end(segment),
      onViewerCount: (n) => (el.viewers.textContent = String(n)),
      onAudioBlocked: (blocked) => (el.enableAudio.hidden = !blocked),
      onGaveUp: (detail, err) => {
        session = null;
        setJoined(false);
        if (err) showJoinError(err);
        else showFieldError(el.profileError, detail);
      },
    },
  });
  session = current;
  try {
    await current.start();
    el.whoami.textContent = `${avatarGlyph(avatar)} ${displayName}`;
    setJoined(true);
    updateCounter();
    el.chatInput.focus();
  } catch (err) {
    if (session === current) session = null;
    setJoined(false);
    showJoinError(err);
  }
}

/**
 * After every join, resume and rejoin: the newest messages on the first join, else every
 * message stored after the point where the connection dropped, page by page (merged by id).
 */
async function loadHistory(rejoin: boolean): Promise<void> {
  const current = session;
  const cursor = resume.from();
  for (let attempt = 0; attempt < HISTORY_ATTEMPTS; attempt++) {
    const token = current?.token;
    if (!token || session !== current || !current?.active) return;
    try {
      const { gap } = await catchUp(
        (after) => getChatHistory(token, after === undefined ? {} : { after, limit: CATCH_UP_PAGE }),
        cursor,
        (message) => chat.add(message),
      );
      resume.caughtUp();
      if (gap) setNotice("you were away for a while: some older messages are not shown", "info");
      if (!rejoin) chat.scrollToBottom();
      return;
    } catch (err) {
      // history service not up yet (503) or similar: live messages still arrive meanwhile
      console.info("chat history unavailable:", errorText(err));
      const retryAfter = err instanceof ApiError && err.retryAfter ? err.retryAfter * 1000 : 0;
      await delay(Math.max(backoffDelay(attempt), retryAfter));
    }
  }
}

async function leave(): Promise<void> {
  const s = session;
  session = null;
  await s?.leave();
  showState(el.state, "idle");
  setJoined(false);
}

// ---------- chat ----------

function updateCounter(): void {
  const max = config?.maxChatLength ?? 500;
  const n = codePointLength(el.chatInput.value.trim());
  el.chatCounter.textContent = `${n} / ${max}`;
  const over = n > max;
  el.chatCounter.classList.toggle("over", over);
  el.chatSend.disabled = sending || over || n === 0;
}

async function send(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  const s = session;
  const body = el.chatInput.value.trim();
  const max = config?.maxChatLength ?? 500;
  if (!s || !body || sending) return;
  if (codePointLength(body) > max) return setNotice(`at most ${max} characters`);

  sending = true;
  updateCounter();
  try {
    const id = await sendChat(
      body,
      sendIds,
      (text, clientId) => postChat(requireToken(s), text, clientId),
      async () => {
        setNotice("session expired, reconnecting…", "info");
        await s.renew();
      },
    );
    setNotice("");
    const echo: ChatMessage = {
      id,
      room: config?.roomName ?? "",
      authorIdentity: s.identity ?? "",
      authorName: profile?.displayName ?? "",
      avatar: profile?.avatar ?? "",
      body,
      kind: "viewer",
      createdAt: Date.now(),
    };
    chat.add(echo, "pending");
    chat.scrollToBottom();
    if (el.chatInput.value.trim() === body) el.chatInput.value = "";
  } catch (err) {
    setNotice(chatErrorText(err));
  } finally {
    sending = false;
    updateCounter();
  }
}

function requireToken(s: LiveSession): string {
  const token = s.token;
  if (!token) throw new ApiError(401, "not connected");
  return token;
}

function chatErrorText(err: unknown): string {
  if (!(err instanceof ApiError)) return `could not send: ${errorText(err)}`;
  switch (err.status) {
    case 429:
      return tooManyText(err, "messages");
    case 0:
      return `could not send (${err.message}); sending it again will not post it twice`;
    case 503:
      // It may have been stored: sending the same text again reuses its clientId (shown once).
      return err.retryAfter
        ? `chat is temporarily unavailable, send it again in ${err.retryAfter} s (it will not appear twice)`
        : "chat is temporarily unavailable, send it again shortly (it will not appear twice)";
    case 422:
      return err.fieldErrors.body ?? err.message;
    case 401:
      return "your session expired; please rejoin";
    case 403:
      return err.message || "you may not chat in this room";
    default:
      return `could not send: ${err.message}`;
  }
}

// ---------- memory: what the host remembers, and forgetting ----------

function memoryError(text: string): void {
  el.memoryError.textContent = text;
  el.memoryError.hidden = !text;
}

async function showMemory(): Promise<void> {
  try {
    renderMemory(el.memoryCard, await getMyMemory());
    memoryError("");
  } catch (err) {
    memoryError(`cannot read what is remembered: ${errorText(err)}`);
  }
}

async function openMemory(): Promise<void> {
  el.memoryHeading.textContent = memoryHeading(hostName);
  el.forgetConfirm.hidden = true;
  el.forgetButton.hidden = false;
  el.memoryCard.replaceChildren();
  if (!el.memoryDialog.open) el.memoryDialog.showModal();
  await showMemory();
}

async function forget(): Promise<void> {
  el.forgetYes.disabled = true;
  try {
    await forgetMe();
    el.forgetConfirm.hidden = true;
    el.forgetButton.hidden = false;
    await showMemory();
  } catch (err) {
    memoryError(err instanceof ApiError && err.status === 429 ? tooManyText(err, "requests") : `could not forget: ${errorText(err)}`);
  } finally {
    el.forgetYes.disabled = false;
  }
}

function wireMemory(): void {
  el.memoryButton.addEventListener("click", () => void openMemory());
  el.forgetButton.addEventListener("click", () => {
    el.forgetConfirm.hidden = false;
    el.forgetButton.hidden = true;
  });
  el.forgetNo.addEventListener("click", () => {
    el.forgetConfirm.hidden = true;
    el.forgetButton.hidden = false;
  });
  el.forgetYes.addEventListener("click", () => void forget());
  el.memoryClose.addEventListener("click", () => el.memoryDialog.close());
}

// ---------- start ----------

async function main(): Promise<void> {
  showState(el.state, "idle");
  setJoined(false);
  el.join.disabled = true;
  el.form.addEventListener("submit", (e) => void join(e));
  el.chatForm.addEventListener("submit", (e) => void send(e));
  el.chatInput.addEventListener("input", updateCounter);
  el.leave.addEventListener("click", () => void leave());
  wireMemory();
  el.enableAudio.addEventListener("click", () => void session?.startAudio());
  el.name.addEventListener("input", () => {
    el.nameError.hidden = true;
    el.name.removeAttribute("aria-invalid");
  });
  window.addEventListener("pagehide", () => void session?.leave());

  config = await loadConfig();
  show.follow(config);
  document.title = config.title;
  byId("show-title").textContent = config.title;
  clearFormErrors();
  el.name.maxLength = config.maxNameLength * 2; // UTF-16 units; the real limit is checked in code points
  const saved = loadProfile(store, config.avatars, config.maxNameLength);
  // a name typed while the configuration was loading is kept (a slow connection, a fast typist)
  if (!el.name.value) el.name.value = saved?.displayName ?? "";
  renderAvatarChoices(config, saved?.avatar ?? config.avatars[0]);
  el.join.disabled = false;
  updateCounter();
}

void main();
