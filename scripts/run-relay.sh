#!/usr/bin/env bash
# One command to a running local relay: installs dependencies, builds, creates a relay in
# ./var on first use (kept between runs) and runs it in the foreground. Ctrl-C stops it.
#   REST API  http://127.0.0.1:8080/api/v1     WebSocket  ws://127.0.0.1:8081/ws
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
DATA=${CHATD_DATA:-var}
if [ ! -f "$DATA/chatd.toml" ]; then
  build/bin/chatctl init --data-dir "$DATA" --relay "${CHATD_RELAY:-local}" --node-id "${CHATD_NODE_ID:-1}"
fi
exec build/bin/chatd --config "$DATA/chatd.toml"
