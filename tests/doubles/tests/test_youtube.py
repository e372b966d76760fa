"""The YouTube Data API double speaks the API's shapes (paging, errors, auth) to a plain client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.doubles.youtube import YouTubeDouble

KEY = {"X-Goog-Api-Key": "test-youtube-key"}


@pytest.fixture
async def youtube() -> AsyncIterator[YouTubeDouble]:
    async with YouTubeDouble(page_size=2, polling_interval_ms=1234) as double:
        yield double


async def test_pages_chain_by_token_and_ask_to_wait_only_when_caught_up(
    youtube: YouTubeDouble,
) -> None:
    chat_id = youtube.go_live("video1")
    for n in range(3):
        youtube.post("video1", f"message {n}")
    params = {"liveChatId": chat_id, "part": "snippet,authorDetails"}
    async with httpx.AsyncClient(base_url=youtube.base_url + "/", headers=KEY) as client:
        first = (await client.get("liveChat/messages", params=params)).json()
        params["pageToken"] = first["nextPageToken"]
        caught_up = (await client.get("liveChat/messages", params=params)).json()
        video = await client.get("videos", params={"part": "liveStreamingDetails", "id": "video1"})
    # without a token: only the newest page ("recent messages"), and nothing more waiting
    assert [i["snippet"]["displayMessage"] for i in first["items"]] == ["message 1", "message 2"]
    assert first["kind"] == "youtube#liveChatMessageListResponse"
    assert first["pollingIntervalMillis"] == 1234 and caught_up["items"] == []
    item = first["items"][0]
    assert set(item) == {"kind", "etag", "id", "snippet", "authorDetails"}
    assert item["snippet"]["textMessageDetails"] == {"messageText": "message 1"}
    assert video.json()["items"][0]["liveStreamingDetails"]["activeLiveChatId"] == chat_id
    assert youtube.units_used == 5 + 5 + 1


async def test_errors_come_in_googles_shape(youtube: YouTubeDouble) -> None:
    chat_id = youtube.go_live("video1")
    params = {"liveChatId": chat_id, "part": "snippet,authorDetails"}
    youtube.refuse("quotaExceeded")
    async with httpx.AsyncClient(base_url=youtube.base_url + "/") as client:
        quota = await client.get("liveChat/messages", params=params, headers=KEY)
        wrong_key = await client.get("liveChat/messages", params={**params, "key": "nope"})
        no_login = await client.post("liveChat/messages", params={"part": "snippet"}, json={})
        both_filters = await client.get(
            "liveBroadcasts",
            params={"part": "snippet", "broadcastStatus": "active", "mine": "true"},
            headers={"Authorization": "Bearer unknown"},
        )
    assert quota.status_code == 403
    error = quota.json()["error"]
    assert error["code"] == 403 and error["errors"][0]["reason"] == "quotaExceeded"
    assert error["errors"][0]["domain"] == "youtube.quota"
    assert wrong_key.status_code == 400
    assert wrong_key.json()["error"]["message"].startswith("API key not valid")
    assert no_login.status_code == 401
    assert both_filters.status_code == 401  # an unknown bearer is refused before anything else


async def test_oauth_refresh_and_insert(youtube: YouTubeDouble) -> None:
    chat_id = youtube.go_live("video1", channel_id="UCowner")
    youtube.add_oauth(channel_id="UCowner")
    form = {"client_id": "client-1", "client_secret": "secret-1", "refresh_token": "refresh-1",
            "grant_type": "refresh_token"}  # fmt: skip
    async with httpx.AsyncClient() as client:
        refused = await client.post(youtube.token_url, data={**form, "refresh_token": "bad"})
        token = (await client.post(youtube.token_url, data=form)).json()
        body = {"snippet": {"liveChatId": chat_id, "type": "textMessageEvent",
                            "textMessageDetails": {"messageText": "hi chat"}}}  # fmt: skip
        posted = await client.post(
            f"{youtube.base_url}/liveChat/messages",
            params={"part": "snippet"},
            json=body,
            headers={"Authorization": f"Bearer {token['access_token']}"},
        )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert token["token_type"] == "Bearer" and token["expires_in"] > 0
    assert posted.status_code == 200
    assert posted.json()["authorDetails"]["isChatOwner"] is True
    assert youtube.inserted == [posted.json()] and youtube.units_used == 50
