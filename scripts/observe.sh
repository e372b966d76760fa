#!/usr/bin/env bash
# What `make run OBSERVE=1` needs beyond `make bootstrap`: a local OpenTelemetry Collector and
# Prometheus. Idempotent; a warm run only checks.
#
#   otelcol-livestage  built with the OpenTelemetry Collector Builder from the Go module proxy
#                      (deploy/otel-collector/builder.yaml), cached as .cache/bin/otelcol-livestage;
#                      measured cold: about 3.5 minutes and 2.5 GB of Go caches on 2 cores
#   prometheus         Debian's package (2.42; its web UI at http://127.0.0.1:9090/graph)
#
# Grafana and Jaeger come from no registry this project uses (no PyPI/npm/Debian package; Jaeger
# cannot be `go install`ed and its UI needs a separate build): they run with docker compose.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cache="$root/.cache"
mkdir -p "$cache/bin"
BUILDER_VERSION="${OTELCOL_BUILDER_VERSION:-v0.155.0}"

step() { printf '\n== observe: %s\n' "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
die() { printf '\nobserve FAILED: %s\n' "$*" >&2; exit 1; }
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

step "OpenTelemetry Collector (builder $BUILDER_VERSION)"
manifest="deploy/otel-collector/builder.yaml"
want="$BUILDER_VERSION $(sha256sum "$manifest" | cut -d' ' -f1)"
stamp="$cache/bin/otelcol-livestage.version"
if [ -x "$cache/bin/otelcol-livestage" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  ok "cached at .cache/bin/otelcol-livestage"
else
  command -v go >/dev/null 2>&1 || die "the collector build needs the Go toolchain (https://go.dev/dl)"
  echo "   building (a few minutes and ~2.5 GB of Go module and build caches the first time)"
  GOBIN="$cache/go-bin" go install "go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION" \
    || die "go install go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION failed"
  "$cache/go-bin/builder" --config "$manifest" >"$cache/otelcol-build.log" 2>&1 \
    || die "the collector build failed; see .cache/otelcol-build.log"
  cp "$cache/otelcol-build/otelcol-livestage" "$cache/bin/otelcol-livestage"
  echo "$want" >"$stamp"
  ok "built .cache/bin/otelcol-livestage"
fi
"$cache/bin/otelcol-livestage" validate --config deploy/otel-collector/config.yaml \
  --config deploy/otel-collector/local.yaml >/dev/null \
  || die "deploy/otel-collector/config.yaml + local.yaml do not validate"
ok "config.yaml + local.yaml validate"

step "Prometheus (Debian)"
if ! command -v prometheus >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "no prometheus and no apt-get: install Prometheus 2.x"
  as_root apt-get update -q >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    prometheus >/dev/null
fi
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  die "Debian's prometheus service is running on :9090 (it starts on install); stop it with \
\`sudo systemctl disable --now prometheus\` so make run can start its own"
fi
ok "$(prometheus --version 2>&1 | head -n 1)"
