"""The `anam` avatar: `livekit-plugins-anam`'s `AvatarSession`, bounded so it cannot hang a job.

Persona name, avatar id and model come from `AnamSettings` (`ANAM_PERSONA_NAME`,
`ANAM_AVATAR_ID`, `ANAM_AVATAR_MODEL`, default `cara-4-latest`), the API from `ANAM_API_URL`
and `ANAM_API_KEY`. The avatar joins as `anam-avatar-host` (`livestage.identity`), the identity
the edge and the pages look for, with the LiveKit URL and keys of `LiveKitSettings` (Anam's
servers join that URL, so it must be reachable from the internet: LiveKit Cloud, or your own
server behind a public address).

`start` is bounded twice, because the plugin is not:

- the session API call (`POST /v1/engine/session`) under `HOST_REMOTE_AVATAR_START_TIMEOUT_S`
  (the plugin sets only a connect timeout, so a hung API would hold `start` forever), with the
  host's short `APIConnectOptions` for its retries (a 5xx is retried, a 401 is not);
- the avatar joining and publishing its video under `HOST_REMOTE_AVATAR_JOIN_TIMEOUT_S` (the
  plugin's own `wait_for_join`): an avatar that never shows video would otherwise hold every
  speech back forever, since the agent's audio waits for that video.

Each failure raises `BackendUnavailable` with its reason (`http_...`, `timeout`, `no_video`), after
taking whatever joined out of the room, and the job carries on with the local avatar.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Self

from livekit import rtc
from livekit.agents import AgentSession
from livekit.plugins import anam

from host_agent.avatars.base import AvatarBackend
from host_agent.avatars.output import route_audio
from host_agent.config import JobConfig
from host_agent.errors import BackendUnavailable
from host_agent.failures import failure_reason
from host_agent.persona import Persona
from host_agent.usage import ANAM
from livestage.identity import ANAM_AVATAR_IDENTITY

log = logging.getLogger(__name__)


class AnamAvatar(AvatarBackend):
    name = "anam"
    production = True
    usage_backend = ANAM

    def __init__(self, config: JobConfig, persona: Persona) -> None:
        settings = config.anam
        if settings.api_key is None:
            raise BackendUnavailable("ANAM_API_KEY is not set")
        if not settings.avatar_id:
            raise BackendUnavailable("ANAM_AVATAR_ID is not set (the Anam avatar to show)")
        self.config = config
        self.session = anam.AvatarSession(
            persona_config=anam.PersonaConfig(
                name=settings.persona_name,
                avatarId=settings.avatar_id,
                avatarModel=settings.avatar_model,
            ),
            api_url=settings.api_url,
            api_key=settings.api_key.get_secret_value(),
            avatar_participant_identity=ANAM_AVATAR_IDENTITY,
            avatar_participant_name=persona.name,
            conn_options=config.connect_options,
        )

    @classmethod
    def from_settings(cls, config: JobConfig, persona: Persona) -> Self:
        return cls(config, persona)

    @property
    def avatar_identity(self) -> str:
        return ANAM_AVATAR_IDENTITY

    async def start(self, agent_session: AgentSession[Any], room: rtc.Room) -> None:
        host, livekit = self.config.host, self.config.livekit
        try:
            try:
                async with asyncio.timeout(host.remote_avatar_start_timeout_s):
                    await self.session.start(
                        agent_session,
                        room,
                        livekit_url=livekit.url,
                        livekit_api_key=livekit.api_key,
                        livekit_api_secret=livekit.api_secret.get_secret_value(),
                    )
            except TimeoutError:
                raise BackendUnavailable(
                    f"Anam's session API did not answer within "
                    f"{host.remote_avatar_start_timeout_s:.1f} s",
                    reason="timeout",
                ) from None
            except BackendUnavailable:
                raise
            except Exception as error:
                raise BackendUnavailable(
                    f"Anam refused the session: {error}", reason=failure_reason(error)
                ) from error
            # the plugin's own audio output keeps playback reports per process, not per room
            route_audio(agent_session, room, ANAM_AVATAR_IDENTITY)
            try:
                await self.session.wait_for_join(timeout=host.remote_avatar_join_timeout_s)
            except TimeoutError:
                raise BackendUnavailable(
                    f"the Anam avatar did not join and publish video within "
                    f"{host.remote_avatar_join_timeout_s:.1f} s",
                    reason="no_video",
                ) from None
        except BaseException:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self.session.aclose()  # takes a half-started avatar out of the room
            raise
        log.info(
            "Anam avatar %s is in room %s (session %s)",
            ANAM_AVATAR_IDENTITY,
            room.name,
            self.session.session_id,
        )

    async def aclose(self) -> None:
        await self.session.aclose()
