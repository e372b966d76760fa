"""The word lists every content check reads: our own blocklist and allowlist (shipped in
`livestage/safety/lists/`, or the files `MODERATION_BLOCKLIST_PATH` / `MODERATION_ALLOWLIST_PATH`
name) and the list maintained in `better-profanity` (about 900 words and phrases)."""

from __future__ import annotations

from pathlib import Path

from better_profanity.utils import get_complete_path_of_file

from livestage.safety.matching import AllowList, WordList
from livestage.settings import SafetySettings

LISTS = Path(__file__).resolve().parent / "lists"
DEFAULT_BLOCKLIST = LISTS / "blocklist.txt"
DEFAULT_ALLOWLIST = LISTS / "allowlist.txt"
BETTER_PROFANITY_LIST = Path(get_complete_path_of_file("profanity_wordlist.txt"))


def load_allowlist(settings: SafetySettings) -> AllowList:
    return AllowList.from_file(settings.allowlist_path or DEFAULT_ALLOWLIST)


def load_blocklist(settings: SafetySettings) -> WordList:
    return WordList.from_file(settings.blocklist_path or DEFAULT_BLOCKLIST)


def load_wordlist() -> WordList:
    return WordList.from_file(BETTER_PROFANITY_LIST)
