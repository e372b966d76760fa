"""Livestage chat-history: the record of chat and its fan-out."""
