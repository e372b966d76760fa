"""YouTube and Twitch chat authors (`twitch:<user id>`, published by chat-bridge straight onto
`chat.submitted`) never pass the edge's per-visitor rate limits, so moderation's own limits
must hold per platform user: floods, duplicates, strikes and mutes, bans. Through a real
moderator on real NATS and Redis."""

from __future__ import annotations

from livestage.bans import Ban, BanStore
from livestage.schemas import ChatMessage, ModerationVerdict, now_ms
from services.moderation.tests.helpers import Harness
from tests.support.chat import platform_message


async def verdicts_of(harness: Harness, messages: list[ChatMessage]) -> list[str]:
    """Submit `messages` and return, in their order, "approved" or the rejecting checks."""
    for message in messages:
        await harness.submit(message)
    outcomes = []
    for message in messages:
        verdict = await harness.verdicts.wait_for(message.id)
        if isinstance(verdict, ChatMessage):
            assert verdict == message  # published unchanged, its source kept
            outcomes.append("approved")
        else:
            assert isinstance(verdict, ModerationVerdict)
            assert verdict.author_identity == message.author_identity
            outcomes.append(",".join(verdict.checks))
    return outcomes


async def test_a_burst_from_one_twitch_user_gets_the_flood_limit_and_others_are_unaffected(
    harness: Harness,
) -> None:
    limit = harness.moderator.settings.flood_max_messages
    at = now_ms()
    burst = [
        platform_message(harness.room, f"line {i} of the burst", user_id="4242", created_at=at + i)
        for i in range(limit + 3)
    ]
    # another Twitch user and a YouTube user with the same id chat at the same moment
    other = platform_message(harness.room, "hi from another twitch user", created_at=at + 1)
    same_id = platform_message(
        harness.room, "hi from youtube", platform="youtube", user_id="4242", created_at=at + 2
    )
    outcomes = await verdicts_of(harness, [*burst, other, same_id])
    assert outcomes[:limit] == ["approved"] * limit
    assert all("flood" in outcome for outcome in outcomes[limit : limit + 3]), outcomes
    assert outcomes[limit + 3 :] == ["approved", "approved"]


async def test_duplicates_and_strikes_count_per_platform_user(harness: Harness) -> None:
    at = now_ms()
    twitch_user, other_user = "dup4242", "dup4343"
    lines = [
        platform_message(harness.room, "first!", user_id=twitch_user, created_at=at),
        platform_message(harness.room, "first!", user_id=twitch_user, created_at=at + 1000),
        platform_message(harness.room, "first!", user_id=other_user, created_at=at + 1000),
    ]
    assert await verdicts_of(harness, lines) == ["approved", "duplicate", "approved"]

    # three strikes from one YouTube channel mute it; a clean line from it is then refused
    channel = "UCstrikes_1"
    rude = [
        platform_message(
            harness.room, body, platform="youtube", user_id=channel, created_at=at + 2000 + n
        )
        for n, body in enumerate(["fuck", "this is shit", "what a bitch"])
    ]
    assert all(outcome != "approved" for outcome in await verdicts_of(harness, rude))
    after = [
        platform_message(
            harness.room,
            "sorry, I'll behave",
            platform="youtube",
            user_id=channel,
            created_at=at + 3000,
        ),
        platform_message(
            harness.room, "sorry, I'll behave", platform="youtube", created_at=at + 3000
        ),
    ]
    assert await verdicts_of(harness, after) == ["muted", "approved"]


async def test_a_profane_platform_message_is_rejected(harness: Harness) -> None:
    message = platform_message(harness.room, "f u c k you all", platform="youtube")
    [outcome] = await verdicts_of(harness, [message])
    assert outcome != "approved" and "blocklist" in outcome
    assert message.id not in harness.verdicts.approved


async def test_a_banned_platform_user_is_rejected_until_unbanned(harness: Harness) -> None:
    bans = BanStore(harness.redis)
    identity = "twitch:777"
    await bans.ban(harness.room, Ban(identity, identity=identity, created_at=now_ms()))
    banned = platform_message(harness.room, "let me back in", user_id="777")
    bystander = platform_message(harness.room, "I am fine", user_id="778")
    assert await verdicts_of(harness, [banned, bystander]) == ["banned", "approved"]
    rejection = harness.verdicts.rejected[banned.id]
    assert rejection.reason == "You have been banned from this chat."

    assert await bans.unban(harness.room, identity)
    again = platform_message(harness.room, "thanks for the second chance", user_id="777")
    assert await verdicts_of(harness, [again]) == ["approved"]
