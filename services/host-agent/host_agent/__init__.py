"""Livestage host-agent: the speaking host (LiveKit Agents worker)."""
