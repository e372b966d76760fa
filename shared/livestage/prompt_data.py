"""Text from viewers and web pages, handed to a language model as data it cannot mistake for
instructions. Pure.

Viewer names and messages, page titles and summaries, chat-derived topics and search results
reach a model only inside a *data block*: a fixed opening line, the data as JSON, a fixed
closing line::

    <<livestage-data>>
    {
      "answer_now": [
        {"author": "Ada", "text": "What is this place?", "question": true}
      ]
    }
    <</livestage-data>>

Every piece of outside text is a JSON string in it, so its quote marks, backslashes and line
breaks are escaped by the JSON encoder and it cannot end its string or add a key. On top of
JSON, `<` and `>` are written as `\\u003c` / `\\u003e` (so the text can never spell either
delimiter: the block cannot be closed from inside, nor a second one opened), and so are
characters that draw nothing or break lines (controls, format characters such as bidi
overrides and zero-width joiners, line and paragraph separators, private-use and unassigned
code points). Everything else stays readable (`"Tromsø"`, not `"Troms\\u00f8"`).

The block goes into a *user* message (conversation content); the system prompt and per-turn
instructions hold only fixed text that refers to the block by its keys (the host's
`host_agent.prompt` documents its keys, and tells the model all of this in `DATA_RULES`).

    text = data_block({"answer_now": [...]})          # the block, as above
    blocks = read_data_blocks(message)                # [dict, ...]: the blocks of a message
    outside = outside_data_blocks(message)            # the message without its blocks
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any, Final

DATA_TAG: Final = "livestage-data"


def opening(tag: str = DATA_TAG) -> str:
    return f"<<{tag}>>"


def closing(tag: str = DATA_TAG) -> str:
    return f"<</{tag}>>"


_ESCAPED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_TAG: Final = re.compile(r"[a-z][a-z0-9_-]{0,40}")


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as JSON spells characters beyond the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _needs_escape(char: str) -> bool:
    if char == "\n":  # JSON escapes newlines in strings; a raw one is the layout's
        return False
    return char in "<>" or unicodedata.category(char) in _ESCAPED_CATEGORIES


def encode_data(data: Mapping[str, Any]) -> str:
    """`data` as indented JSON in which no `<`, `>` or invisible character appears raw."""
    text = json.dumps(data, ensure_ascii=False, indent=2)
    return "".join(_escape(c) if _needs_escape(c) else c for c in text)


def data_block(data: Mapping[str, Any], tag: str = DATA_TAG) -> str:
    """`data` (JSON-serializable; strings anywhere in it) as a block the text cannot close."""
    if not _TAG.fullmatch(tag):
        raise ValueError(f"data block tag {tag!r} must be 1-41 of a-z 0-9 _ -, starting a-z")
    return f"{opening(tag)}\n{encode_data(data)}\n{closing(tag)}"


def _block_pattern(tag: str) -> re.Pattern[str]:
    return re.compile(
        rf"{re.escape(opening(tag))}\n(?P<body>[^<>]*)\n{re.escape(closing(tag))}", re.DOTALL
    )


def read_data_blocks(text: str, tag: str = DATA_TAG) -> list[dict[str, Any]]:
    """The data blocks of `text`, decoded; ValueError for a block that is not a JSON object."""
    blocks: list[dict[str, Any]] = []
    for match in _block_pattern(tag).finditer(text):
        value = json.loads(match["body"])
        if not isinstance(value, dict):
            raise ValueError(f"a {tag} block holds {type(value).__name__}, not an object")
        blocks.append(value)
    return blocks


def outside_data_blocks(text: str, tag: str = DATA_TAG) -> str:
    """`text` with its data blocks taken out (what a model reads as not quoted)."""
    return _block_pattern(tag).sub("", text)
