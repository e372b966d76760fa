"""The base of every voice backend: what the host speaks with.

A voice backend gives the job the model parts of its `AgentSession` (`llm=` and, for
pipelines, `tts=`), and carries out turns: `start_turn` asks the model for one turn described by
a `Prompt` (with the brain's `TurnPlan` attached for backends that read it directly, like the
house brain), and `say` speaks words verbatim. Both return the session's `SpeechHandle`.

What reaches the model (`host_agent.prompt`): the Agent's instructions are the persona and the
data rules (`prompt.system_prompt`); a turn is a *user* message holding the data block (viewer
names and messages, the screen's texts, what the host said: JSON strings between delimiters
they cannot spell) and per-turn instructions of fixed text. The plan rides in the message's
`extra`, which the plugins never send to a model. `tests/test_injection.py` proves it for every
backend against what the model endpoint received.

Backends are files beside this one (`local.py`, `openai_realtime.py`, `pipeline.py`)
registered in `host_agent.voices.VOICES` under the name `HOST_VOICE` selects. A backend that
cannot start raises `BackendUnavailable` with the reason, so the job can fall back to the local
one; a `production` backend's failures later on (the session's unrecoverable `error` events)
make the job rebuild its session on the local voice. `usage_backend` tells the job which
usage entries of the session (`session_usage_updated`) are paid usage, and under which name
they are counted.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from livekit.agents import AgentSession, llm, tts
from livekit.agents.metrics.usage import ModelUsage
from livekit.agents.voice import SpeechHandle

from host_agent.brain import TurnPlan
from host_agent.config import JobConfig
from host_agent.persona import Persona
from host_agent.prompt import Prompt

PLAN_KEY = "livestage.turn_plan"
"""Key of the `TurnPlan` in the extra of each turn's user message."""


@dataclass
class SessionParts:
    """What the backend contributes to `AgentSession(...)`."""

    llm: llm.LLM | llm.RealtimeModel
    tts: tts.TTS | None = None
    options: dict[str, Any] = field(default_factory=dict)
    """Further AgentSession keyword arguments (e.g. use_tts_aligned_transcript=True)."""


class VoiceBackend(ABC):
    name: ClassVar[str]
    production: ClassVar[bool] = False
    """A production backend: its failures fall back to `local`, its usage is counted."""
    speech_backend: ClassVar[str | None] = None
    """Usage name under which the seconds this voice speaks are counted (None: not counted)."""

    def __init__(self, config: JobConfig, persona: Persona) -> None:
        self.config = config
        self.settings = config.host
        self.persona = persona

    @classmethod
    def from_settings(cls, config: JobConfig, persona: Persona) -> Self:
        """The backend for the job's config and the current persona (its model parts are built
        later, by `session_parts`)."""
        return cls(config, persona)

    @abstractmethod
    def session_parts(self) -> SessionParts:
        """Build the model parts (may raise BackendUnavailable)."""

    def start_turn(self, session: AgentSession, prompt: Prompt, plan: TurnPlan) -> SpeechHandle:
        """Ask the model for one turn. The plan rides along in the user message's extra."""
        message = llm.ChatMessage(role="user", content=[prompt.user_text], extra={PLAN_KEY: plan})
        return session.generate_reply(
            user_input=message, instructions=prompt.turn_instructions, allow_interruptions=True
        )

    def say(self, session: AgentSession, text: str) -> SpeechHandle:
        """Speak `text` verbatim (pipelines: straight to the TTS)."""
        return session.say(text, allow_interruptions=True)

    def set_persona(self, persona: Persona) -> None:
        self.persona = persona

    def usage_backend(self, usage: ModelUsage) -> str | None:
        """The usage name (`host_agent.usage`) an entry of the session's usage counts under, or
        None when it is free (a local model)."""
        return None

    async def aclose(self) -> None:
        """Release what the backend holds (connections, models)."""
        return None


def plan_of(chat_ctx: llm.ChatContext) -> TurnPlan | None:
    """The TurnPlan of the latest turn in `chat_ctx`, if the job attached one."""
    for item in reversed(chat_ctx.items):
        if isinstance(item, llm.ChatMessage) and item.role == "user":
            plan = item.extra.get(PLAN_KEY)
            if isinstance(plan, TurnPlan):
                return plan
    return None
