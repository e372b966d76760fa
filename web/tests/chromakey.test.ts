import { describe, expect, it } from "vitest";
import { DEFAULT_CHROMA, LOOK_FRAMES, decideHostLook, keyPixels, keyedBorderShare, parseChromaParams, parseHexColor } from "../src/chromakey";

const q = (s: string) => parseChromaParams(new URLSearchParams(s));

describe("parseHexColor", () => {
  it("parses 6 and 3 digit colours with or without #", () => {
    expect(parseHexColor("#00ff00")).toEqual([0, 1, 0]);
    expect(parseHexColor("0000FF")).toEqual([0, 0, 1]);
    expect(parseHexColor("f00")).toEqual([1, 0, 0]);
  });
  it("rejects anything else", () => {
    for (const bad of ["", "green", "#12345", "#1234567", "zzzzzz", "rgb(0,255,0)"]) {
      expect(parseHexColor(bad)).toBeNull();
    }
  });
});

describe("parseChromaParams", () => {
  it("defaults to a green key", () => {
    expect(q("")).toEqual(DEFAULT_CHROMA);
    expect(DEFAULT_CHROMA.keyColor).toEqual([0, 1, 0]);
  });

  it("reads every parameter", () => {
    expect(q("key=%230000ff&similarity=0.3&smoothness=0.2&spill=0.05")).toEqual({
      enabled: true,
      keyColor: [0, 0, 1],
      similarity: 0.3,
      smoothness: 0.2,
      spill: 0.05,
    });
  });

  it("clamps to 0..1 and falls back on junk", () => {
    const p = q("similarity=7&smoothness=-1&spill=abc&key=nope");
    expect(p.similarity).toBe(1);
    expect(p.smoothness).toBe(0);
    expect(p.spill).toBe(DEFAULT_CHROMA.spill);
    expect(p.keyColor).toEqual(DEFAULT_CHROMA.keyColor);
    expect(q("similarity=&spill=Infinity").similarity).toBe(DEFAULT_CHROMA.similarity);
    expect(q("spill=Infinity").spill).toBe(DEFAULT_CHROMA.spill);
  });

  it("can be switched off", () => {
    for (const off of ["0", "false", "off", "no", " OFF "]) expect(q(`chroma=${off}`).enabled).toBe(false);
    for (const on of ["1", "true", "yes"]) expect(q(`chroma=${on}`).enabled).toBe(true);
  });
});

describe("keyPixels", () => {
  const px = (...rgba: number[]) => new Uint8ClampedArray(rgba);

  it("keys out pure and near green, keeps skin, white and black", () => {
    const data = px(0, 255, 0, 255, 30, 200, 40, 255, 240, 180, 140, 255, 255, 255, 255, 255, 0, 0, 0, 255);
    keyPixels(data, DEFAULT_CHROMA);
    expect(data[3]).toBe(0);
    expect(data[7]).toBe(0);
    expect(data[11]).toBe(255);
    expect(Array.from(data.slice(8, 11))).toEqual([240, 180, 140]);
    expect(data[15]).toBe(255);
    expect(data[19]).toBe(255);
  });

  it("follows the key colour and the enabled flag", () => {
    const blue = px(0, 0, 255, 255, 0, 255, 0, 255);
    keyPixels(blue, { ...DEFAULT_CHROMA, keyColor: [0, 0, 1] });
    expect(blue[3]).toBe(0);
    expect(blue[7]).toBe(255);
    const off = px(0, 255, 0, 255);
    keyPixels(off, { ...DEFAULT_CHROMA, enabled: false });
    expect(Array.from(off)).toEqual([0, 255, 0, 255]);
  });

  it("gives a soft edge between similarity and similarity + smoothness", () => {
    // a greenish grey sits partway along the ramp when smoothness is wide
    const data = px(100, 160, 100, 255);
    keyPixels(data, { ...DEFAULT_CHROMA, similarity: 0.1, smoothness: 0.5 });
    expect(data[3]).toBeGreaterThan(0);
    expect(data[3]).toBeLessThan(255);
  });
});

describe("keyed or framed host (from the video's border pixels)", () => {
  const W = 64;
  const H = 36;
  /** A frame of `background`, with a `body` block standing on the bottom edge in the middle. */
  function frame(background: [number, number, number], body: [number, number, number] = [200, 150, 120], bodyShare = 0.4): Uint8ClampedArray {
    const data = new Uint8ClampedArray(W * H * 4);
    const left = Math.round((W * (1 - bodyShare)) / 2);
    const right = W - left;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const inBody = y > H / 3 && x >= left && x < right;
        data.set([...(inBody ? body : background), 255], (y * W + x) * 4);
      }
    }
    return data;
  }

  it("measures the keyed share of the border", () => {
    expect(keyedBorderShare(frame([0, 255, 0]), W, H, DEFAULT_CHROMA)).toBeGreaterThan(0.8);
    expect(keyedBorderShare(frame([0, 255, 0]), W, H, DEFAULT_CHROMA)).toBeLessThan(1);
    expect(keyedBorderShare(frame([40, 44, 60]), W, H, DEFAULT_CHROMA)).toBe(0);
    // a green-screen host whose body fills the whole bottom edge and the sides is still keyed above
    expect(keyedBorderShare(frame([0, 255, 0], [90, 60, 50], 1), W, H, DEFAULT_CHROMA)).toBeGreaterThan(0.25);
    // another key colour: green is no longer keyed, blue is
    const blue = { ...DEFAULT_CHROMA, keyColor: [0, 0, 1] as [number, number, number] };
    expect(keyedBorderShare(frame([0, 255, 0]), W, H, blue)).toBe(0);
    expect(keyedBorderShare(frame([0, 0, 255]), W, H, blue)).toBeGreaterThan(0.8);
    expect(keyedBorderShare(new Uint8ClampedArray(0), 0, 0, DEFAULT_CHROMA)).toBe(0);
  });

  it("decides on the median of the last frames, not before three", () => {
    expect(decideHostLook([], DEFAULT_CHROMA)).toBeNull();
    expect(decideHostLook([0.9, 0.9], DEFAULT_CHROMA)).toBeNull();
    expect(decideHostLook([0.9, 0.9, 0.95], DEFAULT_CHROMA)).toBe("keyed");
    expect(decideHostLook([0, 0.02, 0], DEFAULT_CHROMA)).toBe("framed");
    // one odd frame (a flash, a half-decoded key frame) does not flip it
    expect(decideHostLook([0.9, 0.1, 0.92], DEFAULT_CHROMA)).toBe("keyed");
    expect(decideHostLook([0, 0.95, 0], DEFAULT_CHROMA)).toBe("framed");
    // only the newest LOOK_FRAMES count: an avatar that switched to a green screen becomes keyed
    expect(decideHostLook([0, 0, 0, 0, 0, 0.9, 0.9, 0.9], DEFAULT_CHROMA)).toBe("keyed");
    expect(LOOK_FRAMES).toBe(5);
  });

  it("is framed whenever keying is off", () => {
    expect(decideHostLook([], { ...DEFAULT_CHROMA, enabled: false })).toBe("framed");
    expect(decideHostLook([1, 1, 1], { ...DEFAULT_CHROMA, enabled: false })).toBe("framed");
  });
});
