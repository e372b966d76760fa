"""A dispatched host job against real livekit-server and NATS, heard by real rtc viewers.

The worker (thread executor, local voice: house brain + espeak-ng, avatar `none`) is shared by
the module; every test uses a fresh room.
"""

from __future__ import annotations

import asyncio
import time
import wave
from pathlib import Path

import numpy as np

from livestage import attributes, metrics, subjects
from livestage.schemas import ChatRemoval, new_id, now_ms
from tests.support.chat import platform_message

from .conftest import (
    Recorder,
    backdrop,
    chat_message,
    command,
    go_live,
    metric_total,
    say_then_skip,
    unique_room,
    until,
)


async def test_a_job_without_viewers_ends_within_the_wait(host_worker, bus) -> None:
    room = unique_room()
    recorder = await Recorder().start(bus, room)
    started = time.monotonic()
    await host_worker.dispatch(room)
    await until(lambda: recorder.ended() is not None, 15, "the job's end event")
    ended = recorder.ended()
    assert ended is not None and ended.reason == "no_viewer"
    assert recorder.job_events() == ["started", "ended"]
    # 3 s wait (shortened by HOST_VIEWER_WAIT_S) plus dispatch and connect time
    assert time.monotonic() - started < 3 + 8


async def test_chat_gets_a_spoken_reply_naming_its_author_once(
    host_worker, bus, viewers, tmp_path: Path
) -> None:
    room = unique_room()
    latencies_before = metric_total(metrics.HOST_REACTION_LATENCY.name)
    replies_before = metric_total(metrics.HOST_TURNS.name, kind="reply")
    recorder, viewer = await go_live(host_worker, bus, viewers, room)
    await until(lambda: viewer.host_state() == "idle", 10, "the host's idle state")

    message = chat_message(room, "What is on the screen tonight?", author_name="Ada")
    sent_at = time.time()
    await bus.publish(subjects.chat_approved(room), message)
    # a second copy that JetStream stores too (another Nats-Msg-Id): the host must drop it
    await bus.publish(subjects.chat_approved(room), message, msg_id=new_id())
    await until(lambda: recorder.spoken, 20, "the spoken reply on host.spoken")

    turn = recorder.spoken[0]
    assert turn.reply_to == [message.id] and turn.kind == "reply"
    assert "Ada" in turn.text
    assert turn.speaker_name == "Nova" and turn.speaker_identity.startswith("agent")
    first_loud = viewer.audio.first_loud_after(sent_at)
    assert first_loud is not None, "the viewer heard nothing"
    loud = viewer.audio.loud_since(sent_at)
    assert len(loud) > 50  # > 0.5 s of 10 ms frames with speech energy

    # captions reached the viewer as a transcription stream from the host, in words of the turn
    await until(lambda: viewer.caption_streams, 10, "the caption stream to end")
    assert "Ada" in viewer.caption_text()

    # the same message again, later (stored again: a redelivery after the answer)
    await bus.publish(subjects.chat_approved(room), message, msg_id=new_id())
    # a negative is the contract here: a window in which a second answer would be spoken
    await asyncio.sleep(1.5)
    assert [t.reply_to for t in recorder.spoken] == [[message.id]]

    # listen to it: save what the viewer received and check it is speech-like
    pcm = np.frombuffer(viewer.audio.pcm(), dtype=np.int16)
    path = tmp_path / "host.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(viewer.audio.sample_rate)
        wav.writeframes(pcm.tobytes())
    rate = viewer.audio.sample_rate
    window = rate // 20  # 50 ms
    frames = pcm[: len(pcm) // window * window].astype(np.float64).reshape(-1, window)
    voiced = np.sqrt(np.mean(frames**2, axis=1)) > 300
    assert voiced.sum() * 0.05 > 1.5  # over 1.5 s of voiced speech
    bursts = int((np.diff(np.concatenate([[0], voiced.astype(int)])) == 1).sum())
    assert bursts >= 2, "speech has pauses between phrases, not one flat tone"

    # and it was counted: reaction latency and a reply turn (livestage.metrics specs)
    assert metric_total(metrics.HOST_REACTION_LATENCY.name) == latencies_before + 1
    assert metric_total(metrics.HOST_TURNS.name, kind="reply") == replies_before + 1


async def test_platform_viewers_are_answered_on_their_platform_and_a_removed_line_never(
    host_worker, bus, viewers
) -> None:
    """A Twitch line and a YouTube Super Chat (chat-bridge's `source`) are answered and thanked
    by name and platform (the local voice); a line removed before the host got to it is not."""
    room = unique_room()
    recorder, viewer = await go_live(host_worker, bus, viewers, room)
    await until(lambda: viewer.host_state() == "idle", 10, "the host's idle state")

    removed = platform_message(room, "follow my channel for free bits?", author_name="Spammy")
    # the removal is stored before the message (a moderator was quick): heard first
    removal = ChatRemoval(id=new_id(), room=room, message_id=removed.id, created_at=now_ms())
    await bus.publish(subjects.chat_removed(room), removal)
    await bus.publish(subjects.chat_approved(room), removed)
    question = platform_message(room, "Is the stream live on Twitch too?", author_name="Marta")
    await bus.publish(subjects.chat_approved(room), question)
    await until(lambda: recorder.spoken, 20, "the spoken reply on host.spoken")
    # with up to two comments a turn from different authors, the removed line would be in it
    first = recorder.spoken[0]
    assert first.reply_to == [question.id], first
    assert "Marta on Twitch" in first.text

    super_chat = platform_message(
        room,
        "Marta sent a Super Chat",
        platform="youtube",
        user_id="UCmarta",
        event="super_chat",
        amount="$5.00",
        author_name="Marta",
    )
    await bus.publish(subjects.chat_approved(room), super_chat)
    await until(lambda: len(recorder.spoken) >= 2, 20, "the thank-you on host.spoken")
    thanks = recorder.spoken[1]
    assert thanks.reply_to == [super_chat.id]
    assert "Super Chat" in thanks.text and "Marta on YouTube" in thanks.text
    assert all(removed.id not in turn.reply_to for turn in recorder.spoken)


async def test_say_is_spoken_verbatim_and_skip_stops_it_at_once(host_worker, bus, viewers) -> None:
    room = unique_room()
    recorder, viewer = await go_live(host_worker, bus, viewers, room)

    words = "This is the operator speaking. Stay tuned for the next segment."
    await bus.publish(subjects.host_control(room), command(room, "say", words))
    await until(lambda: recorder.spoken, 20, "the said turn")
    assert recorder.spoken[0].text == words and recorder.spoken[0].kind == "say"

    long_text = " ".join(["This sentence keeps going so that there is time to skip it."] * 6)
    started, skip_at = await say_then_skip(bus, room, viewer, long_text, heard_after_s=0.5)
    await until(lambda: len(recorder.spoken) >= 2, 10, "the skipped turn")
    await asyncio.sleep(1.0)  # the contract: in this second after the skip, no more speech
    last_loud = max(viewer.audio.loud_since(started))
    # at once: well within a second (0.54 s seen on a loaded 2-core machine; the line has ~20 s
    # left), the bound test_production uses for the same contract
    assert last_loud - skip_at < 1.0, f"speech went on {last_loud - skip_at:.3f} s after skip"
    skipped = recorder.spoken[1]
    assert skipped.interrupted and len(skipped.text) < len(long_text)
    assert long_text.startswith(skipped.text.rstrip(" ."))  # what was heard, verbatim
    # the attribute reaches the viewer on its own schedule: wait for it, do not read it once
    await until(lambda: viewer.host_state() == "idle", 10, "the host's idle state after skip")
    assert metric_total(metrics.HOST_INTERRUPTIONS.name, cause="skip") >= 1


async def test_pause_resume_persona_and_state_attribute(host_worker, bus, viewers) -> None:
    room = unique_room()
    recorder, viewer = await go_live(host_worker, bus, viewers, room)
    await bus.publish(subjects.host_control(room), command(room, "pause"))
    await until(lambda: viewer.host_state() == "paused", 10, "the paused state")
    message = chat_message(room, "hello?", author_name="Bob")
    await bus.publish(subjects.chat_approved(room), message)
    await asyncio.sleep(1.0)  # the contract: paused, no reply within this window
    assert recorder.spoken == []  # paused: nothing on its own initiative
    seen_states: set[str] = set()
    viewer.room.on(
        "participant_attributes_changed",
        lambda changed, participant: seen_states.add(changed.get(attributes.HOST_STATE, "")),
    )
    await bus.publish(subjects.host_control(room), command(room, "resume"))
    await until(lambda: recorder.spoken, 15, "the reply after resume")
    assert recorder.spoken[0].reply_to == [message.id]
    assert {"speaking"} <= seen_states

    # persona switch: the host's name in its attributes and in what it says from now on
    await bus.publish(subjects.host_control(room), command(room, "persona", "nobody"))  # refused
    await bus.publish(subjects.host_control(room), command(room, "persona", "sage"))
    await until(
        lambda: (
            (h := viewer.host()) is not None and h.attributes.get(attributes.HOST_PERSONA) == "Sage"
        ),
        10,
        "the persona attribute",
    )
    await bus.publish(subjects.host_control(room), command(room, "say", "Good evening."))
    await until(lambda: len(recorder.spoken) >= 2, 15, "a turn as Sage")
    assert recorder.spoken[1].speaker_name == "Sage"


async def test_visuals_are_relayed_and_sent_to_late_viewers(host_worker, bus, viewers) -> None:
    room = unique_room()
    recorder, first = await go_live(host_worker, bus, viewers, room)
    visual = backdrop(
        room,
        "/assets/backdrop.png",
        "Aurora over the fjord",
        summary="Green light over dark water.",
        topic="auroras",
    )
    await bus.publish(subjects.stage_visual(room), visual)
    await until(lambda: first.stage_packets(), 10, "the relayed visual")
    assert first.stage_packets()[0]["id"] == visual.id
    late = await viewers(room)
    await until(lambda: late.stage_packets(), 10, "the visual sent to a late viewer")
    assert late.stage_packets()[0]["title"] == "Aurora over the fjord"


async def test_the_job_ends_after_the_last_viewer_leaves_and_the_grace(
    host_worker, bus, viewers
) -> None:
    room = unique_room()
    recorder, viewer = await go_live(host_worker, bus, viewers, room)
    left_at = time.monotonic()
    await viewer.leave()
    await until(lambda: recorder.ended() is not None, 15, "the job's end")
    ended = recorder.ended()
    assert ended is not None and ended.reason == "viewers_left"
    assert time.monotonic() - left_at >= 2.0  # the grace (HOST_EMPTY_GRACE_S=2) passed first
    assert ended.voice == "local" and ended.avatar == "none"
    assert "speaking_s" in ended.usage
    assert metric_total(metrics.AGENT_JOBS_ENDED.name, reason="viewers_left") >= 1
    assert metric_total(metrics.AGENT_JOBS_STARTED.name) >= 2
