#!/usr/bin/env bash
# The secrets of `docker compose up`, made once: random values written to .env.compose (git-ignored,
# mode 600) beside docker-compose.yml. Run it before the first `docker compose up`; compose refuses
# to start without that file. Idempotent: a value already in the file is kept (edit the file to
# choose your own, e.g. your LiveKit Cloud project's secret), a missing one is added.
#
#   scripts/compose-secrets.sh [FILE]      # FILE defaults to .env.compose at the repository root
#
#   LIVEKIT_API_SECRET         the bundled livekit-server's secret (its key: LIVEKIT_API_KEY, devkey)
#   LIVESTAGE_OPERATOR_SECRET  bearer secret of the operator routes (/api/operator/...)
#   TOKEN_VISITOR_KEY          signs visitor cookies (otherwise derived from the LiveKit secret)
#   STAGE_ASSET_KEY            signs asset URLs (so the stage producer needs no LiveKit secret)
#
# docker-compose.yml hands each container only the ones its settings read.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
file="${1:-$root/.env.compose}"
names=(LIVEKIT_API_SECRET LIVESTAGE_OPERATOR_SECRET TOKEN_VISITOR_KEY STAGE_ASSET_KEY)

random_secret() {
  # 32 random bytes, URL-safe base64 without padding: 43 characters, nothing to quote
  head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'
}

umask 077
if [ ! -e "$file" ]; then
  {
    echo "# Secrets of docker compose, written once by scripts/compose-secrets.sh; keep this file"
    echo "# private (git-ignored). Each container gets only the ones it reads. Edit a value to"
    echo "# choose your own; delete the file and run the script again for new ones."
  } >"$file"
fi
chmod 600 "$file"
added=()
for name in "${names[@]}"; do
  if ! grep -Eq "^[[:space:]]*(export[[:space:]]+)?$name=.+" "$file"; then
    printf '%s=%s\n' "$name" "$(random_secret)" >>"$file"
    added+=("$name")
  fi
done
if [ ${#added[@]} -gt 0 ]; then
  echo "compose-secrets: wrote ${added[*]} to $file"
else
  echo "compose-secrets: $file already has every secret; kept them"
fi
