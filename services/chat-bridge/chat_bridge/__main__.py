"""Entry point: `python -m chat_bridge` (stops cleanly on SIGINT/SIGTERM)."""

from livestage import service

from .app import NAME, main

if __name__ == "__main__":
    service.run(NAME, main)
