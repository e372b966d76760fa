"""Livestage moderation: the verdict on every chat message (see `moderation.app`)."""
