"""One convention for every family of interchangeable parts (backends, providers, checks).

A family is a base class (an ABC) in the family's `base.py`; each implementation is a subclass
in a file beside it with a `name: ClassVar[str]` and a `from_settings(...)` classmethod (the
moderation checks were first to read this way). The family's `__init__.py` lists its members in
one `Registry`, which is the only place a setting's value is turned into a class:

    VOICES = Registry("voice", setting="HOST_VOICE", members=(LocalVoice, OpenAIRealtimeVoice))
    voice = VOICES.create(name, config, persona)   # VOICES.get(name).from_settings(config, persona)

A name no member has raises `UnknownBackend`, which says the family, the setting, the name given
and every valid name. `auto`, where a family offers it, is resolved by the family's own
`resolve(choice, ...)` in one place, never at the call sites; `build(choice, ...)` does both
steps for a family whose `auto` rule reads the arguments `from_settings` takes. A member that
these settings cannot build (a key missing) raises `BackendUnavailable` from `from_settings`
saying what it needs; `create` adds the setting and its value to the message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar, Generic, Protocol, TypeVar, cast


class Named(Protocol):
    """What a registry member provides: its name in the setting, and a constructor from it."""

    name: ClassVar[str]

    @classmethod
    def from_settings(cls, *args: Any, **kwargs: Any) -> Any: ...


M = TypeVar("M", bound=Named)


class RegistryError(ValueError):
    """A setting's value does not fit its family: an unknown name, or one listed twice."""


class UnknownBackend(RegistryError):
    """A setting names a member its family does not have."""

    def __init__(self, family: str, setting: str, name: str, known: Iterable[str]) -> None:
        self.family = family
        self.setting = setting
        self.name = name
        self.known = sorted(known)
        super().__init__(
            f"{setting}={name!r}: no {family} by that name; choose one of {self.known}"
        )


class BackendUnavailable(RegistryError):
    """A member cannot be built from these settings: something it needs (a key) is missing.

    A member's `from_settings` raises it with what is missing (`BackendUnavailable("X_API_KEY")`);
    `Registry.create` raises it again with the setting, the value given and every valid name.
    """

    def __init__(
        self, needs: str, *, setting: str = "", name: str = "", known: Iterable[str] = ()
    ) -> None:
        self.needs = needs
        self.setting = setting
        self.name = name
        self.known = sorted(known)
        if setting:
            message = f"{setting}={name!r} needs {needs}: set it, or choose one of {self.known}"
        else:
            message = f"needs {needs}"
        super().__init__(message)


class Registry(Generic[M]):
    """The members of one family by name, and the one way to build them.

    `auto` (optional) picks a member's name for the choice "auto" from whatever the caller
    passes to `resolve` (keys present, what is installed); without it "auto" is unknown.
    """

    def __init__(
        self,
        family: str,
        *,
        setting: str,
        members: Iterable[type[M]] = (),
        auto: Callable[..., str] | None = None,
    ) -> None:
        self.family = family
        self.setting = setting
        self._members: dict[str, type[M]] = {}
        self._auto = auto
        for member in members:
            self.register(member)

    def register(self, member: type[M]) -> type[M]:
        """Add a member (usable as a class decorator); a second member of one name is a bug."""
        name = member.name
        if not name or name == "auto":
            raise ValueError(
                f"{self.family} {member.__qualname__} needs a name other than {name!r}"
            )
        if name in self._members and self._members[name] is not member:
            raise ValueError(f"two {self.family}s are named {name!r}")
        self._members[name] = member
        return member

    def names(self) -> list[str]:
        return sorted(self._members)

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def __iter__(self) -> Iterator[type[M]]:
        return iter(self._members.values())

    def __len__(self) -> int:
        return len(self._members)

    def get(self, name: str) -> type[M]:
        try:
            return self._members[name]
        except KeyError:
            raise UnknownBackend(self.family, self.setting, name, self.choices()) from None

    def choices(self) -> list[str]:
        """Every value the setting may take: the names, and `auto` when the family has a rule."""
        return sorted([*self._members, *(["auto"] if self._auto else [])])

    def resolve(self, choice: str, *args: Any, **kwargs: Any) -> str:
        """The member name for a setting's value: `auto` through the family's rule, else checked."""
        if choice == "auto" and self._auto is not None:
            choice = self._auto(*args, **kwargs)
        self.get(choice)
        return choice

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """`get(name).from_settings(*args, **kwargs)`."""
        member = self.get(name)
        try:
            return member.from_settings(*args, **kwargs)
        except BackendUnavailable as error:
            raise BackendUnavailable(
                error.needs, setting=self.setting, name=name, known=self.choices()
            ) from None

    def build(self, choice: str, *args: Any, **kwargs: Any) -> M:
        """The member a setting's value chooses, built: `auto` through the family's rule (given
        the same arguments as `from_settings`), then `create`."""
        return cast(M, self.create(self.resolve(choice, *args, **kwargs), *args, **kwargs))

    def check_unique(self, names: Iterable[str]) -> list[str]:
        """Names for a family chosen as a list (e.g. checks): each known, none twice."""
        chosen = list(names)
        for name in chosen:
            self.get(name)
        twice = sorted({name for name in chosen if chosen.count(name) > 1})
        if twice:
            raise RegistryError(f"{self.setting} lists {twice} more than once")
        return chosen
