"""Write the Grafana dashboard `deploy/grafana/dashboards/livestage.json` from the metric specs.

    .venv/bin/python scripts/dashboard.py          # rewrite the JSON
    .venv/bin/python scripts/dashboard.py --check  # exit 1 when it is out of date

Every query names a series through `metrics.prometheus_name(SPEC)`, so a renamed metric changes
the dashboard with it; `tests/ops/test_dashboard_and_metrics_doc.py` parses every query and
checks each `livestage_*` series against `metrics.ALL`. One row per area: chat, host, cost,
stage, platform chat, infrastructure.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from _generated import write_or_check

from livestage import metrics as m

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "deploy" / "grafana" / "dashboards" / "livestage.json"
PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
RATE = "$__rate_interval"


def p(spec: m.MetricSpec) -> str:
    return m.prometheus_name(spec)


def rate(spec: m.MetricSpec, by: str = "", per: str = "") -> str:
    """Per-second rate summed over every service instance (counters restart with a process)."""
    grouping = f" by ({by})" if by else ""
    scale = f" * {per}" if per else ""
    return f"sum{grouping} (rate({p(spec)}[{RATE}])){scale}"


def quantile(q: float, spec: m.MetricSpec, by: str = "") -> str:
    keys = ", ".join(["le", *([by] if by else [])])
    return f"histogram_quantile({q}, sum by ({keys}) (rate({p(spec)}_bucket[{RATE}])))"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    queries: tuple[Query, ...]
    kind: str = "timeseries"
    description: str = ""


ROWS: dict[str, tuple[Panel, ...]] = {
    "chat": (
        Panel(
            "Chat messages",
            "msg/s",
            (
                Query(rate(m.CHAT_SUBMITTED), "submitted"),
                Query(rate(m.CHAT_VERDICTS, "verdict"), "{{verdict}}"),
            ),
            description="Messages stored for moderation, and the verdicts on them.",
        ),
        Panel(
            "Rejections by check",
            "msg/s",
            (
                Query(
                    f'sum by (check) (rate({p(m.CHAT_VERDICTS)}{{check!=""}}[{RATE}]))',
                    "{{check}}",
                ),
            ),
            description="Which moderation check rejected a message.",
        ),
        Panel(
            "Submit to delivered latency",
            "ms",
            (
                Query(quantile(0.5, m.CHAT_DELIVERY_LATENCY), "p50"),
                Query(quantile(0.95, m.CHAT_DELIVERY_LATENCY), "p95"),
            ),
            description="From the edge taking a message to its LiveKit send to the room.",
        ),
        Panel(
            "Chat events per packet",
            "short",
            (
                Query(quantile(0.5, m.CHAT_FANOUT_PACKET_EVENTS), "p50"),
                Query(quantile(0.95, m.CHAT_FANOUT_PACKET_EVENTS), "p95"),
            ),
            description="Messages and removals chat-history sent to a room in one data packet "
            "(CHAT_FANOUT_WINDOW_MS gathers them; 1 when chat is quiet).",
        ),
        Panel(
            "Refusals and removals",
            "req/s",
            (
                Query(rate(m.RATE_LIMITED, "limit"), "429 {{limit}}"),
                Query(rate(m.NAMES_REFUSED, "check"), "name refused: {{check}}"),
                Query(rate(m.CHAT_REMOVALS), "removed by an operator"),
            ),
        ),
    ),
    "host": (
        Panel(
            "Host reaction latency",
            "ms",
            (
                Query(quantile(0.5, m.HOST_REACTION_LATENCY, "voice"), "p50 {{voice}}"),
                Query(quantile(0.95, m.HOST_REACTION_LATENCY, "voice"), "p95 {{voice}}"),
            ),
            description="From a message's approval to the host starting to speak its reply.",
        ),
        Panel(
            "Speaking time",
            "percentunit",
            (Query(rate(m.HOST_SPEAKING_TIME, "voice"), "{{voice}}"),),
            description="Share of wall time the host is speaking.",
        ),
        Panel(
            "Turns and interruptions",
            "turns/min",
            (
                Query(rate(m.HOST_TURNS, "kind", per="60"), "{{kind}}"),
                Query(rate(m.HOST_INTERRUPTIONS, "cause", per="60"), "interrupted: {{cause}}"),
            ),
        ),
        Panel(
            "Backend fallbacks",
            "events/min",
            (
                Query(
                    rate(m.BACKEND_FALLBACKS, "kind, backend, reason", per="60"),
                    "{{kind}} {{backend}}: {{reason}}",
                ),
            ),
            description="A production backend failed and the host went on with the local one.",
        ),
        Panel(
            "Host sentences blocked",
            "sentences/min",
            (
                Query(
                    rate(m.HOST_OUTPUT_BLOCKED, "backend, check", per="60"),
                    "{{backend}}: {{check}}",
                ),
            ),
            description="What the host was about to say (or began to, OpenAI Realtime) that a "
            "content check kept from being heard.",
        ),
        Panel(
            "Memory: fact extraction failures",
            "calls/min",
            (
                Query(
                    rate(m.MEMORY_EXTRACTION_FAILURES, "backend, reason", per="60"),
                    "{{backend}}: {{reason}}",
                ),
            ),
            description="Model calls extracting what viewers say about themselves that gave no "
            "facts (timeout, error, an answer not in the requested shape); the host goes on.",
        ),
        Panel(
            "Memory of regulars",
            "ops/min",
            (
                Query(rate(m.MEMORY_READS, "outcome", per="60"), "reads: {{outcome}}"),
                Query(rate(m.MEMORY_WRITES, "outcome", per="60"), "writes: {{outcome}}"),
                Query(rate(m.MEMORY_CALLBACKS, "kind", per="60"), "callbacks: {{kind}}"),
            ),
            description="Memory card reads and writes by outcome (timeout: past "
            "MEMORY_TIMEOUT_MS, the host went on without), and regulars welcomed back.",
        ),
    ),
    "cost": (
        Panel(
            "Estimated spend (USD per hour)",
            "currencyUSD",
            (Query(rate(m.MODEL_SPEND, "backend", per="3600"), "{{backend}}"),),
            description="From the price table in settings: an estimate, not a bill.",
        ),
        Panel(
            "Estimated spend in the range",
            "currencyUSD",
            (Query(f"sum(increase({p(m.MODEL_SPEND)}[$__range]))", "total"),),
            kind="stat",
        ),
        Panel(
            "Model tokens",
            "tokens/min",
            (
                Query(
                    rate(m.MODEL_TOKENS, "backend, direction, modality", per="60"),
                    "{{backend}} {{direction}} {{modality}}",
                ),
            ),
        ),
        Panel(
            "Paid audio and avatar time",
            "percentunit",
            (
                Query(rate(m.MODEL_AUDIO_TIME, "backend"), "audio {{backend}}"),
                Query(rate(m.AVATAR_SESSION_TIME, "backend"), "avatar {{backend}}"),
            ),
            description="Seconds per second: 1.0 means one stream all the time.",
        ),
    ),
    "stage": (
        Panel(
            "Visuals produced",
            "visuals/min",
            (Query(rate(m.CAPTURES, "kind, outcome", per="60"), "{{kind}} {{outcome}}"),),
        ),
        Panel(
            "Capture duration",
            "ms",
            (
                Query(quantile(0.5, m.CAPTURE_DURATION, "kind"), "p50 {{kind}}"),
                Query(quantile(0.95, m.CAPTURE_DURATION, "kind"), "p95 {{kind}}"),
            ),
        ),
        Panel(
            "Capture failures",
            "visuals/min",
            (
                Query(
                    f'sum by (kind, outcome) (rate({p(m.CAPTURES)}{{outcome!="ok"}}[{RATE}])) * 60',
                    "{{kind}} {{outcome}}",
                ),
            ),
        ),
    ),
    "platform chat": (
        Panel(
            "Platform chat",
            "msg/s",
            (Query(rate(m.BRIDGE_MESSAGES, "platform, outcome"), "{{platform}} {{outcome}}"),),
            description="YouTube and Twitch chat the bridge handled: submitted, duplicate, "
            "invalid, removed (by the platform's moderators).",
        ),
        Panel(
            "Platform chat connected",
            "short",
            (Query(f"min by (platform) ({p(m.BRIDGE_CONNECTED)})", "{{platform}}"),),
            description="1 while the bridge follows the platform's chat, 0 while it does not.",
        ),
        Panel(
            "Platform lag",
            "ms",
            (
                Query(quantile(0.5, m.BRIDGE_LAG, "platform"), "p50 {{platform}}"),
                Query(quantile(0.99, m.BRIDGE_LAG, "platform"), "p99 {{platform}}"),
            ),
            description="From the platform's timestamp to chat.submitted.",
        ),
        Panel(
            "Platform problems and replies",
            "events/min",
            (
                Query(
                    rate(m.BRIDGE_PROBLEMS, "platform, outcome", per="60"),
                    "{{platform}} {{outcome}}",
                ),
                Query(
                    rate(m.BRIDGE_REPLIES, "platform, outcome", per="60"),
                    "reply {{platform}} {{outcome}}",
                ),
            ),
            description="Client failures (unauthorized, quota, unavailable, crashed...) and "
            "replies back to the platforms (sent, refused, failed, rate_limited, duplicate).",
        ),
    ),
    "infrastructure": (
        Panel(
            "Rooms and viewers",
            "short",
            (
                Query(f"sum({p(m.ROOMS_ACTIVE)})", "active rooms"),
                Query(f"sum({p(m.VIEWERS)})", "viewers"),
            ),
        ),
        Panel(
            "Agent jobs",
            "jobs/min",
            (
                Query(rate(m.AGENT_JOBS_STARTED, per="60"), "started"),
                Query(rate(m.AGENT_JOBS_ENDED, "reason", per="60"), "ended: {{reason}}"),
                Query(rate(m.AGENT_JOB_CRASHES, per="60"), "crashed"),
            ),
        ),
        Panel(
            "Host dispatches",
            "dispatches/min",
            (Query(rate(m.HOST_DISPATCHES, "trigger, cause", per="60"), "{{trigger}}: {{cause}}"),),
            description="Dispatches by the edge: a token request, or the reconciler bringing a "
            "host to viewers who have none (sweep, worker, job_ended, host_left, viewer_joined). "
            "A steady reconciler rate means hosts keep failing.",
        ),
        Panel(
            "NATS consumer lag",
            "short",
            (Query(f"max by (consumer) ({p(m.NATS_CONSUMER_PENDING)})", "{{consumer}}"),),
            description="Messages a durable consumer has not been handed yet.",
        ),
        Panel(
            "Edge dependencies",
            "short",
            (
                Query(
                    f"min by (dependency) ({p(m.EDGE_DEPENDENCY_STATUS)})",
                    "{{dependency}}",
                ),
            ),
            description="The worst edge replica's last check: 1 ok, 0.5 degraded, 0 down.",
        ),
        Panel(
            "Visuals refused or cut off",
            "req/s",
            (Query(rate(m.MEDIA_REFUSED, "reason"), "{{reason}}"),),
            description="GET /media/ refused (rate, client_streams, busy, too_large) or cut "
            "off (stalled readers).",
        ),
        Panel(
            "Dead letters",
            "short",
            (
                Query(
                    f"sum by (consumer, reason) (increase({p(m.BUS_DEAD_LETTERED)}[{RATE}]))",
                    "{{consumer}}: {{reason}}",
                ),
            ),
            description="Messages a consumer gave up on (retry budget spent, or invalid): "
            "each waits in the DEADLETTER stream for an operator to replay it "
            "(/api/operator/deadletters). Alert on any.",
        ),
    ),
}


def panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, object]:
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": PROMETHEUS,
        "gridPos": {"h": 8, "w": 6, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}}
        if panel.kind == "timeseries"
        else {"reduceOptions": {"calcs": ["lastNotNull"]}},
        "targets": [
            {
                "refId": chr(ord("A") + index),
                "datasource": PROMETHEUS,
                "expr": query.expr,
                "legendFormat": query.legend,
            }
            for index, query in enumerate(panel.queries)
        ],
    }


def dashboard() -> dict[str, object]:
    panels: list[dict[str, object]] = []
    panel_id = 1
    y = 0
    for area, row_panels in ROWS.items():
        panels.append(
            {
                "id": panel_id,
                "type": "row",
                "title": area,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        panel_id += 1
        y += 1
        for index, panel in enumerate(row_panels):
            x = (index % 4) * 6
            if index and index % 4 == 0:
                y += 8
            panels.append(panel_json(panel, panel_id, x, y))
            panel_id += 1
        y += 8
    return {
        "uid": "livestage-overview",
        "title": "Livestage",
        "description": "Is the stream healthy, and what does it cost? Metrics: docs/metrics.md.",
        "tags": ["livestage"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "links": [
            {
                "title": "Traces (Jaeger)",
                "type": "link",
                "url": "/explore?left=%7B%22datasource%22:%22jaeger%22%7D",
                "icon": "external link",
            }
        ],
        "panels": panels,
        "templating": {"list": []},
        "annotations": {"list": []},
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    return write_or_check(TARGET, render(), argv, generator=__file__)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
