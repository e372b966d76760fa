// Entry point of "/stage", the OBS browser source: only the composited stage, no controls.
// Query: ?show=<show>&width=1920&height=1080&captions=1&name=Stage (+ chroma key params, see
// chromakey.ts); without `show`, the deployment's default show. `preview=1` (the operator
// console's preview) joins on a `preview` token, which is no audience: it keeps no host running.
import "../styles.css";
import { getConfig } from "../api";
import { ChromaKeyRenderer, parseChromaParams } from "../chromakey";
import { byId, delay } from "../dom";
import { LiveSession, backoffDelay } from "../livekit";
import { CaptionView, posterInitial, showHostState } from "../host";
import { showFromQuery } from "../show";
import { StageShow, StageVisualLayer, parseStagePageParams } from "../stage";
import type { AppConfig } from "../types";

const query = new URLSearchParams(location.search);
const showName = showFromQuery(query);
const role = query.get("preview") === "1" ? "preview" : "stage";
const stage = byId("stage");
const video = byId<HTMLVideoElement>("host-video");
const show = new StageShow(stage, byId("show-ended"));
const renderer = new ChromaKeyRenderer(byId<HTMLCanvasElement>("stage-canvas"), parseChromaParams(query), (look) =>
  show.setHostLook(look),
);

async function loadConfig(): Promise<AppConfig> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await getConfig(showName);
    } catch {
      stage.dataset.state = "disconnected";
      await delay(backoffDelay(attempt));
    }
  }
}

async function main(): Promise<void> {
  const config = await loadConfig();
  show.follow(config);
  const params = parseStagePageParams(query, config.maxNameLength);
  stage.style.width = `${params.width}px`;
  stage.style.height = `${params.height}px`;
  stage.style.setProperty("--stage-h", `${params.height}px`);
  const visuals = new StageVisualLayer(byId("stage-visual"), byId("stage-caption"), { captions: params.captions });
  // captions=1 also shows the host's words and state over the stage; without it they stay off
  const captions = params.captions ? new CaptionView(byId("host-captions")) : null;
  const hostState = byId("host-state");
  const poster = byId("host-poster");
  let hostPresent = false;
  const updatePoster = () => (poster.hidden = !(hostPresent && !stage.dataset.host));

  const session = new LiveSession({
    config,
    // A subscribe-only "stage" token: it watches the host like a viewer and cannot chat (a
    // "preview" one in the console: no audience, so it does not keep a host running).
    tokenRequest: () => ({ displayName: params.name, avatar: config.avatars[0], role, show: showName }),
    video,
    audioSink: byId("audio-sink"),
    hooks: {
      onState: (state, detail) => {
        stage.dataset.state = state;
        if (detail) stage.dataset.detail = detail;
        else delete stage.dataset.detail;
      },
      onJoined: () => void getConfig(showName).then((latest) => show.follow(latest), () => undefined),
      onStageVisual: (visual) => visuals.show(visual),
      onLayout: (layout) => show.setLayout(layout),
      onShow: (state) => show.setShowState(state),
      onHostVideo: (identity) => {
        if (identity) stage.dataset.host = identity;
        else delete stage.dataset.host;
        renderer.setVideo(identity ? video : null);
        updatePoster();
      },
      onHost: (host) => {
        hostPresent = host !== null;
        if (host) stage.dataset.hostState = host.state;
        else delete stage.dataset.hostState;
        if (captions) showHostState(hostState, host);
        byId("host-poster-name").textContent = host?.persona ?? "";
        byId("host-poster-glyph").textContent = posterInitial(host?.persona);
        if (!host) captions?.clear();
        updatePoster();
      },
      onCaption: (segment, chunk) => captions?.append(segment, chunk),
      onCaptionEnd: (segment) => captions?.end(segment),
      onAudioBlocked: (blocked) => {
        // OBS allows autoplay; a normal browser needs one click anywhere.
        if (blocked) document.addEventListener("click", () => void session.startAudio(), { once: true });
      },
    },
  });
  session.startWithRetry();
  window.addEventListener("pagehide", () => void session.leave());
}

void main();
