"""What the content checks of issue #16 cost: a host sentence, a display name, and loading.

    python -m bench safety          (or `make bench B=safety`)

- `sentence`: `livestage.safety.TextSafety.check` (zalgo, both word lists after normalization,
  the classifier) on a mix of host-like sentences, clean, traps ("Scunthorpe", "assassin") and
  bad ones: the time each sentence waits before the host may say it (local voice, pipeline),
  without OpenAI's endpoint (a network round trip of its own when keyed).
- `name`: the edge's `NameCheck` (the same checks plus impersonation of the host's persona names
  and staff words) on a mix of names: what `POST /api/token` adds.
- `load_s`: building a `TextSafety` from the settings (lists + the classifier from its cache), which
  each service does once at start.

One core, a tight loop; `BENCH_SMOKE=1`: a few hundred calls.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench import smoke_or
from livestage.display_names import RESERVED_NAMES
from livestage.safety import TextSafety
from livestage.settings import SafetySettings
from token_service.names import NameCheck

SENTENCES = [
    "Great question, Ada, we are looking at the night sky over Tromsø tonight.",
    "The assassin in that film was a cocktail of charm and menace.",
    "I grew up near Scunthorpe, so the weather on screen feels like home.",
    "Let's move on to the next picture, it's a lovely one.",
    "Chat is quiet, so tell me what you think about this old lighthouse.",
    "Thanks for being here, everyone, say hi in the chat!",
    "What the fuck is that?",
    "You are a sh1t host and an idiot.",
    "f u c k this stream",
    "Honestly that class on Essex history was great.",
]
NAMES = [
    "Ada",
    "Grace Hopper",
    "Scunthorpe Fan",
    "N0va",
    "Adm1n",
    "ｍｏｄｅｒａｔｏｒ",
    "sh1tlord",
    "Kai",
]
CALLS = smoke_or(5000, 300)
FIGURES = (
    "sentence.per_call_us.p50",
    "sentence.per_call_us.p99",
    "sentence.calls_per_s",
    "name.per_call_us.p50",
    "name.per_call_us.p99",
    "load_s",
)


def _timed(call: Callable[[str], Any], inputs: Sequence[str], calls: int) -> dict[str, Any]:
    durations = []
    refused = 0
    for index in range(calls):
        text = inputs[index % len(inputs)]
        start = time.perf_counter()
        result = call(text)
        durations.append(time.perf_counter() - start)
        refused += result is not None
    durations.sort()
    return {
        "calls": calls,
        "refused_share": round(refused / calls, 3),
        "per_call_us": {
            "p50": round(statistics.median(durations) * 1e6, 1),
            "p99": round(durations[int(0.99 * (len(durations) - 1))] * 1e6, 1),
            "max": round(durations[-1] * 1e6, 1),
        },
        "calls_per_s": round(calls / sum(durations)),
    }


def run() -> dict[str, Any]:
    start = time.perf_counter()
    safety = TextSafety.from_settings(SafetySettings())
    load_s = time.perf_counter() - start
    names = NameCheck.build(RESERVED_NAMES)
    return {
        "load_s": round(load_s, 3),
        "sentence": _timed(safety.check, SENTENCES, CALLS),
        "name": _timed(names.check, NAMES, CALLS),
    }
