"""#17: a resend never shows a chat message twice, also after a publish that timed out."""

from __future__ import annotations

import nats

from livestage import subjects
from livestage.schemas import ChatMessage

from .conftest import EdgeFactory


async def _stored(nats_url: str, subject: str, *, first_within: float) -> list[ChatMessage]:
    """Every message JetStream holds on `subject`; waits up to `first_within` s for the first
    (an event, not a poll), then reads until the stream has nothing more to give."""
    nc = await nats.connect(nats_url)
    try:
        sub = await nc.jetstream().subscribe(subject, ordered_consumer=True)
        found: list[ChatMessage] = []
        timeout = first_within
        while True:
            try:
                msg = await sub.next_msg(timeout=timeout)
            except nats.errors.TimeoutError:
                return found
            found.append(ChatMessage.from_json(msg.data))
            timeout = 1.0
    finally:
        await nc.close()


async def test_a_timed_out_publish_says_it_may_be_stored_and_a_resend_is_shown_once(
    make_edge: EdgeFactory, nats_server
) -> None:  # type: ignore[no-untyped-def]
    # A JetStream ack cannot arrive within a microsecond: the publish goes out, the wait ends.
    edge = await make_edge(nats_timeout_s=1e-6)
    await edge.wait_for_bus()
    viewer = await edge.token()
    auth = {"Authorization": f"Bearer {viewer['token']}"}
    send = {"body": "did this arrive?", "clientId": "3f0c2a9e-1b7d-4c55-9e0a-5d2f8b6c7a10"}

    timed_out = await edge.client.post("/api/chat", json=send, headers=auth)
    assert timed_out.status_code == 503, timed_out.text
    assert timed_out.headers["Retry-After"] == "2"
    detail = timed_out.json()["detail"]
    assert "may have been stored" in detail and "same clientId" in detail
    assert "nothing was changed" not in detail

    # JetStream stored it although the edge stopped waiting for the ack.
    subject = subjects.chat_submitted(edge.room)
    assert len(await _stored(nats_server.url, subject, first_within=10)) == 1

    # The page resends with the same clientId once the bus answers in time again.
    edge.services.edge = edge.services.edge.model_copy(update={"nats_timeout_s": 5.0})
    first = await edge.client.post("/api/chat", json=send, headers=auth)
    again = await edge.client.post("/api/chat", json=send, headers=auth)
    assert first.status_code == again.status_code == 202, (first.text, again.text)
    assert first.json()["id"] == again.json()["id"]

    stored = await _stored(nats_server.url, subject, first_within=10)
    assert [(m.id, m.body) for m in stored] == [(first.json()["id"], "did this arrive?")]

    # A new message (a new clientId) with the same text is its own message.
    other = await edge.client.post(
        "/api/chat", json={**send, "clientId": "new-send-0002"}, headers=auth
    )
    assert other.status_code == 202 and other.json()["id"] != first.json()["id"]
    stored = await _stored(nats_server.url, subject, first_within=10)
    assert [m.id for m in stored] == [first.json()["id"], other.json()["id"]]
