// @vitest-environment happy-dom
import { describe, expect, it, vi } from "vitest";
import { StageShow, StageVisualLayer, isExpired, parseStagePageParams, safeVisualUrl } from "../src/stage";
import type { StageVisual } from "../src/types";

const BASE = "https://live.example/stage";

const ASSET = "/media/" + "a".repeat(64) + ".jpg?exp=2000000000&sig=" + "f".repeat(64);
const CLIP = "/media/" + "b".repeat(64) + ".webm?exp=2000000000&sig=" + "e".repeat(64);

describe("safeVisualUrl", () => {
  it("resolves signed /media/ URLs against the page's own origin", () => {
    expect(safeVisualUrl(ASSET, BASE)).toBe("https://live.example" + ASSET);
    expect(safeVisualUrl("https://live.example" + ASSET, BASE)).toBe("https://live.example" + ASSET);
  });
  it("refuses other origins and other paths (the CSP allows only 'self')", () => {
    for (const bad of [
      "https://cdn.example/media/a.jpg",
      "//evil.example/media/a.jpg",
      "http://live.example/media/a.jpg", // another scheme is another origin
      "/assets/index.js",
      "/api/chat/history",
      "/media/../api/config",
      "/media\\..\\api",
      "https://user:pw@live.example/media/a.jpg",
    ]) {
      expect(safeVisualUrl(bad, BASE)).toBeNull();
    }
  });
  it("refuses other schemes", () => {
    for (const bad of ["javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:image/png;base64,AA", "blob:https://x/1", "file:///etc/passwd", "", "java\nscript:alert(1)"]) {
      expect(safeVisualUrl(bad, BASE)).toBeNull();
    }
  });
});

describe("isExpired", () => {
  it("treats 0 as no expiry", () => {
    expect(isExpired({ expiresAt: 0 }, 10)).toBe(false);
    expect(isExpired({ expiresAt: 5 }, 10)).toBe(true);
    expect(isExpired({ expiresAt: 50 }, 10)).toBe(false);
  });
});

describe("parseStagePageParams", () => {
  const p = (s: string) => parseStagePageParams(new URLSearchParams(s));
  it("has defaults", () => expect(p("")).toEqual({ width: 1920, height: 1080, captions: false, name: "Stage" }));
  it("reads and clamps", () => {
    expect(p("width=1280&height=720&captions=1&name=Cam%202")).toEqual({ width: 1280, height: 720, captions: true, name: "Cam 2" });
    expect(p("width=99999&height=1")).toMatchObject({ width: 7680, height: 90 });
    expect(p("width=-5&height=abc")).toMatchObject({ width: 1920, height: 1080 });
    expect(p("captions=0").captions).toBe(false);
    expect(p(`name=${"x".repeat(40)}`).name).toBe("Stage");
    expect(p("name=%00bad").name).toBe("Stage");
  });
});

function visual(over: Partial<StageVisual> = {}): StageVisual {
  return {
    id: "v1",
    room: "main",
    kind: "screenshot",
    url: ASSET,
    sourceUrl: "",
    title: "<b>Title</b>",
    summary: "",
    topic: "",
    createdAt: 100,
    expiresAt: 0,
    ...over,
  };
}

describe("StageVisualLayer", () => {
  function setup(captions = true, now = 1000) {
    const container = document.createElement("div");
    const caption = document.createElement("div");
    const layer = new StageVisualLayer(container, caption, { captions, base: BASE, now: () => now });
    return { container, caption, layer };
  }

  it("adds an img for screenshots and a muted looping video for clips", () => {
    const { container, layer } = setup();
    expect(layer.show(visual())).toBe(true);
    expect(layer.show(visual({ id: "v2", kind: "clip", url: CLIP }))).toBe(true);
    const img = container.querySelector("img");
    const video = container.querySelector("video");
    expect(img?.getAttribute("src")).toBe("https://live.example" + ASSET);
    expect(video?.getAttribute("src")).toBe("https://live.example" + CLIP);
    expect(video?.muted).toBe(true);
    expect(video?.loop).toBe(true);
    expect(video?.autoplay).toBe(true);
    expect(video?.hasAttribute("playsinline")).toBe(true);
  });

  it("refuses a visual from another origin", () => {
    const { container, layer } = setup();
    expect(layer.show(visual({ url: "https://cdn.example/media/x.jpg" }))).toBe(false);
    expect(container.children.length).toBe(0);
  });

  it("ignores expired, unsafe and repeated visuals", () => {
    const { container, layer } = setup();
    expect(layer.show(visual({ expiresAt: 500 }))).toBe(false);
    expect(layer.show(visual({ id: "x", url: "javascript:alert(1)" }))).toBe(false);
    expect(layer.show(visual({ id: "y" }))).toBe(true);
    expect(layer.show(visual({ id: "y" }))).toBe(false);
    expect(container.children.length).toBe(1);
  });

  it("shows the title as caption text once loaded", () => {
    const { container, caption, layer } = setup();
    layer.show(visual());
    container.querySelector("img")!.dispatchEvent(new Event("load"));
    expect(caption.textContent).toBe("<b>Title</b>");
    expect(caption.querySelector("b")).toBeNull();
    expect(caption.hidden).toBe(false);
    expect(layer.currentVisual?.id).toBe("v1");
    expect(container.dataset.visualId).toBe("v1");
  });

  it("hides captions when disabled", () => {
    const { container, caption, layer } = setup(false);
    layer.show(visual());
    container.querySelector("img")!.dispatchEvent(new Event("load"));
    expect(caption.hidden).toBe(true);
  });

  it("does not let an older visual replace a newer one", () => {
    const { container, layer } = setup();
    layer.show(visual({ id: "old", createdAt: 1 }));
    layer.show(visual({ id: "new", createdAt: 2 }));
    const [oldImg, newImg] = Array.from(container.querySelectorAll("img"));
    newImg.dispatchEvent(new Event("load"));
    oldImg.dispatchEvent(new Event("load"));
    expect(layer.currentVisual?.id).toBe("new");
  });

  it("cross-fades: the new visual fades in, the old one fades out and is then removed", () => {
    vi.useFakeTimers();
    try {
      const { container, layer } = setup();
      layer.show(visual({ id: "one", createdAt: 1 }));
      container.querySelector("img")!.dispatchEvent(new Event("load"));
      layer.show(visual({ id: "two", kind: "clip", url: CLIP, createdAt: 2 }));
      const video = container.querySelector("video")!;
      video.dispatchEvent(new Event("loadeddata"));
      const img = container.querySelector("img")!;
      // both are in the container while the CSS opacity transition runs
      expect(video.classList.contains("visible")).toBe(true);
      expect(img.classList.contains("visible")).toBe(false);
      expect(container.children.length).toBe(2);
      expect(container.dataset.visualId).toBe("two");
      vi.advanceTimersByTime(700);
      expect(container.querySelector("img")).toBeNull();
      expect(container.children.length).toBe(1);
      expect(layer.currentVisual?.id).toBe("two");
    } finally {
      vi.useRealTimers();
    }
  });

  it("takes the visual down when it expires", () => {
    vi.useFakeTimers();
    try {
      let now = 1000;
      const container = document.createElement("div");
      const layer = new StageVisualLayer(container, null, { captions: false, base: BASE, now: () => now });
      layer.show(visual({ expiresAt: 5000 }));
      container.querySelector("img")!.dispatchEvent(new Event("load"));
      expect(layer.currentVisual?.id).toBe("v1");
      now = 5001;
      vi.advanceTimersByTime(4001);
      expect(layer.currentVisual).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("StageShow", () => {
  it("puts the layout, the show state and the host's look on the stage", () => {
    const stage = document.createElement("div");
    const ended = document.createElement("div");
    ended.hidden = true;
    const show = new StageShow(stage, ended);
    show.follow({ layout: "side", showState: "ended" });
    expect(stage.dataset.layout).toBe("side");
    expect(stage.dataset.show).toBe("ended");
    expect(ended.hidden).toBe(false);
    show.setShowState("live");
    expect(stage.dataset.show).toBe("live");
    expect(ended.hidden).toBe(true);
    show.setLayout("host-only");
    expect(stage.dataset.layout).toBe("host-only");
    show.setHostLook("framed");
    expect(stage.dataset.hostLook).toBe("framed");
    show.setHostLook(null);
    expect(stage.dataset.hostLook).toBeUndefined();
  });
});
