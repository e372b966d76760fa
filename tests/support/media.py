"""A stand-in for the stage producer's asset server: one body for every GET, on 127.0.0.1.

with serving(png_bytes, "image/png") as media:   # TOKEN_STAGE_MEDIA_URL=media.url
    ...
    media.paths                                  # every path asked for, in order
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class MediaServer:
    url: str
    paths: list[str] = field(default_factory=list)


@contextlib.contextmanager
def serving(body: bytes, content_type: str) -> Iterator[MediaServer]:
    """Serve `body` as `content_type` for every GET until the block ends."""
    media = MediaServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            media.paths.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    media.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield media
    finally:
        server.shutdown()
        server.server_close()
