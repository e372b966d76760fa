"""`python -m stage_producer` as a real process: it serves its asset server, follows NATS, and
stops cleanly on SIGTERM (closing its browser, proxy and server)."""

from __future__ import annotations

from pathlib import Path

from tests.support.services import free_port, start_service, stop_service, wait_http_ok


def test_the_service_starts_serves_and_stops(nats_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    process = start_service(
        "stage_producer",
        {
            "NATS_URL": nats_server.url,
            "STAGE_HTTP_PORT": str(port),
            "STAGE_ASSET_DIR": str(tmp_path),
        },
    )
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/healthz", process)
    finally:
        output = stop_service(process)
    assert process.returncode == 0, output
    assert "topics=keywords search=sources backdrops=procedural" in output
    assert "stage-producer connected to NATS" in output


def test_a_bad_sources_file_stops_the_service_with_the_reason(nats_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "sources.yaml"
    bad.write_text("topics:\n  - name: X\n    sources:\n      - url: ftp://x/\n")
    process = start_service(
        "stage_producer",
        {"NATS_URL": nats_server.url, "STAGE_SOURCES_FILE": str(bad), "STAGE_HTTP_PORT": "0"},
    )
    output, _ = process.communicate(timeout=30)
    assert process.returncode != 0
    assert f"sources file {bad}: topics.0.sources.0.url" in output
