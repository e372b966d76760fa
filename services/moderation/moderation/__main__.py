"""Entry point: `python -m moderation` (see `moderation.app`)."""

from livestage import service
from moderation.app import NAME, main

if __name__ == "__main__":
    service.run(NAME, main)
