"""The one registry every backend family uses (`livestage.registry`)."""

from __future__ import annotations

from typing import ClassVar, Self

import pytest

from livestage.registry import Registry, RegistryError, UnknownBackend


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


def engines() -> Registry[Engine]:
    return Registry(
        "engine",
        setting="ENGINE",
        members=(Fast, Slow),
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
    assert "['auto', 'fast', 'slow']" in message
    assert caught.value.known == ["auto", "fast", "slow"]


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
