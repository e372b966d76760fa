// Chroma keying of the host's video into a <canvas> with WebGL.
// The shader follows OBS's chroma key filter: distance in the CbCr plane from the key colour,
// `similarity` (what is fully keyed), `smoothness` (the soft edge) and `spill` (green fringe removal).

export interface ChromaParams {
  enabled: boolean;
  /** key colour, 0..1 per channel */
  keyColor: [number, number, number];
  similarity: number;
  smoothness: number;
  spill: number;
}

export const DEFAULT_CHROMA: ChromaParams = {
  enabled: true,
  keyColor: [0, 1, 0],
  similarity: 0.4,
  smoothness: 0.08,
  spill: 0.1,
};

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

function parseUnit(raw: string | null, fallback: number): number {
  if (raw === null || raw.trim() === "") return fallback;
  const n = Number(raw);
  return Number.isFinite(n) ? clamp(n, 0, 1) : fallback;
}

/** "#00ff00", "00ff00", "0f0" -> [r, g, b] in 0..1; null if not a hex colour. */
export function parseHexColor(raw: string): [number, number, number] | null {
  let hex = raw.trim().replace(/^#/, "");
  if (/^[0-9a-f]{3}$/i.test(hex)) hex = hex.replace(/./g, (c) => c + c);
  if (!/^[0-9a-f]{6}$/i.test(hex)) return null;
  const n = parseInt(hex, 16);
  return [((n >> 16) & 255) / 255, ((n >> 8) & 255) / 255, (n & 255) / 255];
}

/**
 * Reads chroma key settings from query parameters:
 * `chroma=0` disables keying; `key=<hex>` (default 00ff00); `similarity`, `smoothness`,
 * `spill` in 0..1 (defaults 0.4 / 0.08 / 0.1). Bad values fall back to the defaults.
 */
export function parseChromaParams(params: URLSearchParams): ChromaParams {
  const d = DEFAULT_CHROMA;
  const flag = params.get("chroma");
  const enabled = flag === null ? d.enabled : !["0", "false", "off", "no"].includes(flag.trim().toLowerCase());
  const key = params.get("key");
  return {
    enabled,
    keyColor: (key !== null && parseHexColor(key)) || d.keyColor,
    similarity: parseUnit(params.get("similarity"), d.similarity),
    smoothness: parseUnit(params.get("smoothness"), d.smoothness),
    spill: parseUnit(params.get("spill"), d.spill),
  };
}

const chromaU = (r: number, g: number, b: number) => r * -0.1687 + g * -0.3313 + b * 0.5 + 0.5;
const chromaV = (r: number, g: number, b: number) => r * 0.5 + g * -0.4187 + b * -0.0813 + 0.5;

/** How far (r, g, b) in 0..1 is from the key colour, past `similarity` (<= 0: fully keyed). */
function keyDistance(r: number, g: number, b: number, params: ChromaParams): number {
  const [kr, kg, kb] = params.keyColor;
  return Math.hypot(chromaU(r, g, b) - chromaU(kr, kg, kb), chromaV(r, g, b) - chromaV(kr, kg, kb)) - params.similarity;
}

/**
 * The fragment shader's maths on the CPU, in place on straight (not premultiplied) RGBA bytes,
 * as ImageData holds them. Used when WebGL is unavailable, and by the unit tests.
 */
export function keyPixels(data: Uint8ClampedArray, params: ChromaParams): void {
  if (!params.enabled) return;
  const smooth = Math.max(params.smoothness, 0.0001);
  const spillRange = Math.max(params.spill, 0.0001);
  for (let i = 0; i < data.length; i += 4) {
    const r = data[i] / 255;
    const g = data[i + 1] / 255;
    const b = data[i + 2] / 255;
    const base = keyDistance(r, g, b, params);
    const alpha = clamp(base / smooth, 0, 1) ** 1.5;
    const spill = clamp(base / spillRange, 0, 1) ** 1.5;
    const luma = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    data[i] = (luma + (r - luma) * spill) * 255;
    data[i + 1] = (luma + (g - luma) * spill) * 255;
    data[i + 2] = (luma + (b - luma) * spill) * 255;
    data[i + 3] = alpha * 255;
  }
}

/** A keyed host stands on the stage; a framed one is shown as is, in a bordered box. */
export type HostLook = "keyed" | "framed";

/**
 * The share (0..1) of a frame's border pixels (the outer `band` rows and columns) that the key
 * takes out (more than half transparent). A green-screen host's frame is keyed all round but for
 * where the body meets the bottom edge; an avatar in a room keys almost nothing.
 * `data`: RGBA bytes, `width` x `height`.
 */
export function keyedBorderShare(data: Uint8ClampedArray, width: number, height: number, params: ChromaParams, band = 2): number {
  if (width <= 0 || height <= 0) return 0;
  const edge = Math.max(1, Math.min(band, Math.floor(width / 2), Math.floor(height / 2)));
  const smooth = Math.max(params.smoothness, 0.0001);
  let border = 0;
  let keyed = 0;
  for (let y = 0; y < height; y++) {
    const rowOnEdge = y < edge || y >= height - edge;
    for (let x = 0; x < width; x++) {
      if (!rowOnEdge && x >= edge && x < width - edge) continue;
      const i = (y * width + x) * 4;
      const alpha = clamp(keyDistance(data[i] / 255, data[i + 1] / 255, data[i + 2] / 255, params) / smooth, 0, 1) ** 1.5;
      border++;
      if (alpha < 0.5) keyed++;
    }
  }
  return keyed / border;
}

/** Frames the look is decided on: the newest ones sampled. */
export const LOOK_FRAMES = 5;

/**
 * Keyed or framed, from the border shares of the last few sampled frames (`keyedBorderShare`):
 * keyed when the median frame has at least `threshold` of its border keyed. Null until
 * `minFrames` frames were sampled; framed whenever keying is off.
 */
export function decideHostLook(shares: readonly number[], params: ChromaParams, minFrames = 3, threshold = 0.5): HostLook | null {
  if (!params.enabled) return "framed";
  const recent = shares.slice(-LOOK_FRAMES);
  if (recent.length < minFrames) return null;
  const sorted = [...recent].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  return median >= threshold ? "keyed" : "framed";
}

const VERTEX_SRC = `
attribute vec2 a_pos;
varying vec2 v_uv;
void main() {
  v_uv = (a_pos + 1.0) * 0.5;
  gl_Position = vec4(a_pos, 0.0, 1.0);
}`;

const FRAGMENT_SRC = `
precision mediump float;
varying vec2 v_uv;
uniform sampler2D u_tex;
uniform vec3 u_key;
uniform float u_similarity;
uniform float u_smoothness;
uniform float u_spill;
uniform float u_enabled;

vec2 chroma(vec3 c) {
  return vec2(
    c.r * -0.1687 + c.g * -0.3313 + c.b * 0.5 + 0.5,
    c.r * 0.5 + c.g * -0.4187 + c.b * -0.0813 + 0.5);
}

void main() {
  vec4 rgba = texture2D(u_tex, v_uv);
  if (u_enabled < 0.5) {
    gl_FragColor = vec4(rgba.rgb, 1.0);
    return;
  }
  float base = distance(chroma(rgba.rgb), chroma(u_key)) - u_similarity;
  float alpha = pow(clamp(base / max(u_smoothness, 0.0001), 0.0, 1.0), 1.5);
  float spill = pow(clamp(base / max(u_spill, 0.0001), 0.0, 1.0), 1.5);
  float luma = dot(rgba.rgb, vec3(0.2126, 0.7152, 0.0722));
  vec3 color = mix(vec3(luma), rgba.rgb, spill);
  gl_FragColor = vec4(color * alpha, alpha); // premultiplied
}`;

interface GlState {
  gl: WebGLRenderingContext;
  program: WebGLProgram;
  texture: WebGLTexture;
  uniforms: Record<"key" | "similarity" | "smoothness" | "spill" | "enabled", WebGLUniformLocation | null>;
}

function compile(gl: WebGLRenderingContext, type: number, src: string): WebGLShader {
  const shader = gl.createShader(type);
  if (!shader) throw new Error("createShader failed");
  gl.shaderSource(shader, src);
  gl.compileShader(shader);
  if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) {
    throw new Error(`shader: ${gl.getShaderInfoLog(shader) ?? "compile error"}`);
  }
  return shader;
}

function setupGl(canvas: HTMLCanvasElement): GlState | null {
  // preserveDrawingBuffer: the frame stays readable (drawImage / toDataURL) for tests and captures.
  const gl = canvas.getContext("webgl", {
    premultipliedAlpha: true,
    alpha: true,
    antialias: false,
    preserveDrawingBuffer: true,
  });
  if (!gl) return null;
  const program = gl.createProgram();
  if (!program) return null;
  gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, VERTEX_SRC));
  gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT_SRC));
  gl.linkProgram(program);
  if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error("program link failed");
  gl.useProgram(program);

  const buffer = gl.createBuffer();
  gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
  gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
  const pos = gl.getAttribLocation(program, "a_pos");
  gl.enableVertexAttribArray(pos);
  gl.vertexAttribPointer(pos, 2, gl.FLOAT, false, 0, 0);

  const texture = gl.createTexture();
  if (!texture) return null;
  gl.bindTexture(gl.TEXTURE_2D, texture);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
  gl.pixelStorei(gl.UNPACK_FLIP_Y_WEBGL, true);
  gl.uniform1i(gl.getUniformLocation(program, "u_tex"), 0);
  gl.clearColor(0, 0, 0, 0);

  const u = (name: string) => gl.getUniformLocation(program, name);
  return {
    gl,
    program,
    texture,
    uniforms: {
      key: u("u_key"),
      similarity: u("u_similarity"),
      smoothness: u("u_smoothness"),
      spill: u("u_spill"),
      enabled: u("u_enabled"),
    },
  };
}

type VideoWithRvfc = HTMLVideoElement & {
  requestVideoFrameCallback?: (cb: () => void) => number;
  cancelVideoFrameCallback?: (handle: number) => void;
};

/** How often the renderer samples the video's border to decide keyed or framed. */
const LOOK_SAMPLE_MS = 250;
const LOOK_SAMPLE_W = 64;
const LOOK_SAMPLE_H = 36;

/**
 * Draws a <video> into a canvas each frame, keyed: with WebGL, or on the CPU through a 2D
 * canvas where WebGL is unavailable. `canvas.dataset.renderer` says which ("webgl" / "2d").
 * A few times a second it samples the video's border (`decideHostLook`): a video without the key
 * colour around it is drawn as is (framed) instead of keyed; `onLook` hears every change.
 */
export class ChromaKeyRenderer {
  private glState: GlState | null = null;
  private ctx2d: CanvasRenderingContext2D | null = null;
  private video: VideoWithRvfc | null = null;
  private rafHandle = 0;
  private rvfcHandle = 0;
  private running = false;
  private shares: number[] = [];
  private lastSample = 0;
  private sampler: CanvasRenderingContext2D | null = null;
  private currentLook: HostLook | null = null;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private params: ChromaParams = DEFAULT_CHROMA,
    private readonly onLook?: (look: HostLook | null) => void,
  ) {
    this.init();
    canvas.addEventListener("webglcontextlost", (e) => {
      e.preventDefault();
      this.glState = null;
    });
    canvas.addEventListener("webglcontextrestored", () => this.init());
  }

  /** "webgl", "2d" or "none": what is drawing. */
  get mode(): string {
    return this.glState ? "webgl" : this.ctx2d ? "2d" : "none";
  }

  setParams(params: ChromaParams): void {
    this.params = params;
  }

  /** Start drawing this video (or stop, with null). */
  setVideo(video: HTMLVideoElement | null): void {
    this.stop();
    this.video = video;
    this.shares = [];
    this.lastSample = 0;
    this.setLook(null);
    if (video) {
      this.running = true;
      this.schedule();
    } else {
      this.clear();
    }
  }

  stop(): void {
    this.running = false;
    if (this.rafHandle) cancelAnimationFrame(this.rafHandle);
    if (this.rvfcHandle && this.video?.cancelVideoFrameCallback) this.video.cancelVideoFrameCallback(this.rvfcHandle);
    this.rafHandle = 0;
    this.rvfcHandle = 0;
  }

  /** The look decided for the current video (null: none yet, or no video). */
  get look(): HostLook | null {
    return this.currentLook;
  }

  private setLook(look: HostLook | null): void {
    if (look === this.currentLook) return;
    this.currentLook = look;
    this.onLook?.(look);
  }

  private sampleLook(video: HTMLVideoElement): void {
    const now = performance.now();
    if (this.lastSample && now - this.lastSample < LOOK_SAMPLE_MS) return;
    this.lastSample = now;
    if (!this.sampler) {
      const small = this.canvas.ownerDocument.createElement("canvas");
      small.width = LOOK_SAMPLE_W;
      small.height = LOOK_SAMPLE_H;
      this.sampler = small.getContext("2d", { willReadFrequently: true });
      if (!this.sampler) return;
    }
    this.sampler.drawImage(video, 0, 0, LOOK_SAMPLE_W, LOOK_SAMPLE_H);
    const frame = this.sampler.getImageData(0, 0, LOOK_SAMPLE_W, LOOK_SAMPLE_H);
    this.shares = [...this.shares, keyedBorderShare(frame.data, LOOK_SAMPLE_W, LOOK_SAMPLE_H, this.params)].slice(-LOOK_FRAMES);
    const look = decideHostLook(this.shares, this.params);
    if (look) this.setLook(look);
  }

  private init(): void {
    try {
      this.glState = setupGl(this.canvas);
    } catch (err) {
      console.warn("chroma key: WebGL setup failed", err);
      this.glState = null;
    }
    if (!this.glState) this.ctx2d = this.canvas.getContext("2d", { willReadFrequently: true });
    this.canvas.dataset.renderer = this.mode;
  }

  private schedule(): void {
    if (!this.running || !this.video) return;
    const video = this.video;
    // requestVideoFrameCallback fires once per decoded frame (and not at all while hidden/paused),
    // but only after the first frame; rAF covers the time before that.
    if (video.requestVideoFrameCallback && video.readyState >= 2) {
      this.rvfcHandle = video.requestVideoFrameCallback(() => this.frame());
    } else {
      this.rafHandle = requestAnimationFrame(() => this.frame());
    }
  }

  private frame(): void {
    this.rafHandle = 0;
    this.rvfcHandle = 0;
    if (!this.running || !this.video) return;
    try {
      this.draw(this.video);
    } catch (err) {
      console.warn("chroma key: draw failed", err);
    }
    this.schedule();
  }

  private draw(video: HTMLVideoElement): void {
    const w = video.videoWidth;
    const h = video.videoHeight;
    if (video.readyState < 2 || !w || !h) return;
    this.sampleLook(video);
    // framed: the video as it is (keying a video without the key colour only eats into it)
    const keyed = this.params.enabled && this.currentLook !== "framed";
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    const s = this.glState;
    if (s) {
      const { gl, uniforms: u } = s;
      const params = this.params;
      gl.viewport(0, 0, w, h);
      gl.bindTexture(gl.TEXTURE_2D, s.texture);
      gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, gl.RGBA, gl.UNSIGNED_BYTE, video);
      gl.uniform3fv(u.key, params.keyColor);
      gl.uniform1f(u.similarity, params.similarity);
      gl.uniform1f(u.smoothness, params.smoothness);
      gl.uniform1f(u.spill, params.spill);
      gl.uniform1f(u.enabled, keyed ? 1 : 0);
      gl.clear(gl.COLOR_BUFFER_BIT);
      gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
    } else if (this.ctx2d) {
      // CPU fallback: same keying, slower; fine for one host video.
      const ctx = this.ctx2d;
      ctx.drawImage(video, 0, 0, w, h);
      if (keyed) {
        const frame = ctx.getImageData(0, 0, w, h);
        keyPixels(frame.data, this.params);
        ctx.putImageData(frame, 0, 0);
      }
    }
  }

  private clear(): void {
    const s = this.glState;
    if (s) {
      s.gl.clear(s.gl.COLOR_BUFFER_BIT);
    } else {
      this.ctx2d?.clearRect(0, 0, this.canvas.width, this.canvas.height);
    }
  }
}
