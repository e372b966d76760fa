"""Real captures with Debian's Chromium through the egress proxy (test-only loopback switch on
for the local test site): images of the right size that are not blank, a clip that is a playable
WebM of the expected length, and the time and size limits."""

from __future__ import annotations

import base64
import dataclasses
import io

import pytest
from PIL import Image, ImageChops, ImageStat

from stage_producer.capture.browser import CaptureBrowser, CaptureError, CaptureRefused
from stage_producer.capture.webm import read_webm

pytestmark = pytest.mark.browser


def assert_not_blank(image: Image.Image) -> None:
    rgb = image.convert("RGB")
    spread = ImageStat.Stat(rgb).stddev
    assert max(spread) > 20, f"image looks blank (stddev {spread})"
    colours = rgb.resize((160, 90)).getcolors(maxcolors=160 * 90)
    assert colours is not None and len(colours) > 50


async def test_a_screenshot_of_a_local_page(
    capture_browser: CaptureBrowser, test_site: str, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    shot = await capture_browser.screenshot(f"{test_site}/index.html")
    assert shot.mime == "image/jpeg" and shot.data[:3] == b"\xff\xd8\xff"
    image = Image.open(io.BytesIO(shot.data))
    assert image.size == (1280, 720)
    assert_not_blank(image)
    # the top band of the page: the gradient's orange-red, not white
    r, g, b = image.convert("RGB").getpixel((1200, 40))
    assert r > 150 and b < 150, (r, g, b)
    assert shot.title == "Local test page"
    assert shot.description == "A colourful page for capture tests."
    assert "worth reading aloud" in shot.text
    image.save(tmp_path / "screenshot.png")


async def test_webp_screenshots(capture_browser: CaptureBrowser, test_site: str) -> None:
    shot = await capture_browser.screenshot(f"{test_site}/index.html", "webp")
    assert shot.mime == "image/webp" and shot.data[:4] == b"RIFF" and shot.data[8:12] == b"WEBP"
    image = Image.open(io.BytesIO(shot.data))
    assert image.size == (1280, 720)
    assert_not_blank(image)


async def test_a_shipped_page_is_served_without_network(capture_browser: CaptureBrowser) -> None:
    shot = await capture_browser.screenshot("http://pages.livestage.invalid/mars.html")
    assert shot.title == "Mars, the red planet"
    assert_not_blank(Image.open(io.BytesIO(shot.data)))
    with pytest.raises(CaptureError, match="HTTP 404"):
        await capture_browser.screenshot("http://pages.livestage.invalid/missing.html")


async def test_a_clip_is_a_playable_webm_of_the_expected_length(
    capture_browser: CaptureBrowser, test_site: str
) -> None:
    clip = await capture_browser.clip(f"{test_site}/index.html")
    expected = capture_browser.options.clip_seconds
    info = read_webm(clip.data)
    assert (info.doc_type, info.codec, info.width, info.height) == ("webm", "V_VP8", 1280, 720)
    assert info.duration_s == pytest.approx(expected, abs=0.05)
    assert info.frames == round(expected * capture_browser.options.clip_fps)
    assert clip.duration_s == pytest.approx(expected, abs=0.05)

    # Play it in Chromium: metadata, a decoded frame mid-clip that is not blank, and playback.
    page = await capture_browser.offline_page(
        "https://player.livestage.invalid",
        {
            "/player.html": (b"<video id=v muted playsinline></video>", "text/html"),
            "/clip.webm": (clip.data, "video/webm"),
        },
    )
    try:
        await page.goto("https://player.livestage.invalid/player.html")
        result = await page.evaluate(
            """async () => {
              const v = document.getElementById("v");
              v.src = "/clip.webm";
              await new Promise((ok, fail) => {
                v.onloadeddata = ok;
                v.onerror = () => fail(String(v.error?.message));
              });
              const meta = { duration: v.duration, width: v.videoWidth, height: v.videoHeight,
                             seekableEnd: v.seekable.length ? v.seekable.end(0) : 0 };
              const grab = async (t) => {
                v.currentTime = t;
                await new Promise((ok) => { v.onseeked = ok; });
                const c = document.createElement("canvas"); c.width = 320; c.height = 180;
                c.getContext("2d").drawImage(v, 0, 0, 320, 180);
                return [v.currentTime, c.toDataURL("image/png")];
              };
              const [early, first] = await grab(0.5);
              const [middle, frame] = await grab(4);
              // loop: from just before the end, playback wraps round to the start
              v.loop = true;
              await grab(v.duration - 0.3);
              await v.play();
              const wrapped = await new Promise((ok) => {
                const started = performance.now();
                const tick = () => {
                  if (v.currentTime < 1 && performance.now() - started > 100) ok(true);
                  else if (performance.now() - started > 5000) ok(false);
                  else setTimeout(tick, 20);
                };
                tick();
              });
              return { ...meta, early, middle, first, frame, wrapped, paused: v.paused };
            }"""
        )
    finally:
        await page.context.close()
    assert result["duration"] == pytest.approx(expected, abs=0.05)
    assert result["seekableEnd"] == pytest.approx(expected, abs=0.1)  # seekable, so it can loop
    assert (result["width"], result["height"]) == (1280, 720)
    assert (result["early"], result["middle"]) == (0.5, 4)
    assert result["wrapped"] and not result["paused"]
    first, middle = (
        Image.open(io.BytesIO(base64.b64decode(result[key].split(",", 1)[1]))).convert("RGB")
        for key in ("first", "frame")
    )
    assert_not_blank(middle)
    # the camera moved down the page between 0.5 s and 4 s
    assert max(ImageStat.Stat(ImageChops.difference(first, middle)).mean) > 10


async def test_a_page_that_never_answers_hits_the_time_limit(
    capture_browser: CaptureBrowser, test_site: str
) -> None:
    original = capture_browser.options
    capture_browser.options = dataclasses.replace(original, timeout_s=1.5)
    try:
        with pytest.raises(CaptureError, match="longer than 1.5 s"):
            await capture_browser.screenshot(f"{test_site}/hang")
    finally:
        capture_browser.options = original


async def test_a_page_over_the_size_limit_is_refused(
    capture_browser: CaptureBrowser, test_site: str
) -> None:
    original = capture_browser.options
    capture_browser.options = dataclasses.replace(original, max_bytes=1024 * 1024)
    try:
        with pytest.raises(CaptureRefused, match="size limit"):
            await capture_browser.screenshot(f"{test_site}/big")
    finally:
        capture_browser.options = original


async def test_what_a_page_says_about_itself_is_read_from_its_dom_not_its_scripts(
    capture_browser: CaptureBrowser, test_site: str
) -> None:
    """lying.html redefines document.title, querySelector, getAttribute, innerText, trim and
    JSON.stringify to say an injection: the capture still reads the DOM's own title, description
    and text, and the screenshot is taken as usual."""
    shot = await capture_browser.screenshot(f"{test_site}/lying.html")
    assert shot.title == "A quiet page about tea"
    assert shot.description == "Green tea and black tea."
    assert "Tea leaves are picked" in shot.text
    for field in (shot.title, shot.description, shot.text):
        assert "Ignore previous" not in field
    image = Image.open(io.BytesIO(shot.data)).convert("L")
    assert image.size == (1280, 720)
    assert min(image.getdata()) < 80  # the heading and the paragraph are drawn
