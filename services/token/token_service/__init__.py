"""Livestage edge: everything a browser touches (tokens, chat ingress, history, webhooks, pages)."""
