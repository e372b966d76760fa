"""Each show's stage follows its configuration (`stage_producer.shows`), heard on `room.config.*`:
two rooms with disjoint topics each only ever get visuals of their own topics, whatever their
chat talks about; a show's search provider and backdrop maker are built by name (one that
cannot be built here falls back to the service's own); a deleted show gets every topic again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from livestage import subjects
from livestage.schemas import ShowConfig, ShowConfigEvent, ShowStageConfig, new_id, now_ms
from tests.support.waiting import until

from .test_service import Stage, chat, make_stage  # noqa: F401 - make_stage is a fixture

pytestmark = pytest.mark.browser

A_TOPICS = {"Mars", "Deep sea"}
B_TOPICS = {"Northern lights", "Synthesizers"}


def config_event(room: str, stage: ShowStageConfig | None) -> ShowConfigEvent:
    config = None
    if stage is not None:
        config = ShowConfig(
            room=room, title=f"Show {room}", stage=stage, created_at=now_ms(), updated_at=now_ms()
        )
    return ShowConfigEvent(id=new_id(), room=room, config=config, created_at=now_ms())


async def until_applied(stage: Stage, room: str, names: set[str] | None) -> None:
    """Until the service's catalog for `room` is `names` (None: every topic)."""
    every = {topic.name for topic in stage.service.sources.catalog}
    async with asyncio.timeout(10):
        while {t.name for t in stage.service.shows.catalog(room)} != (names or every):  # noqa: ASYNC110 - followed in the background
            await asyncio.sleep(0.05)


async def test_two_shows_with_disjoint_topics_only_get_their_own(make_stage, caplog) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    stage = await make_stage(backdrop_every=1)  # backdrops only: fast, and the topic shows
    service = stage.service
    room_a, room_b = stage.room, "room-" + uuid.uuid4().hex[:10]
    with caplog.at_level(logging.WARNING, logger="stage_producer.shows"):
        await stage.bus.publish(
            subjects.room_config(room_a),
            config_event(room_a, ShowStageConfig(topics=sorted(A_TOPICS), search="gemini")),
        )
        await stage.bus.publish(
            subjects.room_config(room_b),
            config_event(
                room_b,
                ShowStageConfig(topics=[*sorted(B_TOPICS), "Volcanoes"], backdrops="procedural"),
            ),
        )
        await until_applied(stage, room_a, A_TOPICS)
        await until_applied(stage, room_b, B_TOPICS)
    # no GEMINI_API_KEY here: A's search is the service's own; an unknown topic is ignored
    assert "search provider 'gemini' cannot be used here" in caplog.text
    assert "Volcanoes" in caplog.text
    assert service.shows.factory(room_a).search is service.factory.search
    assert service.shows.factory(room_b).backdrops.name == "procedural"

    # each room's chat talks about the other show's topics: it must not move either stage
    for body in ["aurora tonight!", "northern lights aurora", "the aurora is green"]:
        await stage.bus.publish(subjects.chat_approved(room_a), chat(room_a, body))
    for body in ["mars rover!", "perseverance on mars", "olympus mons on mars"]:
        await stage.bus.publish(subjects.chat_approved(room_b), chat(room_b, body))
    await until(
        lambda: all(len(service._memory(r).chat) >= 3 for r in (room_a, room_b)),
        10,
        "the chat seen by the stage",
    )

    shown: dict[str, list[str]] = {room_a: [], room_b: []}
    for _ in range(4):
        for room in (room_a, room_b):
            visual = await service.step(room)
            assert visual is not None and visual.room == room
            shown[room].append(visual.topic)
        stage.clock.now += service.settings.interval_s  # the next visual is due
    assert set(shown[room_a]) == A_TOPICS, shown  # the rotation walks its own topics only
    assert set(shown[room_b]) == B_TOPICS, shown

    # a deleted show (or one without a list) gets every topic again
    await stage.bus.publish(subjects.room_config(room_b), config_event(room_b, None))
    await until_applied(stage, room_b, None)
    assert service.shows.factory(room_b) is service.factory


async def test_a_starting_stage_has_every_show_in_hand_before_any_room_loop(
    make_stage,  # noqa: F811
) -> None:  # type: ignore[no-untyped-def]
    """A show's stage is read before the rooms are (a room with viewers at start would
    otherwise get its first visual before its show's topics are known)."""
    room = "room-" + uuid.uuid4().hex[:10]
    early = await make_stage()
    stage = ShowStageConfig(topics=["Synthesizers"])
    await early.bus.publish(subjects.room_config(room), config_event(room, stage))
    started = await make_stage(backdrop_every=1)  # learns it from the stream at its start
    assert {t.name for t in started.service.shows.catalog(room)} == {"Synthesizers"}
    visual = await started.service.step(room)
    assert visual is not None and visual.topic == "Synthesizers"
