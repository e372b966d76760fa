"""Normalization and the word lists: examples, and properties over arbitrary input (hypothesis)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livestage.safety.matching import AllowList, WordList, WordListError
from livestage.safety.normalize import fold, normalize, read_word
from livestage.text import clean_text

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Words a message may hide: lower-case ASCII, no letter three times in a row (natural words).
words = st.text(alphabet="abcdefghijkmnoprstuvwxyz", min_size=3, max_size=12).filter(
    lambda w: not any(w[i] == w[i + 1] == w[i + 2] for i in range(len(w) - 2))
)


@pytest.mark.parametrize(
    ("typed", "reads"),
    [
        ("Hello World", "hello world"),
        ("5h1t", "shit"),
        ("@$$", "ass"),
        ("$hit", "shit"),
        ("sh!t", "shit"),
        ("wow!", "wow"),
        ("455", "455"),
        ("f.u.c.k", "fuck"),
        ("f u c k you", "fuck you"),
        ("f - u - c - k", "fuck"),
        ("ａｂｃ", "abc"),
        ("𝐛𝐨𝐥𝐝", "bold"),
        ("ⓒⓘⓡⓒⓛⓔ", "circle"),
        ("🇫🇱🇦🇬", "flag"),
        ("Ѕһеер", "sheep"),
        ("naïve café", "naive cafe"),
        ("STRASSE straße", "strasse strasse"),
        ("z̷̢̛̛a̸̡̛̛l̴̢̛g̷̢̛̛o̶", "zalgo"),
    ],
)
def test_examples(typed: str, reads: str) -> None:
    assert normalize(typed).text == reads


def test_every_plausible_reading_of_a_word_is_kept() -> None:
    (token,) = normalize("fuuuuck").tokens
    assert {"fuck", "fuuck"} <= token.forms
    (token,) = normalize("asssshoooole").tokens
    assert "asshole" in token.forms
    (token,) = normalize("ki11").tokens
    assert {"kiii", "kill"} <= token.forms  # `1` read as i and as l
    (token,) = normalize("f*ck").tokens
    assert "fuck" in token.forms and token.base == "fck"


def test_empty_and_visible() -> None:
    assert not normalize("\u3164").visible
    assert not normalize("\u0334\u0321").visible
    assert normalize("👍").visible and normalize("👍").tokens == ()
    assert normalize("?").visible


def test_fingerprint_ignores_case_and_punctuation() -> None:
    assert normalize("HELLO there!!").fingerprint == normalize("hello there").fingerprint
    assert normalize("👍").fingerprint == "👍"


@FAST
@given(st.text(max_size=500))
def test_any_text_normalizes_to_lowercase_words_with_bounded_forms(text: str) -> None:
    normalized = normalize(text)
    for sequence in normalized.sequences:
        for token in sequence:
            assert token.base and " " not in token.base
            assert token.base == token.base.lower()
            assert all(form and form == form.lower() and " " not in form for form in token.forms)
            assert len(token.forms) <= 200
    assert len(normalized.joined) <= len(normalized.tokens)


@FAST
@given(st.text(max_size=200))
def test_folding_is_idempotent(text: str) -> None:
    assert fold(fold(text)) == fold(text)


@FAST
@given(st.text(max_size=200).map(clean_text))
def test_reading_a_reading_changes_nothing(text: str) -> None:
    once = normalize(text).text
    assert normalize(once).text == once


@FAST
@given(words)
def test_a_word_spelled_out_is_read_as_the_word(word: str) -> None:
    for separator in (" ", ".", " . ", "-", "_"):
        spelled = separator.join(word)
        forms = set().union(*(token.forms for token in normalize(spelled).joined))
        assert word in forms, spelled


LEET = {"o": "0", "i": "1", "e": "3", "a": "4", "s": "5", "t": "7"}


@FAST
@given(words, st.data())
def test_a_word_in_leetspeak_is_read_as_the_word(word: str, data: st.DataObject) -> None:
    leetable = [index for index, char in enumerate(word) if char in LEET]
    chosen = data.draw(st.sets(st.sampled_from(leetable)) if leetable else st.just(set()))
    typed = "".join(LEET[char] if index in chosen else char for index, char in enumerate(word))
    if not any(char.isalpha() for char in typed):
        return  # all digits: read as a number on purpose ("455" points)
    (token,) = normalize(typed).tokens
    assert word in token.forms, typed


CYRILLIC = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у", "i": "і"}


@FAST
@given(words, st.booleans())
def test_look_alike_letters_are_read_as_latin(word: str, fullwidth: bool) -> None:
    if fullwidth:
        typed = "".join(chr(ord(char) - ord("a") + 0xFF41) for char in word)
    else:
        typed = "".join(CYRILLIC.get(char, char) for char in word)
    assert normalize(typed).text == word, typed


@FAST
@given(words, st.data())
def test_stretched_letters_are_read_as_the_word(word: str, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(word) - 1))
    times = data.draw(st.integers(3, 12))
    typed = word[:index] + word[index] * times + word[index + 1 :]
    (token,) = normalize(typed).tokens
    assert word in token.forms, typed


@FAST
@given(words)
def test_a_list_entry_matches_its_word_but_not_inside_another(word: str) -> None:
    exact = WordList([word])
    assert exact.matches(normalize(f"9 {word.upper()} 9"))
    assert not exact.matches(normalize(f"9 q{word}q 9"))
    assert WordList([f"*{word}*"]).matches(normalize(f"q{word}q"))
    assert WordList([f"{word}*"]).matches(normalize(f"{word}q"))
    assert not exact.matches(normalize(f"9 {word} 9"), AllowList([word]))


def test_phrases_match_words_in_a_row_even_through_the_allowlist() -> None:
    threats = WordList(["kill yourself", "suck my *"])
    allow = AllowList(["kill", "suck"])
    assert threats.matches(normalize("just k1ll y0urself"), allow)
    assert threats.matches(normalize("suck my sock"), allow)
    assert not threats.matches(normalize("kill the lights yourself"), allow)


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (["ok", "!!!"], "<list>:2"),
        (["*"], "lone '*'"),
    ],
)
def test_bad_list_entries_name_the_line(lines: list[str], problem: str) -> None:
    with pytest.raises(WordListError, match=problem):
        WordList(lines)


def test_bad_allowlist_entries_name_the_line() -> None:
    with pytest.raises(WordListError, match="<allowlist>:1: .*single words"):
        AllowList(["two words"])


def test_a_word_seen_before_is_read_from_the_cache_alike() -> None:
    """Chat repeats its words: each is read once and kept (a Token is immutable), and the kept
    reading is the one reading it afresh gives."""
    word = "sh1iiit-" + uuid.uuid4().hex[:6]
    first = normalize(f"{word} {word}")
    hits = read_word.cache_info().hits
    again = normalize(word)
    assert read_word.cache_info().hits > hits
    assert again.tokens == first.tokens[:1]
    assert read_word.__wrapped__(word) == again.tokens[0]
