"""The host's persona: who it is, how it sounds, what every model is told. Read from a file.

A persona file is YAML (`.yaml`/`.yml`) or TOML (`.toml`) with these keys:

    name: Nova                  # 1-32 characters, shown in chat as the host's name
    voice_style: warm, upbeat   # handed to voice backends that take a style
    instructions: |             # the system prompt of every model backend
      You are Nova, ...
    greeting: Hey, welcome in! I'm {name}.   # optional; said when the first viewer arrives
    openers: [Oh, nice one, ...]             # optional; the house brain's phrases
    sign_offs: [Keep them coming., ...]      # optional

`load_persona(path)` validates it and says which key is wrong; `find_persona(dir, name)` finds
`<name>.yaml|.yml|.toml` for the `persona` control command, refusing names that are not plain
file stems (no path tricks).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from livestage.text import is_clean

PERSONA_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
SUFFIXES = (".yaml", ".yml", ".toml")


class PersonaError(ValueError):
    """A persona file that cannot be used; the message names the file and the problem."""


class Persona(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=32)
    voice_style: str = Field("", max_length=300)
    instructions: str = Field(min_length=1, max_length=8000)
    greeting: str = Field("", max_length=500)
    openers: tuple[str, ...] = Field((), max_length=50)
    sign_offs: tuple[str, ...] = Field((), max_length=50)

    @field_validator("name")
    @classmethod
    def _clean_name(cls, value: str) -> str:
        if not is_clean(value):
            raise ValueError("must be plain text without control characters or extra spaces")
        return value

    def greeting_text(self) -> str:
        return self.greeting.replace("{name}", self.name).strip()


def load_persona(path: Path) -> Persona:
    """Read and validate a persona file; PersonaError says what is wrong and where."""
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PersonaError(f"cannot read persona file {path}: {error.strerror or error}") from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(raw)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(raw)
        else:
            raise PersonaError(f"persona file {path} must end in .yaml, .yml or .toml")
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as error:
        raise PersonaError(f"persona file {path} is not valid {path.suffix[1:]}: {error}") from None
    if not isinstance(data, dict):
        raise PersonaError(f"persona file {path} must hold a mapping of keys (name, ...)")
    try:
        return Persona.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or '(file)'}: {e['msg']}"
            for e in error.errors(include_url=False)
        )
        raise PersonaError(f"persona file {path}: {problems}") from None


def find_persona(directory: Path, name: str) -> Path:
    """The persona file called `name` in `directory`; PersonaError when there is none."""
    stem = name.strip().lower()
    if not PERSONA_NAME.fullmatch(stem):
        raise PersonaError(f"persona name {name!r} must be 1-64 of A-Z a-z 0-9 _ -")
    for suffix in SUFFIXES:
        candidate = directory / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    available = sorted(p.stem for p in directory.glob("*") if p.suffix in SUFFIXES)
    raise PersonaError(f"no persona {stem!r} in {directory} (available: {', '.join(available)})")
