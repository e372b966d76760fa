"""`livestage.safety.TextSafety`: the content checks every service shares (chat's moderation
runs the same lists; its 89-row table is services/moderation/tests/test_table.py)."""

from __future__ import annotations

import pytest

from livestage.safety import REASONS, TextSafety
from livestage.settings import SafetySettings


@pytest.fixture(scope="module")
def safety() -> TextSafety:
    return TextSafety.from_settings(SafetySettings())


@pytest.mark.parametrize(
    "text",
    [
        "Welcome to the stream, everyone!",
        "I grew up near Scunthorpe.",
        "The assassin in that film was great.",
        "Cocktail hour in class, a grape juice for me.",
        "Essex has lovely beaches.",
        "Ça va très bien, merci.",
    ],
)
def test_clean_text_passes(safety: TextSafety, text: str) -> None:
    assert safety.check(text) is None


@pytest.mark.parametrize(
    ("text", "check"),
    [
        ("what the fuck", "blocklist"),
        ("you are a sh1t host", "blocklist"),
        ("f u c k this", "blocklist"),
        ("ѕhit happens", "blocklist"),  # Cyrillic s
        ("you idiot", "classifier"),
        ("z\u0336\u0337\u0338\u0335a\u0336\u0337\u0338\u0335lgo", "zalgo"),
    ],
)
def test_bad_text_is_refused_with_a_reason_that_does_not_repeat_it(
    safety: TextSafety, text: str, check: str
) -> None:
    verdict = safety.check(text)
    assert verdict is not None
    assert verdict.reason == REASONS[verdict.check]
    assert text not in verdict.reason
    if check != "blocklist":  # a word may sit in both lists; the order decides which names it
        assert verdict.check == check
    else:
        assert verdict.check in ("blocklist", "wordlist")


@pytest.mark.parametrize(
    ("text", "folded"),
    [("ΝΟVΑ", "nova"), ("ΗΟЅТ", "host"), ("Ｌｉｖｅｓｔａｇｅ", "livestage"), ("ЅНІТ", "shit")],
)
def test_capital_look_alikes_fold_before_case_folding(text: str, folded: str) -> None:
    """A capital Greek Nu is drawn as N; case-folded first it would read as a small nu (v)."""
    from livestage.safety.normalize import fold

    assert fold(text) == folded


def test_the_words_only_checks_keep_the_lists_and_drop_the_classifier(safety: TextSafety) -> None:
    words = safety.words_only()
    assert words.score is None and safety.score is not None
    assert safety.check("you idiot") is not None  # the classifier's call
    assert words.check("you idiot") is None
    verdict = words.check("what the fuck")
    assert verdict is not None and verdict.check in ("blocklist", "wordlist")
