"""Secrets that several replicas must agree on, derived when an operator sets none.

A setting such as an asset-signing key or the visitor-cookie key may be left empty; then it is
derived from `LIVEKIT_API_SECRET` with HMAC-SHA256 and a label naming its purpose. Every replica
with the same LiveKit secret derives the same key, each purpose gets a different key, and the
derived keys say nothing about the LiveKit secret.
"""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr

from livestage.settings import LiveKitSettings


def derived_key(label: str, explicit: SecretStr | None = None) -> bytes:
    """`explicit` as bytes when set, else HMAC-SHA256(LIVEKIT_API_SECRET, "livestage:" + label)."""
    if explicit is not None and explicit.get_secret_value():
        return explicit.get_secret_value().encode()
    root = LiveKitSettings().api_secret.get_secret_value().encode()
    return hmac.new(root, f"livestage:{label}".encode(), hashlib.sha256).digest()


def sign(key: bytes, message: str) -> str:
    """Hex HMAC-SHA256 of `message`."""
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def verify(key: bytes, message: str, signature: str) -> bool:
    """Constant-time check of a `sign()` signature."""
    return hmac.compare_digest(sign(key, message), signature)
