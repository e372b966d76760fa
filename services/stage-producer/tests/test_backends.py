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

# (registry, its StageSettings field, what `from_settings` takes after the settings and Gemini)
FAMILIES: list[tuple[Registry[Any], str, tuple[Any, ...]]] = [
    (SEARCH_PROVIDERS, "search", (SOURCES,)),
    (TOPIC_PICKERS, "topic_picker", ()),
    (BACKDROPS, "backdrop", ()),
]
FAMILY_IDS = [field for _, field, _ in FAMILIES]


@pytest.mark.parametrize(("registry", "field", "extra"), FAMILIES, ids=FAMILY_IDS)
def test_every_name_builds_from_default_settings_or_says_it_needs_the_key(
    registry: Registry[Any], field: str, extra: tuple[Any, ...]
) -> None:
    settings = StageSettings()
    refused: list[str] = []
    for name in registry.names():
        try:
            built = registry.create(name, settings, OFFLINE, *extra)
        except BackendUnavailable as error:
            refused.append(name)
            assert str(error) == (
                f"{registry.setting}={name!r} needs GEMINI_API_KEY: set it, or choose one of "
                f"{registry.choices()}"
            )
            built = registry.create(name, settings, WITH_KEY, *extra)
        assert type(built) is registry.get(name) and built.name == name
    assert refused == ["gemini"]
    # the default choice builds without a key
    assert registry.build(getattr(settings, field), settings, OFFLINE, *extra) is not None


@pytest.mark.parametrize(("registry", "field", "extra"), FAMILIES, ids=FAMILY_IDS)
def test_the_settings_offer_exactly_the_registry_choices(
    registry: Registry[Any], field: str, extra: tuple[Any, ...]
) -> None:
    offered = typing.get_args(StageSettings.model_fields[field].annotation)
    assert sorted(offered) == registry.choices()
    assert registry.setting == "STAGE_" + field.upper()
    with pytest.raises(UnknownBackend) as caught:
        registry.build("telepathy", StageSettings(), OFFLINE, *extra)
    assert caught.value.known == registry.choices()


def test_auto_is_gemini_with_a_key_and_offline_without() -> None:
    settings = StageSettings()
    assert TOPIC_PICKERS.build("auto", settings, OFFLINE).name == "keywords"
    assert TOPIC_PICKERS.build("auto", settings, WITH_KEY).name == "gemini"
    assert BACKDROPS.build("auto", settings, OFFLINE).name == "procedural"
    assert BACKDROPS.build("auto", settings, WITH_KEY).name == "gemini"
    assert "auto" not in SEARCH_PROVIDERS.choices()
