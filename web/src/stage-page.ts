// Entry point of "/stage", the OBS browser source: only the composited stage, no controls.
// Query: ?width=1920&height=1080&captions=1&name=Stage (+ chroma key params, see chromakey.ts).
import "./styles.css";
import { getConfig } from "./api";
import { ChromaKeyRenderer, parseChromaParams } from "./chromakey";
import { byId, delay } from "./dom";
import { LiveSession, backoffDelay } from "./livekit";
import { StageVisualLayer, parseStagePageParams } from "./stage";
import type { AppConfig } from "./types";

const query = new URLSearchParams(location.search);
const stage = byId("stage");
const video = byId<HTMLVideoElement>("host-video");
const renderer = new ChromaKeyRenderer(byId<HTMLCanvasElement>("stage-canvas"), parseChromaParams(query));

async function loadConfig(): Promise<AppConfig> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await getConfig();
    } catch {
      stage.dataset.state = "disconnected";
      await delay(backoffDelay(attempt));
    }
  }
}

async function main(): Promise<void> {
  const config = await loadConfig();
  const params = parseStagePageParams(query, config.maxNameLength);
  stage.style.width = `${params.width}px`;
  stage.style.height = `${params.height}px`;
  stage.style.setProperty("--stage-h", `${params.height}px`);
  const visuals = new StageVisualLayer(byId("stage-visual"), byId("stage-caption"), { captions: params.captions });

  const session = new LiveSession({
    config,
    // A subscribe-only "stage" token: it watches the host like a viewer and cannot chat.
    tokenRequest: () => ({ displayName: params.name, avatar: config.avatars[0], role: "stage" }),
    video,
    audioSink: byId("audio-sink"),
    hooks: {
      onState: (state, detail) => {
        stage.dataset.state = state;
        if (detail) stage.dataset.detail = detail;
        else delete stage.dataset.detail;
      },
      onStageVisual: (visual) => visuals.show(visual),
      onHostVideo: (identity) => {
        if (identity) stage.dataset.host = identity;
        else delete stage.dataset.host;
        renderer.setVideo(identity ? video : null);
      },
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
