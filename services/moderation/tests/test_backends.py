"""Every backend family of the moderation service, walked through its registry: each name builds
from the default settings (no keys) into a working member, and a name no member has is refused
with the setting and every valid name."""

from __future__ import annotations

import pytest

from livestage.safety.normalize import normalize
from moderation.checks import CHECKS, UnknownBackend
from moderation.checks.base import Context
from moderation.settings import ModerationSettings
from services.moderation.tests.helpers import chat


def test_every_check_builds_from_default_settings_and_passes_a_friendly_message() -> None:
    settings = ModerationSettings()
    message = chat("room", "hello everyone, what a lovely stream")
    context = Context(normalize(message.body))
    for name in CHECKS.names():
        check = CHECKS.create(name, settings)
        assert type(check) is CHECKS.get(name) and check.name == name
        assert check.check(message, context) is None, name
    with pytest.raises(UnknownBackend) as caught:
        CHECKS.create("profanity", settings)
    assert caught.value.setting == "MODERATION_CHECKS"
    assert caught.value.known == CHECKS.names()
