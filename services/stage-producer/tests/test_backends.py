"""Every backend family of the stage producer (search providers, topic pickers, backdrop makers),
walked through its registry: each name builds from the default settings without GEMINI_API_KEY,
or is refused saying the setting, that it needs the key and the valid choices; with a key (a
client for a closed local port: building one sends nothing) every name builds; `auto` is
resolved by the family's rule; an unknown name is refused; the settings offer exactly the
registry's choices."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from pydantic import SecretStr

from livestage.registry import BackendUnavailable, Registry, UnknownBackend
from livestage.settings import GeminiSettings
from stage_producer.backdrops import BACKDROPS
from stage_producer.gemini import Gemini
from stage_producer.search import SEARCH_PROVIDERS, SourcesFile
from stage_producer.settings import DEFAULT_SOURCES_FILE, StageSettings
from stage_producer.topics import TOPIC_PICKERS

SOURCES = SourcesFile.load(DEFAULT_SOURCES_FILE)
OFFLINE = Gemini.from_settings(GeminiSettings(api_key=None))
WITH_KEY = Gemini.from_settings(
    GeminiSettings(api_key=SecretStr("test-key"), base_url="http://127.0.0.1:9")
)
# each registry, and the StageSettings field that chooses from it
FAMILIES: list[tuple[Registry[Any], str]] = [
    (SEARCH_PROVIDERS, "search"),
    (TOPIC_PICKERS, "topic_picker"),
    (BACKDROPS, "backdrop"),
]
family = pytest.mark.parametrize(("registry", "field"), FAMILIES, ids=[f for _, f in FAMILIES])


@family
def test_every_name_builds_from_default_settings_or_says_it_needs_the_key(
    registry: Registry[Any], field: str
) -> None:
    settings = StageSettings()
    refused: list[str] = []
    for name in registry.names():
        try:
            built = registry.create(name, settings, OFFLINE, SOURCES)
        except BackendUnavailable as error:
            refused.append(name)
            assert str(error) == (
                f"{registry.setting}={name!r} needs GEMINI_API_KEY: set it, or choose one of "
                f"{registry.choices()}"
            )
            built = registry.create(name, settings, WITH_KEY, SOURCES)
        assert type(built) is registry.get(name) and built.name == name
    assert refused == ["gemini"]
    default = registry.build(getattr(settings, field), settings, OFFLINE, SOURCES)
    assert default.name in registry


@family
def test_the_settings_offer_exactly_the_registry_choices(
    registry: Registry[Any], field: str
) -> None:
    offered = typing.get_args(StageSettings.model_fields[field].annotation)
    assert sorted(offered) == registry.choices()
    assert registry.setting == "STAGE_" + field.upper()
    with pytest.raises(UnknownBackend) as caught:
        registry.build("telepathy", StageSettings(), OFFLINE, SOURCES)
    assert caught.value.known == registry.choices()


def test_auto_is_gemini_with_a_key_and_offline_without() -> None:
    settings = StageSettings()
    for registry, offline in ((TOPIC_PICKERS, "keywords"), (BACKDROPS, "procedural")):
        assert registry.build("auto", settings, OFFLINE, SOURCES).name == offline
        assert registry.build("auto", settings, WITH_KEY, SOURCES).name == "gemini"
    assert "auto" not in SEARCH_PROVIDERS.choices()
