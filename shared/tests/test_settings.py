"""How every settings class reads its variables (`settings_config`), and the helpers that build a
pure module's config from a settings object (`derive`, `default_of`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings

from livestage.settings import default_of, derive, settings_classes, settings_config


class DemoSettings(BaseSettings):
    model_config = settings_config("DEMO_")

    name: str = Field("default", description="A name.")
    level: int = Field(1, description="A level.")
    ratio: float = Field(0.5, description="A ratio.")


@dataclass(frozen=True)
class DemoConfig:
    level: int = default_of(DemoSettings, "level")
    ratio: float = default_of(DemoSettings, "ratio")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("DEMO_NAME", "DEMO_LEVEL", "DEMO_RATIO", "demo_level"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_variables_come_from_the_prefix_and_the_dot_env_file(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_env / ".env").write_text(
        "DEMO_NAME=from-the-file\nDEMO_RATIO=\nOTHER_SERVICE_SETTING=1\n", encoding="utf-8"
    )
    monkeypatch.setenv("demo_level", "3")  # names are not case-sensitive
    settings = DemoSettings()
    assert settings.name == "from-the-file"
    assert settings.level == 3
    assert settings.ratio == 0.5  # empty means "not set"; unknown variables are ignored


def test_the_dot_env_file_is_read_as_utf8(clean_env: Path) -> None:
    (clean_env / ".env").write_bytes("DEMO_NAME=Zoë\n".encode())
    assert DemoSettings().name == "Zoë"


def test_every_settings_class_uses_settings_config() -> None:
    for cls in settings_classes():
        prefix = str(cls.model_config.get("env_prefix"))
        expected = settings_config(prefix)
        config = {key: cls.model_config.get(key) for key in expected}
        assert config == expected, cls.__name__


def test_derive_takes_the_fields_of_the_same_names(clean_env: Path) -> None:
    assert derive(DemoConfig, DemoSettings(level=7, ratio=0.25)) == DemoConfig(7, 0.25)
    assert derive(DemoConfig, DemoSettings()) == DemoConfig()


def test_default_of_is_the_settings_default() -> None:
    assert DemoConfig() == DemoConfig(level=1, ratio=0.5)


def test_derive_names_the_fields_the_settings_lack() -> None:
    @dataclass
    class Wider:
        level: int
        speed: float

    with pytest.raises(TypeError, match="DemoSettings has no field speed that Wider needs"):
        derive(Wider, DemoSettings.model_construct())


def test_default_of_an_unknown_field_says_which() -> None:
    with pytest.raises(TypeError, match="DemoSettings has no field 'speed'"):
        default_of(DemoSettings, "speed")
