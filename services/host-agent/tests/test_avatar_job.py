"""A host job with the local drawn avatar (`HOST_AVATAR=local`): the viewer gets the avatar's
video and the host's voice from the avatar participant, captions still follow the voice, the
avatar leaves with the job; in Chromium the page keys the avatar over the stage visual."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.async_api import Browser, expect
from redis.asyncio import Redis

from livestage import subjects
from livestage.identity import LOCAL_AVATAR_IDENTITY
from livestage.shows import ShowStore
from tests.support.media import serving

from .conftest import (
    HostWorker,
    backdrop,
    command,
    edge_process,
    go_live,
    joined_page,
    running_worker,
    unique_room,
    until,
)

BLUE = (20, 40, 230)


@pytest.fixture(scope="module")
async def avatar_worker(livekit_server, nats_server) -> AsyncIterator[HostWorker]:  # type: ignore[no-untyped-def]
    async with running_worker(livekit_server, nats_server, avatar="local") as worker:
        yield worker


def green_share(frame: object) -> float:
    """Share of pixels that are the key green (the avatar's background)."""
    rgba = np.frombuffer(frame.data, dtype=np.uint8).reshape(frame.height, frame.width, 4)  # type: ignore[attr-defined]
    r, g, b = (rgba[..., i].astype(int) for i in range(3))
    return float(((g > 180) & (r < 80) & (b < 80)).mean())


async def test_the_local_avatar_speaks_for_the_host_and_leaves_with_it(
    avatar_worker: HostWorker, bus, viewers
) -> None:  # type: ignore[no-untyped-def]
    room = unique_room()
    recorder, viewer = await go_live(avatar_worker, bus, viewers, room, timeout_s=30)
    live = next(e for e in recorder.jobs if e.event == "live")
    assert live.avatar == "local"
    await until(
        lambda: any(sender == LOCAL_AVATAR_IDENTITY for _, sender, _ in viewer.video),
        30,
        "the avatar's video",
    )
    frame = next(f for _, s, f in viewer.video if s == LOCAL_AVATAR_IDENTITY)
    assert 0.2 < green_share(frame) < 0.98  # a face on a keyable green background

    started = time.time()
    await bus.publish(
        subjects.host_control(room), command(room, "say", "Hello from the drawn avatar, Ada.")
    )
    await until(lambda: viewer.audio.loud_since(started), 20, "the host's voice via the avatar")
    await until(lambda: recorder.spoken, 20, "the spoken turn")
    assert recorder.spoken[0].text == "Hello from the drawn avatar, Ada."
    await until(lambda: "drawn avatar" in viewer.caption_text(), 10, "captions")
    avatar = viewer.room.remote_participants.get(LOCAL_AVATAR_IDENTITY)
    assert avatar is not None

    # the job ends with the last viewer gone: the avatar participant goes with it
    watcher = await viewers(room, "observer-" + uuid.uuid4().hex[:8])  # not a viewer
    await viewer.leave()
    await until(lambda: recorder.ended() is not None, 20, "the job's end")
    await until(
        lambda: LOCAL_AVATAR_IDENTITY not in watcher.room.remote_participants, 15, "avatar gone"
    )


@pytest.fixture
def stage_media() -> Iterator[str]:
    """The page shows only signed /media/ URLs of its own origin (the edge streams them from
    the stage producer, TOKEN_STAGE_MEDIA_URL); this stand-in serves a blue backdrop there."""
    out = io.BytesIO()
    Image.new("RGB", (64, 64), BLUE).save(out, "PNG")
    with serving(out.getvalue(), "image/png") as media:
        yield media.url


@pytest.mark.browser
async def test_the_page_shows_the_keyed_avatar_over_the_stage(
    avatar_worker: HostWorker,
    nats_server,
    redis_server,
    livekit_server,
    browser: Browser,
    bus,
    stage_media: str,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    with edge_process(
        avatar_worker,
        nats_server,
        redis_server,
        livekit_server,
        TOKEN_STAGE_MEDIA_URL=stage_media,
    ) as edge:
        base_url, room = edge.split("|")
        # the host in front of the visual (layout `center`; the default `corner` puts it beside)
        redis = Redis.from_url(redis_server.url)
        try:
            await ShowStore(redis).set_layout(room, "center")
        finally:
            await redis.aclose()
        page = await joined_page(browser, base_url)
        await expect(page.locator("#stage")).to_have_attribute("data-layout", "center")
        await expect(page.locator("#stage")).to_have_attribute(
            "data-host", LOCAL_AVATAR_IDENTITY, timeout=40_000
        )
        await expect(page.locator("#host-poster")).to_be_hidden()
        signed = "/media/" + "b" * 64 + ".png?exp=4000000000&sig=" + "f" * 64
        visual = backdrop(room, signed, "Blue hour")
        await bus.publish(subjects.stage_visual(room), visual)
        await expect(page.locator(".stage-visual-item.visible")).to_have_count(1, timeout=15_000)
        await bus.publish(
            subjects.host_control(room),
            command(room, "say", "Look at the blue hour behind me, everyone. Beautiful."),
        )
        await expect(page.locator("#host-captions")).to_contain_text("blue hour", timeout=20_000)
        shot = tmp_path / "avatar-stage.png"
        await page.locator("#stage").screenshot(path=str(shot))
        pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
        r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
        key_green = (g > 180) & (r < 90) & (b < 90)
        blue = (b > 180) & (r < 60) & (g < 60)
        height, width = g.shape
        host = (
            slice(int(height * 0.2), int(height * 0.8)),
            slice(int(width * 0.4), int(width * 0.6)),
        )
        assert key_green.mean() < 0.01, "the avatar's green background was not keyed out"
        assert blue.mean() > 0.3, "the stage visual does not show around the host"
        assert (~blue[host]).mean() > 0.2, "no host drawn in the middle of the stage"
