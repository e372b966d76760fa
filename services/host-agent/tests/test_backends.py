"""The host's three backend families (`VOICES`, `AVATARS`, `TTS_ENGINES`), walked member by
member: each builds from default settings with no keys, or refuses with its family's clear error
saying which setting it needs; an unknown name lists every valid one; `auto` follows its rule."""

from __future__ import annotations

import re

import pytest

from host_agent.avatars import AVATARS, AvatarBackend, auto_avatar
from host_agent.config import JobConfig
from host_agent.errors import BackendUnavailable
from host_agent.persona import Persona, load_persona
from host_agent.settings import DEFAULT_PERSONA, HostSettings
from host_agent.switcher import create_backend
from host_agent.tts import TTS_ENGINES, TTSUnavailable
from host_agent.voices import VOICES, VoiceBackend, auto_voice
from livestage.registry import UnknownBackend
from livestage.settings import AnamSettings, OpenAISettings

NAMES_A_SETTING = re.compile(r"\b[A-Z]+_[A-Z_]+\b")
"""A refusal names what to set (`OPENAI_API_KEY`, `HOST_PIPER_MODEL`, ...)."""


def no_keys() -> JobConfig:
    return JobConfig(openai=OpenAISettings(api_key=None), anam=AnamSettings(api_key=None))


def persona() -> Persona:
    return load_persona(DEFAULT_PERSONA)


@pytest.mark.parametrize("name", VOICES.names())
async def test_every_voice_builds_from_default_settings_or_says_what_it_needs(name: str) -> None:
    voice = VOICES.create(name, no_keys(), persona())
    assert isinstance(voice, VoiceBackend) and voice.name == name
    try:
        parts = voice.session_parts()
    except BackendUnavailable as error:
        assert voice.production, "only a paid voice may need a key"
        assert NAMES_A_SETTING.search(str(error)), str(error)
    else:
        assert parts.llm is not None
    finally:
        await voice.aclose()


@pytest.mark.parametrize("name", AVATARS.names())
async def test_every_avatar_builds_from_default_settings_or_says_what_it_needs(name: str) -> None:
    try:
        avatar = AVATARS.create(name, no_keys(), persona())
    except BackendUnavailable as error:
        assert AVATARS.get(name).production, "only a paid avatar may need a key"
        assert NAMES_A_SETTING.search(str(error)), str(error)
        return
    assert isinstance(avatar, AvatarBackend) and avatar.name == name
    assert avatar.avatar_identity is None or avatar.avatar_identity.endswith("avatar-host")


@pytest.mark.parametrize("name", TTS_ENGINES.names())
async def test_every_tts_engine_builds_from_default_settings_or_says_what_it_needs(
    name: str,
) -> None:
    try:
        speech = TTS_ENGINES.create(name, HostSettings(tts=name))
    except TTSUnavailable as error:
        assert NAMES_A_SETTING.search(str(error)), str(error)
        return
    try:
        assert speech.sample_rate > 0
    finally:
        await speech.aclose()


@pytest.mark.parametrize("family", [VOICES, AVATARS, TTS_ENGINES], ids=lambda f: f.setting)
def test_an_unknown_name_is_refused_with_every_valid_name(family) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnknownBackend) as refused:
        family.get("no-such-backend")
    assert family.setting in str(refused.value)
    assert set(family.names()) <= set(refused.value.known)


def test_auto_voice_is_openai_realtime_with_a_key_else_local() -> None:
    assert VOICES.resolve("auto", openai_key=True) == "openai-realtime"
    assert VOICES.resolve("auto", openai_key=False) == "local"
    assert auto_voice(openai_key=True, available={"local"}) == "local"  # not installed


def test_auto_avatar_is_anam_with_a_key_else_local_else_none() -> None:
    assert AVATARS.resolve("auto", anam_key=True) == "anam"
    assert AVATARS.resolve("auto", anam_key=False) == "local"
    assert auto_avatar(anam_key=True, available={"none", "local"}) == "local"
    assert auto_avatar(anam_key=False, available={"none"}) == "none"


@pytest.mark.parametrize("family", [VOICES, AVATARS], ids=lambda f: f.setting)
def test_the_job_takes_an_unknown_name_for_a_backend_that_cannot_start(family) -> None:  # type: ignore[no-untyped-def]
    # it falls back to the local backend then, as for a missing key
    with pytest.raises(BackendUnavailable, match=f"{family.setting}='no-such-backend'"):
        create_backend(family, "no-such-backend", no_keys(), persona())
