// The stage background: the current StageVisual (img or muted looping video) plus its caption.
import { validateDisplayName } from "./profile";
import type { AppConfig, Layout, ShowState, StageVisual } from "./types";

/** Where the stage producer's assets live on the page's own origin (the edge streams them). */
export const MEDIA_PATH = "/media/";

/**
 * A visual's URL resolved against the page: only the page's own origin and only under
 * `/media/` (signed asset URLs the edge serves; the page's CSP allows `'self'` for images and
 * media). Returns null for other origins, other paths, javascript:, data:, blob: and anything
 * unparsable.
 */
export function safeVisualUrl(raw: string, base: string): string | null {
  if (!raw || /[\u0000-\u001f\\]/.test(raw)) return null;
  try {
    const page = new URL(base);
    const url = new URL(raw, page);
    if (url.protocol !== "http:" && url.protocol !== "https:") return null;
    if (url.origin !== page.origin || !url.pathname.startsWith(MEDIA_PATH)) return null;
    if (url.username || url.password) return null;
    return url.href;
  } catch {
    return null;
  }
}

export interface StagePageParams {
  width: number;
  height: number;
  captions: boolean;
  name: string;
}

const TRUTHY = ["1", "true", "yes", "on"];

function sizeParam(raw: string | null, fallback: number, min: number, max: number): number {
  if (raw === null || !/^\s*\d+(\.\d+)?\s*$/.test(raw)) return fallback;
  return Math.round(Math.min(max, Math.max(min, Number(raw))));
}

/**
 * The OBS page's query: `width` (160..7680, default 1920), `height` (90..4320, default 1080),
 * `captions=1`, `name` (display name, default "Stage"; control characters or an over-long
 * name fall back to the default).
 */
export function parseStagePageParams(params: URLSearchParams, maxNameLength = 32): StagePageParams {
  const rawName = (params.get("name") ?? "").trim();
  const nameOk = validateDisplayName(rawName, maxNameLength) === null;
  return {
    width: sizeParam(params.get("width"), 1920, 160, 7680),
    height: sizeParam(params.get("height"), 1080, 90, 4320),
    captions: TRUTHY.includes((params.get("captions") ?? "").trim().toLowerCase()),
    name: nameOk ? rawName : "Stage",
  };
}

/** expiresAt <= 0 means "no expiry given". */
export function isExpired(visual: Pick<StageVisual, "expiresAt">, now = Date.now()): boolean {
  return visual.expiresAt > 0 && visual.expiresAt <= now;
}

export interface StageLayerOptions {
  /** show the visual's title in #stage-caption */
  captions: boolean;
  /** page URL that relative visual URLs resolve against */
  base?: string;
  now?: () => number;
}

const FADE_MS = 600;

/**
 * Owns #stage-visual and #stage-caption. A new visual is preloaded and cross-faded in;
 * expired or unsafe visuals are ignored, and the current one is taken down when it expires.
 */
export class StageVisualLayer {
  private current: { visual: StageVisual; el: HTMLElement } | null = null;
  private expiryTimer = 0;
  private readonly seen = new Set<string>();

  constructor(
    private readonly container: HTMLElement,
    private readonly caption: HTMLElement | null,
    private readonly opts: StageLayerOptions,
  ) {}

  get currentVisual(): StageVisual | null {
    return this.current?.visual ?? null;
  }

  /** Returns false when the visual was ignored. */
  show(visual: StageVisual): boolean {
    const now = this.opts.now?.() ?? Date.now();
    if (isExpired(visual, now) || this.seen.has(visual.id)) return false;
    const base = this.opts.base ?? window.location.href;
    const url = safeVisualUrl(visual.url, base);
    if (!url) return false;
    this.seen.add(visual.id);
    if (this.seen.size > 500) this.seen.clear();

    const doc = this.container.ownerDocument;
    let el: HTMLImageElement | HTMLVideoElement;
    if (visual.kind === "clip") {
      const video = doc.createElement("video");
      video.muted = true;
      video.defaultMuted = true;
      video.loop = true;
      video.autoplay = true;
      video.playsInline = true;
      video.setAttribute("muted", "");
      video.setAttribute("playsinline", "");
      video.preload = "auto";
      video.src = url;
      video.addEventListener("loadeddata", () => this.reveal(visual, video), { once: true });
      void video.play().catch(() => undefined);
      el = video;
    } else {
      const img = doc.createElement("img");
      img.decoding = "async";
      img.alt = visual.title;
      img.referrerPolicy = "no-referrer";
      img.addEventListener("load", () => this.reveal(visual, img), { once: true });
      img.src = url;
      el = img;
    }
    el.className = `stage-visual-item kind-${visual.kind}`;
    el.dataset.id = visual.id;
    el.addEventListener("error", () => el.remove(), { once: true });
    this.container.append(el); // hidden (opacity 0) until loaded
    return true;
  }

  clear(): void {
    window.clearTimeout(this.expiryTimer);
    const old = this.current;
    this.current = null;
    if (old) this.retire(old.el);
    this.setCaption(null);
    delete this.container.dataset.visualId;
  }

  private reveal(visual: StageVisual, el: HTMLElement): void {
    // A slower, older visual must not replace a newer one that already loaded.
    if (this.current && this.current.visual.createdAt > visual.createdAt) {
      el.remove();
      return;
    }
    const now = this.opts.now?.() ?? Date.now();
    if (isExpired(visual, now)) {
      el.remove();
      return;
    }
    const old = this.current;
    this.current = { visual, el };
    el.classList.add("visible");
    if (old) this.retire(old.el);
    this.container.dataset.visualId = visual.id;
    this.setCaption(visual);
    window.clearTimeout(this.expiryTimer);
    if (visual.expiresAt > 0) {
      // setTimeout's limit is ~24.8 days; anything longer simply never expires here.
      const delay = Math.min(visual.expiresAt - now, 2 ** 31 - 1);
      this.expiryTimer = window.setTimeout(() => {
        if (this.current?.visual.id === visual.id) this.clear();
      }, delay);
    }
  }

  private retire(el: HTMLElement): void {
    el.classList.remove("visible");
    window.setTimeout(() => {
      if (el instanceof HTMLVideoElement) {
        el.pause();
        el.removeAttribute("src");
        el.load();
      }
      el.remove();
    }, FADE_MS);
  }

  private setCaption(visual: StageVisual | null): void {
    const cap = this.caption;
    if (!cap) return;
    const text = visual && this.opts.captions ? visual.title.trim() : "";
    cap.textContent = text;
    cap.hidden = !text;
  }
}

/**
 * The operator's choices on a stage element: `data-layout` (styles.css places the visual and the
 * host by it) and `data-show` with the "The show has ended" element shown while it is ended.
 */
export class StageShow {
  constructor(
    private readonly stage: HTMLElement,
    private readonly ended: HTMLElement,
  ) {}

  /** Both, from `GET /api/config` (at load, and after every join: packets sent meanwhile are lost). */
  follow(config: Pick<AppConfig, "layout" | "showState">): void {
    this.setLayout(config.layout);
    this.setShowState(config.showState);
  }

  setLayout(layout: Layout): void {
    this.stage.dataset.layout = layout;
  }

  setShowState(state: ShowState): void {
    this.stage.dataset.show = state;
    this.ended.hidden = state !== "ended";
  }

  /** The host is keyed or framed (`ChromaKeyRenderer`'s decision), or nothing is decided yet. */
  setHostLook(look: "keyed" | "framed" | null): void {
    if (look) this.stage.dataset.hostLook = look;
    else delete this.stage.dataset.hostLook;
  }
}
