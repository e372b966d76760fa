"""Entry point: `python -m stage_producer`.

Not built yet beyond its wiring: it connects to NATS, declares the JetStream streams and waits,
so the stack starts whole and later work fills in the service.
"""

from __future__ import annotations

import asyncio

from livestage import service

NAME = "stage-producer"


async def main(stop: asyncio.Event) -> None:
    await service.idle_on_bus(NAME, stop)


if __name__ == "__main__":
    service.run(NAME, main)
