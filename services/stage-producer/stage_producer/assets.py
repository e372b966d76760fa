"""Assets: a content-addressed folder, and HMAC-signed, expiring URLs to reach them.

An asset is stored once under `<sha256>.<ext>` (written to a temporary name, then renamed, so a
reader never sees half a file). The folder is kept under a size cap, oldest first. A URL is
`/media/<name>?exp=<epoch seconds>&sig=<hex HMAC-SHA256 of "media:<name>:<exp>">`: the
browser reaches it through the edge (same origin as the page), the edge streams it from the
stage producer's asset server, and the asset server checks the signature and the expiry.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlencode

from livestage import keys

MEDIA_PREFIX: Final = "/media/"
ASSET_NAME: Final = re.compile(r"^[0-9a-f]{64}\.(jpg|webp|png|webm)$")
MEDIA_TYPES: Final = {
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "png": "image/png",
    "webm": "video/webm",
}


class AssetTooLarge(ValueError):
    """An asset over STAGE_ASSET_MAX_BYTES."""


@dataclass(frozen=True)
class StoredAsset:
    name: str
    path: Path
    size: int

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.name.rsplit(".", 1)[1]]


class AssetStore:
    """A folder of assets named by their SHA-256; bounded in total size."""

    def __init__(self, root: Path, *, max_total_bytes: int, max_asset_bytes: int) -> None:
        self.root = root
        self.max_total_bytes = max_total_bytes
        self.max_asset_bytes = max_asset_bytes
        self.root.mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes, extension: str) -> StoredAsset:
        if extension not in MEDIA_TYPES:
            raise ValueError(
                f"unsupported asset type {extension!r}; use one of {list(MEDIA_TYPES)}"
            )
        if len(data) > self.max_asset_bytes:
            raise AssetTooLarge(
                f"asset of {len(data)} bytes is over STAGE_ASSET_MAX_BYTES={self.max_asset_bytes}"
            )
        name = f"{hashlib.sha256(data).hexdigest()}.{extension}"
        path = self.root / name
        if path.is_file():
            os.utime(path)  # fresh again: the pruner keeps recently used assets
        else:
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".tmp-", delete=False) as tmp:
                tmp.write(data)
            os.replace(tmp.name, path)
            self.prune(keep=name)
        return StoredAsset(name, path, len(data))

    def get(self, name: str) -> StoredAsset | None:
        if not ASSET_NAME.fullmatch(name):
            return None
        path = self.root / name
        if not path.is_file():
            return None
        return StoredAsset(name, path, path.stat().st_size)

    def prune(self, keep: str = "") -> list[str]:
        """Delete the least recently stored assets until the folder is under its cap."""
        entries = []
        for path in self.root.iterdir():
            if ASSET_NAME.fullmatch(path.name):
                with contextlib.suppress(FileNotFoundError):
                    stat = path.stat()
                    entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        removed: list[str] = []
        for _, size, path in sorted(entries):
            if total <= self.max_total_bytes:
                break
            if path.name == keep:
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                total -= size
                removed.append(path.name)
        return removed


class AssetSigner:
    """Signs and checks `/media/<name>?exp=&sig=` URLs with one HMAC key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the asset signing key must be at least 16 bytes")
        self._key = key

    @classmethod
    def from_settings(cls, explicit: object = None) -> AssetSigner:
        from pydantic import SecretStr

        secret = explicit if isinstance(explicit, SecretStr) else None
        return cls(keys.derived_key("stage-assets", secret))

    @staticmethod
    def _message(name: str, expires: int) -> str:
        return f"media:{name}:{expires}"

    def url(self, name: str, expires_at_s: int) -> str:
        """The edge-relative signed path of asset `name`, valid until `expires_at_s`."""
        sig = keys.sign(self._key, self._message(name, expires_at_s))
        return f"{MEDIA_PREFIX}{name}?" + urlencode({"exp": expires_at_s, "sig": sig})

    def check(
        self, name: str, exp: str | None, sig: str | None, now_s: float | None = None
    ) -> str | None:
        """None when the signature is right and not expired; otherwise why not."""
        if not exp or not sig:
            return "missing signature: the URL needs exp and sig query parameters"
        if not exp.isdigit() or len(exp) > 12:
            return "malformed exp: it must be epoch seconds"
        if not re.fullmatch(r"[0-9a-f]{64}", sig):
            return "malformed sig"
        if not keys.verify(self._key, self._message(name, int(exp)), sig):
            return "bad signature"
        if int(exp) <= (time.time() if now_s is None else now_s):
            return "expired URL"
        return None
