"""Livestage stage-producer: what is on screen."""
