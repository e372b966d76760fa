"""Entry point: `python -m stage_producer` (see `app.py`)."""

from livestage import service

from .app import SERVICE_NAME, main

if __name__ == "__main__":
    service.run(SERVICE_NAME, main)
