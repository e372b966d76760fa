"""The Twitch double's own rules, spoken to raw with aiohttp (the bridge's client is proven
against it in `services/chat-bridge/tests/test_twitch.py`): the envelope, Twitch's close codes,
and the Helix and OAuth refusals a client must be able to meet."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.doubles.twitch import Chatter, TwitchDouble


async def _subscribe(
    http: aiohttp.ClientSession, twitch: TwitchDouble, session_id: str, token: str | None = None
) -> aiohttp.ClientResponse:
    return await http.post(
        f"{twitch.api_url}/eventsub/subscriptions",
        headers={
            "Authorization": f"Bearer {token or twitch.access_token}",
            "Client-Id": twitch.client_id,
        },
        json={
            "type": "channel.chat.message",
            "version": "1",
            "condition": {"broadcaster_user_id": twitch.broadcaster_id, "user_id": "400500600"},
            "transport": {"method": "websocket", "session_id": session_id},
        },
    )


async def test_a_session_gets_a_welcome_then_notifications_in_twitchs_envelope() -> None:
    async with TwitchDouble() as twitch, aiohttp.ClientSession() as http:
        async with http.ws_connect(twitch.eventsub_url) as ws:
            welcome: dict[str, Any] = await ws.receive_json(timeout=5)
            assert welcome["metadata"]["message_type"] == "session_welcome"
            session = welcome["payload"]["session"]
            assert session["status"] == "connected" and session["keepalive_timeout_seconds"] == 10
            created = await _subscribe(http, twitch, session["id"])
            assert created.status == 202
            assert (await _subscribe(http, twitch, session["id"])).status == 409
            message_id = await twitch.chat(Chatter("7", "Ana"), "hi", badges=("vip",))
            note = await ws.receive_json(timeout=5)
        metadata = note["metadata"]
        assert set(metadata) == {
            "message_id",
            "message_type",
            "message_timestamp",
            "subscription_type",
            "subscription_version",
        }
        assert metadata["message_type"] == "notification"
        assert metadata["message_timestamp"].endswith("Z")
        assert len(metadata["message_timestamp"].split(".")[1]) == 10  # nanoseconds + Z
        event = note["payload"]["event"]
        assert (event["message_id"], event["message"]["text"]) == (message_id, "hi")
        assert event["badges"] == [{"set_id": "vip", "id": "1", "info": ""}]
        assert note["payload"]["subscription"]["type"] == "channel.chat.message"


async def test_twitchs_close_codes() -> None:
    async with TwitchDouble(unused_close_s=0.3, keepalive_timeout_seconds=0.2) as twitch:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(twitch.eventsub_url) as unused:
                await unused.receive_json(timeout=5)  # welcome
                while (message := await unused.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT:
                    pass  # keepalives
                assert unused.close_code == 4003  # nothing subscribed in time
            async with http.ws_connect(twitch.eventsub_url) as chatty:
                await chatty.receive_json(timeout=5)
                await chatty.send_str("hello?")
                while (message := await chatty.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT:
                    pass
                assert chatty.close_code == 4001  # the client sent inbound traffic
            bad = f"ws://127.0.0.1:{twitch.port}/ws/reconnect/nosuchsession"
            async with http.ws_connect(bad) as stray:
                message = await stray.receive(timeout=5)
                assert message.type == aiohttp.WSMsgType.CLOSE and stray.close_code == 4007


async def test_helix_and_oauth_refusals() -> None:
    async with TwitchDouble(chat_limit=1) as twitch, aiohttp.ClientSession() as http:
        assert (await _subscribe(http, twitch, "no-such-session")).status == 400
        async with http.ws_connect(twitch.eventsub_url) as ws:
            session_id = (await ws.receive_json(timeout=5))["payload"]["session"]["id"]
            assert (await _subscribe(http, twitch, session_id, token="stolen")).status == 401
        validate = f"{twitch.auth_url}/validate"
        ok = await http.get(validate, headers={"Authorization": f"OAuth {twitch.access_token}"})
        assert (await ok.json())["user_id"] == "400500600"
        twitch.expire_access_tokens()
        expired = await http.get(
            validate, headers={"Authorization": f"OAuth {twitch.access_token}"}
        )
        assert expired.status == 401
        form = {
            "grant_type": "refresh_token",
            "refresh_token": twitch.refresh_token,
            "client_id": twitch.client_id,
            "client_secret": twitch.client_secret,
        }
        refreshed = await (await http.post(f"{twitch.auth_url}/token", data=form)).json()
        reused = await http.post(f"{twitch.auth_url}/token", data=form)
        assert reused.status == 400  # a refresh token works once
        headers = {
            "Authorization": f"Bearer {refreshed['access_token']}",
            "Client-Id": twitch.client_id,
        }
        body = {
            "broadcaster_id": twitch.broadcaster_id,
            "sender_id": "400500600",
            "message": "hi",
        }
        chat_url = f"{twitch.api_url}/chat/messages"
        sent = await (await http.post(chat_url, headers=headers, json=body)).json()
        assert sent["data"][0]["is_sent"] is True
        over = await http.post(chat_url, headers=headers, json=body)
        assert over.status == 429 and (await over.json())["status"] == 429
