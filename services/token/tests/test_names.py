"""The name table (issue #16 point 2): display names at POST /api/livekit-token, against a real
edge on real Redis and livekit-server.

Each row is a name and what the edge owes its sender: a token (`ok`), or a 422 on `displayName`
whose reason says why without repeating the name: `language` (the chat's offline content checks)
or `reserved` (it is, or has as a word, a host persona's name or a staff word, in any spelling).
Reserved words inside longer words are names, not impersonation ("Hostetler", "Hosting
Hannah"); see `livestage.display_names`.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livestage.display_names import RESERVED_NAMES, Impersonation
from token_service.names import NameCheck, text_safety
from token_service.settings import EdgeSettings

from .conftest import EdgeFactory

Owed = Literal["ok", "language", "reserved"]

ZALGO = "z̷̢̛̛a̸̡̛̛l̴̢̛g̷̢̛̛o̶"

NAMES: dict[str, Owed] = {
    # --- language: the chat's word lists and classifier, in folded spellings ------------------
    "Fuck Off": "language",
    "sh1t lord": "language",
    "$h!t happens": "language",
    "B1tch": "language",
    "n1gg3r": "language",
    "ｆｕｃｋ": "language",
    "ⓕⓤⓒⓚ": "language",
    "fυck": "language",  # Greek upsilon
    "ѕһit": "language",  # Cyrillic
    "f.u.c.k": "language",
    "f u c k": "language",
    "kill yourself": "language",
    ZALGO: "language",
    # --- reserved: the host's persona names --------------------------------------------------
    "Nova": "reserved",
    "n0va": "reserved",
    "N o v a": "reserved",
    "ＮＯＶＡ": "reserved",
    "Nοva": "reserved",  # Greek omicron
    "ΝΟVΑ": "reserved",  # Greek capitals Nu, Omicron, Alpha
    "Νονα": "reserved",  # all Greek: a capital Nu, then small omicron, nu, alpha
    "TheRealNova": "reserved",
    "Nova_Official": "reserved",
    "Nova2024": "reserved",
    "Nova Scotia": "reserved",  # a word of the name, whatever comes with it
    "Sage": "reserved",
    "S4ge": "reserved",
    # --- reserved: staff words ---------------------------------------------------------------
    "Adm1n": "reserved",
    "@dmin": "reserved",
    "AdMiN": "reserved",
    "Аdmin": "reserved",  # Cyrillic A
    "A.d.m.i.n": "reserved",
    "Admin123": "reserved",
    "Administrator": "reserved",
    "h0st": "reserved",
    "Hos7": "reserved",
    "ΗΟЅТ": "reserved",  # Greek Eta and Omicron, Cyrillic Dze and Te
    "The Host": "reserved",
    "Moderator Mia": "reserved",
    "m0d": "reserved",
    "ⓂⓄⒹ": "reserved",
    "Mod Squad": "reserved",
    "0perator": "reserved",
    "Staff": "reserved",
    "System": "reserved",
    "Official Bob": "reserved",
    "Ｌｉｖｅｓｔａｇｅ": "reserved",
    "L1v3st4g3": "reserved",
    "Livestage Team": "reserved",
    # --- ok: names that only look close ------------------------------------------------------
    "Ada Lovelace": "ok",
    "Scunthorpe": "ok",
    "Ｓｃｕｎｔｈｏｒｐｅ": "ok",
    "Cassandra": "ok",
    "Penistone": "ok",
    "Hostetler": "ok",
    "Hosting Hannah": "ok",
    "Ghostwriter": "ok",
    "Modesto": "ok",
    "Moderna": "ok",
    "Systematic Sam": "ok",
    "Stafford": "ok",
    "Novak": "ok",
    "Casanova": "ok",
    "Sagebrush": "ok",
    "Zoë": "ok",
    "Дмитрий": "ok",
    "李雷": "ok",
    "<img src=x onerror=alert(1)>": "ok",  # text, not markup: the page renders it as text
}

REASONS = {
    "language": "please pick another name",
    "reserved": "reserved for the host and the show's staff; please pick another name",
}


@pytest.fixture(scope="module")
def names() -> NameCheck:
    return NameCheck.build(EdgeSettings().reserved_names)


@pytest.mark.parametrize("name", list(NAMES))
def test_the_name_check_decides_each_row(names: NameCheck, name: str) -> None:
    problem = names.check(name)
    owed = NAMES[name]
    if owed == "ok":
        assert problem is None
        return
    assert problem is not None
    kind = "reserved" if problem.check == "impersonation" else "language"
    assert kind == owed, problem


async def test_the_token_route_refuses_each_row_with_a_reason_beside_the_name(
    make_edge: EdgeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    edge = await make_edge(rate_token_per_ip="1000/minute", rate_token_per_visitor="1000/minute")
    answers: dict[str, tuple[int, str]] = {}
    caplog.set_level(logging.INFO, logger="token_service")
    for name in NAMES:
        response = await edge.client.post(
            "/api/livekit-token", json={"displayName": name, "avatar": "fox"}
        )
        answers[name] = (response.status_code, response.text)

    mismatches = []
    for name, owed in NAMES.items():
        status, text = answers[name]
        if owed == "ok":
            if status != 200:
                mismatches.append((name, owed, status, text))
            continue
        if status != 422:
            mismatches.append((name, owed, status, text))
            continue
        (item,) = json.loads(text)["detail"]
        expected_type = "name_reserved" if owed == "reserved" else "name_not_allowed"
        if (
            item["loc"] != ["body", "displayName"]
            or item["type"] != expected_type
            or REASONS[owed] not in item["msg"]
        ):
            mismatches.append((name, owed, status, text))
    assert mismatches == []

    # The answer and the log give the reason, never the name (nor an escaped copy of it).
    for name, owed in NAMES.items():
        if owed == "ok":
            continue
        status, text = answers[name]
        (item,) = json.loads(text)["detail"]
        # a reserved word is quoted (our word: "Nova" looks like “Nova”); nothing else of theirs
        reason = re.sub(r"“[^”]*”", "", item["msg"])
        assert name not in reason and json.dumps(name)[1:-1] not in reason, text
        assert all(name not in record.getMessage() for record in caplog.records)
    refused = [r.getMessage() for r in caplog.records if "display name refused" in r.getMessage()]
    assert len(refused) == sum(owed != "ok" for owed in NAMES.values())


async def test_a_refused_name_gets_no_token_and_a_fixed_one_does(make_edge: EdgeFactory) -> None:
    edge = await make_edge()
    refused = await edge.client.post(
        "/api/livekit-token", json={"displayName": "Adm1n", "avatar": "fox"}
    )
    assert refused.status_code == 422
    assert "token" not in refused.json()
    (item,) = refused.json()["detail"]
    assert "“admin”" in item["msg"]  # which reserved word it looks like (our word, not theirs)
    assert (await edge.token("Ada"))["identity"].startswith("viewer_")


async def test_an_operator_reserves_their_own_persona_s_name(make_edge: EdgeFactory) -> None:
    edge = await make_edge(reserved_names=["Captain Max", "admin"])
    for name in ("Captain Max", "CaptainMax", "c4pt4in m4x", "adm1n"):
        response = await edge.client.post(
            "/api/livekit-token", json={"displayName": name, "avatar": "fox"}
        )
        assert response.status_code == 422, name
    assert (await edge.token("Nova"))["identity"]  # not in this operator's list
    assert (await edge.token("Max"))["identity"]  # one word of a two-word name is not it


def test_the_content_checker_is_loaded_once_per_process() -> None:
    assert text_safety() is text_safety()
    assert NameCheck.build(["x"])._safety is NameCheck.build(["y"])._safety
    assert Impersonation(["x"]).match("x") == "x"


IMPERSONATION = Impersonation()


@given(st.text(max_size=64))
def test_any_name_is_read_without_error_and_answers_a_reserved_name_or_none(name: str) -> None:
    assert IMPERSONATION.match(name) in (*RESERVED_NAMES, None)


@given(
    st.lists(st.from_regex(r"[A-Za-z]{1,12}", fullmatch=True), max_size=3),
    st.sampled_from(RESERVED_NAMES),
    st.integers(min_value=0, max_value=3),
    st.sampled_from([" ", "_", "-", ". "]),
)
def test_a_reserved_name_as_a_word_is_found_in_any_company(
    words: list[str], reserved: str, position: int, separator: str
) -> None:
    words.insert(min(position, len(words)), reserved)
    assert IMPERSONATION.match(separator.join(words)) is not None
