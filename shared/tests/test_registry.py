"""The one registry every backend family uses (`livestage.registry`)."""

from __future__ import annotations

from typing import ClassVar, Self

import pytest

from livestage.registry import BackendUnavailable, Registry, RegistryError, UnknownBackend


class Engine:
    name: ClassVar[str] = ""

    def __init__(self, speed: int) -> None:
        self.speed = speed

    @classmethod
    def from_settings(cls, speed: int) -> Self:
        return cls(speed)


class Fast(Engine):
    name = "fast"


class Slow(Engine):
    name = "slow"


class Rocket(Engine):
    """Needs fuel: without it (speed 0) it cannot be built."""

    name = "rocket"

    @classmethod
    def from_settings(cls, speed: int) -> Self:
        if not speed:
            raise BackendUnavailable("ENGINE_FUEL")
        return cls(speed)


def engines() -> Registry[Engine]:
    return Registry(
        "engine",
        setting="ENGINE",
        members=(Fast, Slow, Rocket),
        auto=lambda hurry: "fast" if hurry else "slow",
    )


def test_create_builds_the_named_member_from_settings() -> None:
    built = engines().create("slow", 3)
    assert type(built) is Slow and built.speed == 3


def test_unknown_name_names_the_setting_and_every_valid_choice() -> None:
    with pytest.raises(UnknownBackend) as caught:
        engines().get("turbo")
    message = str(caught.value)
    assert "ENGINE='turbo'" in message
    assert "['auto', 'fast', 'rocket', 'slow']" in message
    assert caught.value.known == ["auto", "fast", "rocket", "slow"]
    assert engines().choices() == caught.value.known


def test_auto_is_resolved_by_the_family_rule_and_other_choices_are_checked() -> None:
    registry = engines()
    assert registry.resolve("auto", True) == "fast"
    assert registry.resolve("auto", False) == "slow"
    assert registry.resolve("slow", True) == "slow"
    with pytest.raises(UnknownBackend):
        registry.resolve("turbo", True)


def test_without_an_auto_rule_auto_is_unknown() -> None:
    registry: Registry[Engine] = Registry("engine", setting="ENGINE", members=(Fast,))
    with pytest.raises(UnknownBackend) as caught:
        registry.resolve("auto")
    assert caught.value.known == ["fast"]


def test_two_members_of_one_name_are_refused() -> None:
    class AlsoFast(Engine):
        name = "fast"

    with pytest.raises(ValueError, match="two engines are named 'fast'"):
        Registry("engine", setting="ENGINE", members=(Fast, AlsoFast))


def test_a_list_choice_refuses_unknown_and_repeated_names() -> None:
    registry = engines()
    assert registry.check_unique(["slow", "fast"]) == ["slow", "fast"]
    with pytest.raises(UnknownBackend):
        registry.check_unique(["slow", "nope"])
    with pytest.raises(RegistryError, match="more than once"):
        registry.check_unique(["slow", "slow"])


def test_build_resolves_auto_from_the_arguments_from_settings_takes() -> None:
    registry = engines()
    assert type(registry.build("auto", 3)) is Fast
    assert type(registry.build("auto", 0)) is Slow
    built = registry.build("rocket", 9)
    assert type(built) is Rocket and built.speed == 9
    with pytest.raises(UnknownBackend):
        registry.build("turbo", 1)


def test_a_member_missing_what_it_needs_names_the_setting_the_need_and_the_choices() -> None:
    with pytest.raises(BackendUnavailable) as caught:
        engines().create("rocket", 0)
    assert str(caught.value) == (
        "ENGINE='rocket' needs ENGINE_FUEL: set it, or choose one of "
        "['auto', 'fast', 'rocket', 'slow']"
    )
    assert isinstance(caught.value, RegistryError)
    assert (caught.value.setting, caught.value.name, caught.value.needs) == (
        "ENGINE",
        "rocket",
        "ENGINE_FUEL",
    )
