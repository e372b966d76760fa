"""Asking OpenAI's moderation endpoint about one text (I/O; chat's verdict is moderation's `openai`
check, the host's own words are checked with it too).

`POST {OPENAI_BASE_URL}/moderations {"model": MODERATION_OPENAI_MODEL, "input": body}` through
the official `openai` client, no retries (a chat message cannot wait), bounded by
MODERATION_OPENAI_TIMEOUT_S. Every failure (timeout, connection, 4xx/5xx, a reply that does not
parse) becomes `OpenAIResult(error=...)`, and the check's fail mode decides what that means.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from livestage.settings import OpenAISettings, SafetySettings

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpenAIResult:
    """What OpenAI's moderation endpoint said about a text, or why it could not say."""

    flagged: bool = False
    categories: tuple[str, ...] = ()
    error: str = ""


class OpenAIModerator:
    def __init__(self, api_key: str, base_url: str, model: str, timeout_s: float) -> None:
        import openai  # only when enabled: the client is a heavy import

        self.errors: tuple[type[BaseException], ...] = (
            openai.OpenAIError,
            TimeoutError,
            ValueError,
            IndexError,
        )
        self.model = model
        self.timeout_s = timeout_s
        self.client: openai.AsyncOpenAI = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0
        )

    @classmethod
    def from_settings(
        cls, settings: SafetySettings, openai_settings: OpenAISettings
    ) -> OpenAIModerator | None:
        """A moderator when OPENAI_API_KEY is set, else None (only the offline checks run)."""
        if openai_settings.api_key is None or not openai_settings.api_key.get_secret_value():
            return None
        return cls(
            openai_settings.api_key.get_secret_value(),
            openai_settings.base_url,
            settings.openai_model,
            settings.openai_timeout_s,
        )

    async def moderate(self, text: str) -> OpenAIResult:
        try:
            # The client's own timeout covers each phase; this bounds the whole call.
            async with asyncio.timeout(self.timeout_s + 1.0):
                response = await self.client.moderations.create(model=self.model, input=text)
            result = response.results[0]
        except self.errors as error:
            log.warning("OpenAI moderation failed: %s", _describe(error))
            return OpenAIResult(error=_describe(error))
        flagged = tuple(
            sorted(
                name
                for name, value in result.categories.model_dump(by_alias=True).items()
                if value is True
            )
        )
        return OpenAIResult(flagged=bool(result.flagged), categories=flagged)

    async def close(self) -> None:
        await self.client.close()


def _describe(error: BaseException) -> str:
    import openai

    if isinstance(error, openai.APIStatusError):
        return f"HTTP {error.status_code}"
    if isinstance(error, openai.APITimeoutError | TimeoutError):
        return "timed out"
    return type(error).__name__
