"""Pure decisions: which rooms have viewers, when a room gets a visual and of what kind."""

from __future__ import annotations

from livestage.schemas import HostJobEvent, PresenceEvent, ShowEvent, StageVisual, new_id
from stage_producer.planner import PlanSettings, RoomPlan, choose_kind
from stage_producer.rooms import RoomTracker
from stage_producer.search.base import Source
from stage_producer.topics.base import CatalogTopic, TopicChoice

T0 = 1_800_000_000_000
CATALOG = (CatalogTopic("Mars", ("mars",)), CatalogTopic("Deep sea", ("ocean",)))
VIEWER = "viewer_abcdef12_0123abcd"


def presence(
    event: str, identity: str = VIEWER, room: str = "r1", kind: str = "standard"
) -> PresenceEvent:
    return PresenceEvent(
        id=new_id(),
        room=room,
        event=event,
        identity=identity,
        participant_kind=kind,
        created_at=T0,  # type: ignore[arg-type]
    )


def job(event: str, reason: str = "", room: str = "r1") -> HostJobEvent:
    return HostJobEvent(
        id=new_id(), room=room, job_id="j1", event=event, reason=reason, created_at=T0
    )  # type: ignore[arg-type]


def visual(
    kind: str = "screenshot", topic: str = "Mars", url: str = "http://a/", at: int = T0
) -> StageVisual:
    source_url = url if kind != "backdrop" else ""
    return StageVisual(
        id=new_id(), room="r1", kind=kind, url="/media/x", source_url=source_url,  # type: ignore[arg-type]
        title="t", topic=topic, created_at=at, expires_at=at + 900_000,
    )  # fmt: skip


def test_a_room_is_active_while_a_viewer_is_in_it() -> None:
    rooms = RoomTracker()
    rooms.apply_presence(presence("participant_joined", identity="agent-host", kind="agent"))
    assert not rooms.is_active("r1")
    rooms.apply_presence(presence("participant_joined"))
    assert rooms.active_rooms() == {"r1"}
    rooms.apply_presence(presence("participant_left"))
    assert rooms.active_rooms() == set()


def test_viewers_are_counted_over_every_room() -> None:
    rooms = RoomTracker()
    rooms.apply_presence(presence("participant_joined"))
    rooms.apply_presence(presence("participant_joined", identity="viewer_bbbbbbbb_0123abcd"))
    rooms.apply_presence(presence("participant_joined", room="r2"))
    rooms.apply_presence(presence("participant_joined", identity="agent-host", kind="agent"))
    assert rooms.total_viewers() == 3
    rooms.apply_presence(presence("participant_left", room="r2"))
    assert rooms.total_viewers() == 2


def test_host_job_events_alone_are_enough() -> None:
    rooms = RoomTracker()
    rooms.apply_job(job("started"))
    assert not rooms.is_active("r1")
    rooms.apply_job(job("live"))
    assert rooms.is_active("r1")
    rooms.apply_job(job("ended", "viewers_left"))
    assert not rooms.is_active("r1")


def test_room_finished_clears_everything() -> None:
    rooms = RoomTracker()
    rooms.apply_presence(presence("participant_joined"))
    rooms.apply_job(job("live"))
    rooms.apply_presence(presence("room_finished", identity=""))
    assert not rooms.is_active("r1")


def test_an_ended_show_is_inactive_whatever_its_viewers_until_live() -> None:
    rooms = RoomTracker()
    rooms.apply_presence(presence("participant_joined"))
    rooms.apply_job(job("live"))
    rooms.apply_show(ShowEvent(id=new_id(), room="r1", state="ended", created_at=T0))
    assert not rooms.is_active("r1") and rooms.active_rooms() == set()
    assert rooms.show_ended("r1") and not rooms.show_ended("r2")
    rooms.apply_presence(presence("participant_joined", identity="viewer_bbbbbbbb_0123abcd"))
    assert not rooms.is_active("r1") and rooms.viewers("r1") == 2  # still counted
    rooms.apply_show(ShowEvent(id=new_id(), room="r1", state="live", created_at=T0))
    assert rooms.is_active("r1")


def choice(topic: str, confidence: float) -> TopicChoice:
    return TopicChoice(topic, topic, confidence)


def test_first_visual_at_once_then_every_interval() -> None:
    plan = RoomPlan(PlanSettings(interval_s=40, min_gap_s=15, shift_confidence=0.5))
    first = plan.decide(T0, None, CATALOG)
    assert first is not None and first.reason == "first" and first.choice.topic == "Mars"
    plan.made(visual(topic="Mars"), T0)
    assert plan.decide(T0 + 39_000, None, CATALOG) is None
    due = plan.decide(T0 + 40_000, None, CATALOG)
    assert due is not None and due.reason == "interval"
    assert due.choice.topic == "Deep sea"  # rotation moves on from the current topic


def test_a_clear_topic_shift_comes_sooner_but_not_before_the_gap() -> None:
    plan = RoomPlan(PlanSettings(interval_s=40, min_gap_s=15, shift_confidence=0.5))
    plan.made(visual(topic="Mars"), T0)
    assert plan.decide(T0 + 10_000, choice("Deep sea", 0.9), CATALOG) is None  # too soon
    assert plan.decide(T0 + 20_000, choice("Deep sea", 0.3), CATALOG) is None  # not clear
    assert plan.decide(T0 + 20_000, choice("Mars", 0.9), CATALOG) is None  # same topic
    shift = plan.decide(T0 + 20_000, choice("Deep sea", 0.9), CATALOG)
    assert shift is not None and shift.reason == "shift" and shift.choice.topic == "Deep sea"


def test_a_pinned_visual_holds_the_screen_and_is_resigned_before_it_expires() -> None:
    plan = RoomPlan(PlanSettings(interval_s=40, visual_ttl_s=800))
    pinned = visual(at=T0)
    plan.made(pinned, T0)
    plan.pin(pinned)
    assert plan.decide(T0 + 3_600_000, choice("Deep sea", 1.0), CATALOG) is None
    assert not plan.pinned_needs_refresh(T0 + 500_000)
    assert plan.pinned_needs_refresh(T0 + 701_000)
    plan.unpin()
    assert plan.decide(T0 + 3_600_000, None, CATALOG) is not None


def test_sources_shown_lately_are_skipped() -> None:
    plan = RoomPlan(PlanSettings())
    a, b = Source("http://a/"), Source("http://b/")
    assert plan.pick_source([a, b]) == a
    plan.made(visual(url="http://a/"), T0)
    assert plan.pick_source([a, b]) == b
    plan.made(visual(url="http://b/"), T0)
    assert plan.pick_source([a, b]) == a  # both shown: the one shown longest ago
    assert plan.pick_source([]) is None


def test_kinds_are_spread_out() -> None:
    page = Source("http://a/")
    kinds = [choose_kind(n, n, page, clip_every=3, backdrop_every=4) for n in range(1, 9)]
    assert kinds == ["screenshot", "screenshot", "clip", "backdrop"] + [
        "screenshot",
        "clip",
        "screenshot",
        "backdrop",
    ]
    assert choose_kind(1, 1, None, 3, 4) == "backdrop"
    assert choose_kind(1, 1, Source("http://a/", kind="clip"), 0, 0) == "clip"
    assert choose_kind(3, 3, Source("http://a/", kind="screenshot"), 3, 0) == "screenshot"


def test_the_plan_settings_are_the_stage_settings_of_the_same_names() -> None:
    from livestage.settings import derive
    from stage_producer.settings import StageSettings

    assert PlanSettings() == derive(PlanSettings, StageSettings.model_construct())
    stage = StageSettings.model_construct(interval_s=90.0, clip_every=0)
    assert derive(PlanSettings, stage) == PlanSettings(interval_s=90.0, clip_every=0)
