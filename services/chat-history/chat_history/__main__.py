"""Entry point: `python -m chat_history`.

Not built yet beyond its wiring: it connects to NATS, declares the JetStream streams and waits,
so the stack starts whole and later work fills in the service.
"""

from livestage import service

if __name__ == "__main__":
    service.run_idle("chat-history")
