"""What the host is about to say, sentence by sentence, against the content checks. Pure.

The host's words are checked with the same offline checks as viewer chat (`livestage.safety`:
zalgo, our blocklist, a word list, a classifier; spellings normalised for leetspeak, confusable
letters and spacing, with an allowlist for the Scunthorpe traps), plus OpenAI's moderation
endpoint when keyed (that part is I/O, in `output_guard`). This module decides; it does no I/O:

- `split_sentences` / `SentenceSplitter`: text (or a stream of text) cut into sentences, as raw
  slices that join back into the text, so a turn whose sentences all pass reads exactly as the
  model wrote it;
- `verdict`: the first check that blocks a piece of text (`Blocked`: the check's name and a
  reason that never repeats the words), or None;
- `TranscriptWatch`: for a voice whose words arrive with their audio (OpenAI Realtime), what to
  do at each transcript delta: cut now, wait a moment for a word that may still grow ("ass" may
  become "assassin"), or hand finished sentences on to the full checks and the captions. Words
  are judged as they come (the word lists); the classifier and OpenAI judge whole sentences.

Where the text exists before the speech (the local voice, the pipeline, `say`), a sentence is
held until it is checked and a blocked one is dropped; a turn left with nothing to say says
`MOVE_ON` instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from livekit import blingfire

from livestage.safety import TextChecker

MOVE_ON = "Let's move on."
"""What the host says instead of a turn whose every sentence was blocked."""

PARTIAL_WORD_WAIT_S = 0.05
"""How long a streamed transcript's last word, flagged only as it stands, may wait for the rest
of it before the turn is cut anyway (real transcripts stream in pieces of words)."""


@dataclass(frozen=True)
class Blocked:
    """A piece of the host's output that must not be heard: which check, and why (never the
    words themselves)."""

    check: str
    reason: str


def verdict(checker: TextChecker, text: str) -> Blocked | None:
    """The offline checks' verdict on `text` (None: it may be said)."""
    if not text.strip():
        return None
    found = checker.check(text)
    return None if found is None else Blocked(found.check, found.reason)


def split_sentences(text: str) -> list[str]:
    """`text` as sentences: raw slices, the whitespace before a sentence going with it, so
    `"".join(split_sentences(text)) == text`."""
    if not text.strip():
        return [text] if text else []
    _, offsets = blingfire.text_to_sentences_with_offsets(text)
    pieces: list[str] = []
    start = 0
    for _, end in offsets:
        if end > start:
            pieces.append(text[start:end])
            start = end
    if start < len(text):
        if pieces and not text[start:].strip():
            pieces[-1] += text[start:]  # trailing whitespace stays with the last sentence
        else:
            pieces.append(text[start:])
    return pieces


@dataclass
class SentenceSplitter:
    """Streamed text in, finished sentences out. A sentence is finished once the next one has
    begun (or at `flush`, the end of the text)."""

    pending: str = ""

    def push(self, delta: str) -> list[str]:
        """Add `delta`; the sentences it finished."""
        self.pending += delta
        pieces = split_sentences(self.pending)
        if len(pieces) < 2:
            return []
        self.pending = pieces[-1]
        return pieces[:-1]

    def flush(self) -> str:
        """The rest (the last sentence), and start over."""
        rest, self.pending = self.pending, ""
        return rest


def whole_words(text: str) -> str:
    """`text` up to its last whitespace: the words that can no longer grow in a stream."""
    if not text or text[-1].isspace():
        return text
    cut = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t"))
    return text[: cut + 1] if cut >= 0 else ""


def ends_sentence(text: str) -> bool:
    """`text` ends in a full stop, question or exclamation mark (it may be a whole sentence)."""
    return text.rstrip().rstrip("\"')»”’").endswith((".", "!", "?", "…"))


@dataclass(frozen=True)
class WatchStep:
    """What to do after one transcript delta."""

    blocked: Blocked | None = None
    """Cut the turn now."""
    sentences: tuple[str, ...] = ()
    """Finished sentences that passed the word checks (the full checks, then the captions, are
    next). A sentence is finished by its full stop (or the next sentence, or the end)."""
    unsure: bool = False
    """The last word, as it stands, is blocked but may still grow: wait `PARTIAL_WORD_WAIT_S`
    for more, then call `word_done`."""


@dataclass
class TranscriptWatch:
    """The word checks over a streamed transcript (OpenAI Realtime), delta by delta.

    `words` are the checks that judge words (zalgo and the word lists, not the classifier): a
    sentence cut short can read as abuse to a classifier ("Hell" before "yeah, that is the
    spirit!"), so the classifier, like OpenAI, judges each sentence once it is finished."""

    words: TextChecker
    splitter: SentenceSplitter = field(default_factory=SentenceSplitter)

    def feed(self, delta: str) -> WatchStep:
        finished = self.splitter.push(delta)
        for sentence in finished:
            if (blocked := verdict(self.words, sentence)) is not None:
                return WatchStep(blocked=blocked)
        pending = self.splitter.pending
        if (blocked := verdict(self.words, whole_words(pending))) is not None:
            return WatchStep(blocked=blocked)
        unsure = verdict(self.words, pending) is not None
        if not unsure and ends_sentence(pending):
            # a full stop ends it now, not when the next sentence begins: the captions must
            # have a turn's last sentence before its audio has played out, or they drop it
            finished.append(self.splitter.flush())
        return WatchStep(sentences=tuple(finished), unsure=unsure)

    def word_done(self) -> Blocked | None:
        """No more of the last word came in time: the pending text's verdict as it stands."""
        return verdict(self.words, self.splitter.pending)

    def end(self) -> str:
        """The transcript ended: its last sentence (to check fully, then caption)."""
        return self.splitter.flush()


def blocked_sentences(checker: TextChecker, text: str) -> list[tuple[str, Blocked | None]]:
    """Each sentence of `text` with its offline verdict (for a line known in full)."""
    return [(sentence, verdict(checker, sentence)) for sentence in split_sentences(text)]


def clean_text(results: Iterable[tuple[str, Blocked | None]]) -> str:
    """The sentences that passed, joined as they were written (leading space trimmed)."""
    return "".join(sentence for sentence, blocked in results if blocked is None).strip()
