"""The console's pure parts: chat outcomes in any order, the host's status, the numbers."""

from __future__ import annotations

from livestage.schemas import (
    ChatMessage,
    ChatRemoval,
    HostJobEvent,
    ModerationVerdict,
    SpokenTurn,
    StageVisual,
    removal_id,
)
from tests.support.chat import chat_message
from token_service.console.fold import ChatLog, add_visual, fold_host
from token_service.console.models import HostStatus
from token_service.console.numbers import Reactions, VerdictLog, chat_rate, p50, reaction_ms

T0 = 1_800_000_000_000
ROOM = "console-room"


def message(n: int, at: int | None = None) -> ChatMessage:
    return chat_message(
        ROOM, f"message {n}", id=f"m{n}", created_at=at if at is not None else T0 + n * 1000
    )


def verdict(n: int, checks: list[str]) -> ModerationVerdict:
    return ModerationVerdict(
        message_id=f"m{n}",
        room=ROOM,
        author_identity="viewer_abcdefgh_00000002",
        verdict="rejected",
        reason="blocked words",
        checks=checks,
        decided_at=T0 + n * 1000 + 50,
    )


def removal(n: int) -> ChatRemoval:
    return ChatRemoval(
        id=removal_id(f"m{n}"), room=ROOM, message_id=f"m{n}", reason="spam", created_at=T0
    )


def test_chat_outcomes_follow_submission_verdict_and_removal() -> None:
    log = ChatLog()
    pending = log.submitted(message(1))
    assert pending is not None and pending.outcome == "pending"
    approved = log.approved(message(1))
    assert approved is not None and approved.outcome == "approved"
    log.submitted(message(2))
    rejected = log.rejected(verdict(2, ["wordlist", "classifier"]))
    assert rejected is not None
    assert (rejected.outcome, rejected.reason, rejected.checks) == (
        "rejected",
        "blocked words",
        ["wordlist", "classifier"],
    )
    removed = log.removed(removal(1))
    assert removed is not None and (removed.outcome, removed.reason) == ("removed", "spam")
    assert [(e.message.id, e.outcome) for e in log.entries()] == [
        ("m1", "removed"),
        ("m2", "rejected"),
    ]
    # repeats change nothing and are not sent again
    assert log.submitted(message(1)) is None
    assert log.approved(message(1)) is None
    assert log.removed(removal(1)) is None


def test_news_heard_before_the_message_waits_for_it() -> None:
    log = ChatLog()
    assert log.rejected(verdict(3, ["spam"])) is None
    assert log.removed(removal(4)) is None
    early = log.submitted(message(3))
    assert early is not None and (early.outcome, early.checks) == ("rejected", ["spam"])
    later = log.submitted(message(4))
    assert later is not None and later.outcome == "removed"
    # an approval heard before its submission stands, and the submission does not undo it
    assert log.approved(message(5)) is not None
    assert log.submitted(message(5)) is None
    entry = log.get("m5")
    assert entry is not None and entry.outcome == "approved"


def test_platform_messages_keep_their_source() -> None:
    data = message(6).to_wire() | {
        "source": {"platform": "twitch", "userId": "42", "messageId": "abc"}
    }
    platform = ChatMessage.model_validate(data)
    entry = ChatLog().submitted(platform)
    assert entry is not None
    assert entry.to_wire()["message"]["source"]["platform"] == "twitch"


def test_the_chat_log_keeps_the_newest_hundred_oldest_first() -> None:
    log = ChatLog()
    for n in range(130, 0, -1):  # heard newest first
        log.submitted(message(n))
    ids = [e.message.id for e in log.entries()]
    assert len(ids) == 100
    assert ids[0] == "m31" and ids[-1] == "m130"
    assert log.submitted(message(0)) is None  # older than all kept: not sent
    assert log.approved(message(31)) is not None  # a changed entry keeps its place by time
    log.submitted(message(131))
    ids = [e.message.id for e in log.entries()]
    assert len(ids) == 100 and ids[0] == "m32" and ids[-1] == "m131"


def job(event: str, at: int, job_id: str = "job-1", **fields: str) -> HostJobEvent:
    return HostJobEvent(
        id=f"{job_id}-{event}-{at}",
        room=ROOM,
        job_id=job_id,
        event=event,  # type: ignore[arg-type]
        created_at=T0 + at,
        **fields,  # type: ignore[arg-type]
    )


def test_the_host_status_folds_a_job_life() -> None:
    status = HostStatus()
    status = fold_host(status, job("started", 1, voice="openai-realtime", avatar="anam"))
    assert (status.state, status.job_id, status.since) == ("waiting", "job-1", T0 + 1)
    status = fold_host(status, job("live", 2, voice="openai-realtime", avatar="anam"))
    assert (status.state, status.voice, status.avatar, status.since) == (
        "live",
        "openai-realtime",
        "anam",
        T0 + 2,
    )
    status = fold_host(status, job("fallback", 3, voice="openai-realtime", avatar="local",
                                   reason="anam: session failed"))  # fmt: skip
    assert status.state == "live" and status.avatar == "local" and status.since == T0 + 2
    assert [(f.at, f.avatar, f.reason) for f in status.fallbacks] == [
        (T0 + 3, "local", "anam: session failed")
    ]
    status = fold_host(status, job("released", 4, reason="paused"))
    assert (status.state, status.reason, status.since) == ("released", "paused", T0 + 4)
    status = fold_host(status, job("rebuilt", 5))
    assert (status.state, status.reason, status.since) == ("live", "", T0 + 5)
    assert len(status.fallbacks) == 1 and status.voice == "openai-realtime"
    status = fold_host(status, job("ended", 6, reason="operator"))
    assert (status.state, status.reason) == ("ended", "operator")
    # a new job starts afresh
    status = fold_host(status, job("started", 7, job_id="job-2", voice="local", avatar="local"))
    assert (status.state, status.job_id, status.fallbacks) == ("waiting", "job-2", [])
    # the late end of a job already replaced is old news
    assert fold_host(status, job("ended", 8, reason="crashed")) == status


def test_recent_visuals_keep_ten_by_time_one_per_id() -> None:
    def visual(n: int) -> StageVisual:
        return StageVisual(
            id=f"v{n}",
            room=ROOM,
            kind="backdrop",
            url=f"/media/v{n}.png",
            created_at=T0 + n,
            expires_at=T0 + 10**6,
        )

    visuals: list[StageVisual] = []
    for n in [*range(12), 11]:
        visuals = add_visual(visuals, visual(n))
    assert [v.id for v in visuals] == [f"v{n}" for n in range(2, 12)]


def test_chat_rate_and_rejected_share_over_ten_minutes() -> None:
    now = T0 + 3_600_000
    verdicts = [(now - 11 * 60_000, True)]  # too old
    verdicts += [(now - k * 1000, False) for k in range(15)]
    verdicts += [(now - k * 1000, True) for k in range(5)]
    rate = chat_rate(verdicts, now)
    assert rate.per_minute == 2.0  # 20 verdicts in 10 minutes
    assert rate.rejected_share == 0.25
    assert chat_rate([], now).rejected_share == 0.0

    log = VerdictLog()
    log.add("m1", now - 1000, rejected=True)
    log.add("m1", now - 1000, rejected=False)  # one verdict per message
    log.add("m2", now - 2000, rejected=False)
    assert log.rate(now).rejected_share == 0.5


def spoken(n: int, started_at: int, reply_to: list[str], kind: str = "reply") -> SpokenTurn:
    return SpokenTurn(
        id=f"t{n}",
        room=ROOM,
        text="Hello.",
        reply_to=reply_to,
        kind=kind,  # type: ignore[arg-type]
        started_at=started_at,
        ended_at=started_at + 1000,
    )


def test_reaction_time_of_a_reply_and_the_p50_of_the_last_ten() -> None:
    created = {"m1": T0, "m2": T0 + 500}
    assert reaction_ms(spoken(1, T0 + 2000, ["m2", "m1"]), created.get) == 2000  # longest wait
    assert reaction_ms(spoken(2, T0 + 2000, ["m9"]), created.get) is None  # never seen
    assert reaction_ms(spoken(3, T0 + 2000, ["m1"], kind="monologue"), created.get) is None
    assert p50([]) is None
    assert p50([300, 100, 200]) == 200
    reactions = Reactions()
    for n in range(15):
        reactions.add(f"t{n}", 1000 * (n + 1))
    reactions.add("t14", 1)  # the same turn twice counts once
    assert reactions.samples == [1000 * (n + 1) for n in range(5, 15)]
    assert p50(reactions.samples) == 10_500
