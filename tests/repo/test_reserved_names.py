"""The names viewers may not take keep up with the host's personas.

The edge cannot import the host agent (and its image does not hold the persona files), so the
persona names are listed in `livestage.display_names`; this test reads every persona file the
host agent ships and fails when one is added, renamed or removed without the list.
"""

from __future__ import annotations

from host_agent.persona import SUFFIXES, load_persona
from host_agent.settings import PERSONAS_DIR
from livestage.display_names import HOST_PERSONA_NAMES, RESERVED_NAMES, Impersonation
from token_service.settings import EdgeSettings


def test_every_shipped_persona_name_is_reserved_and_only_those() -> None:
    files = sorted(path for path in PERSONAS_DIR.iterdir() if path.suffix in SUFFIXES)
    assert files, f"no persona files in {PERSONAS_DIR}"
    shipped = {load_persona(path).name for path in files}
    assert shipped == set(HOST_PERSONA_NAMES)


def test_the_edge_reserves_the_personas_and_staff_words_by_default() -> None:
    assert EdgeSettings().reserved_names == list(RESERVED_NAMES)
    impersonation = Impersonation(EdgeSettings().reserved_names)
    for name in RESERVED_NAMES:
        assert impersonation.match(name) == name
        assert impersonation.match(f"the real {name.upper()}") == name
