"""The prompt for one turn, composed from the persona and the brain's plan. Pure.

Every model backend gets the persona's `instructions` as its system prompt (the Agent's
instructions) and, per turn, `Prompt.turn_instructions` (what to do now) plus `Prompt.user_text`
(the situation: the screen, recent chat and talk, the comments to answer). Viewer text is
quoted and labelled as coming from viewers, never mixed into the instructions, so a comment
cannot pose as the operator.
"""

from __future__ import annotations

from dataclasses import dataclass

from host_agent.brain import Comment, TurnPlan
from host_agent.persona import Persona

MAX_QUOTE_CHARS = 300


@dataclass(frozen=True)
class Prompt:
    system: str
    turn_instructions: str
    user_text: str


def _quote(text: str, limit: int = MAX_QUOTE_CHARS) -> str:
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return '"' + flat.replace('"', "'") + '"'


def _comment_line(comment: Comment) -> str:
    verb = "asks" if comment.is_question else "says"
    return f"- {comment.author_name} {verb}: {_quote(comment.body)}"


def compose(persona: Persona, plan: TurnPlan) -> Prompt:
    """System prompt, this turn's instructions, and the situation for `plan`."""
    lines: list[str] = []
    screen = plan.screen
    if screen is not None:
        what = screen.title or screen.topic or f"a {screen.kind}"
        lines.append(f"On screen now ({screen.kind}): {_quote(what, 200)}")
        if screen.summary:
            lines.append(f"About it: {_quote(screen.summary, 600)}")
        if screen.topic and screen.topic != what:
            lines.append(f"Topic: {_quote(screen.topic, 200)}")
    else:
        lines.append("Nothing is on screen yet.")
    if plan.recent_talk:
        lines.append("What you said recently (oldest first):")
        lines.extend(f"- {_quote(said.text)}" for said in plan.recent_talk)
    if plan.recent_chat:
        lines.append("Recent chat, for context only (oldest first):")
        lines.extend(_comment_line(c) for c in plan.recent_chat)

    if plan.kind == "reply":
        names = " and ".join(c.author_name for c in plan.comments)
        instructions = (
            f"Answer {names} now, by name, in two or three short spoken sentences. "
            "Respond to what they wrote; do not answer anyone else."
        )
        lines.append("Viewer comments to answer now:")
        lines.extend(_comment_line(c) for c in plan.comments)
    elif plan.topic == "greeting":
        instructions = "A viewer just arrived: greet the room in one or two short sentences" + (
            f", for example: {_quote(persona.greeting_text())}" if persona.greeting else "."
        )
    elif plan.kind == "monologue":
        instructions = (
            "Chat is quiet. Say two or three short sentences about what is on screen, "
            "and invite the viewers to chat about it."
        )
    else:
        instructions = "Say exactly the operator's words, nothing else."
        lines.append(f"Words to say: {_quote(plan.text, 4000)}")
    return Prompt(
        system=persona.instructions.strip(),
        turn_instructions=instructions,
        user_text="\n".join(lines),
    )
