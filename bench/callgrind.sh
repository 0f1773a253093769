#!/usr/bin/env bash
# bench/callgrind.sh — instructions per ingested message, by thread and hot function:
# chatd under `valgrind --tool=callgrind` (CPU 0) during 100-sender ingest (generator on
# CPU 1). Instruction counts do not depend on the machine's noise, so two builds compare
# exactly even while other jobs run; messages = the run's Ed25519 signatures.
#   bench/callgrind.sh                          # build/, 10 s
#   bench/callgrind.sh /tmp/old/build build     # several builds, one column each
# Environment: DURATION (10), OUT (where the callgrind files stay). Needs valgrind.
# The template relay is made once with the first build's chatctl; only pids started here
# are signalled.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DURATION="${DURATION:-10}"
OUT="${OUT:-$ROOT/bench/results/callgrind-$(date +%Y%m%d-%H%M%S)}"
[ $# -ge 1 ] || set -- "$ROOT/build"
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind not installed (apt-get install valgrind)" >&2; exit 2; }
WORK="$(mktemp -d /tmp/chatd-callgrind.XXXXXX)"
PID=""
cleanup() { [ -z "$PID" ] || { kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$OUT"
set_key() { sed -i "s|^\[$2\]\$|[$2]\n$3 = $4|" "$1"; }
wait_ports() { for _ in $(seq 1 600); do [ -s "$1/chatd.ports.json" ] && return 0; sleep 0.2; done; return 1; }

CHATCTL="$1/bin/chatctl"
TPL="$WORK/tpl"
"$CHATCTL" init --data-dir "$TPL" --relay bench --node-id 1 --api 127.0.0.1:0 --gateway 127.0.0.1:0 \
    --federation 127.0.0.1:0 --admin 127.0.0.1:0 >/dev/null
set_key "$TPL/chatd.toml" auth register_per_ip_per_min 100000
set_key "$TPL/chatd.toml" auth access_token_ttl 86400
set_key "$TPL/chatd.toml" limits max_connections 19000
set_key "$TPL/chatd.toml" log level '"warn"'
"$1/bin/chatd" --config "$TPL/chatd.toml" >"$TPL/stdout.log" 2>"$TPL/chatd.log" &
PID=$!
wait_ports "$TPL"
"$CHATCTL" bench ingest --senders 100 --window 1 --relay-dir "$TPL" --setup-only --setup-file "$TPL/setup.json" --no-progress
kill -TERM "$PID"; wait "$PID" || true; PID=""

files=()
i=0
for build in "$@"; do
  i=$((i + 1))
  dir="$WORK/run-$i"
  cp -a "$TPL" "$dir"
  rm -f "$dir/chatd.ports.json"
  out="$OUT/callgrind.$i.out"
  taskset -c 0 valgrind --tool=callgrind --separate-threads=no --callgrind-out-file="$out" \
      "$build/bin/chatd" --config "$dir/chatd.toml" >"$dir/stdout.log" 2>"$dir/valgrind.log" &
  PID=$!
  wait_ports "$dir"
  taskset -c 1 "$CHATCTL" -o json bench ingest --senders 100 --window 1 --duration "$DURATION" --warmup 1 \
      --relay-dir "$dir" --setup-file "$dir/setup.json" --no-progress >"$OUT/bench.$i.json" || true
  kill -TERM "$PID"; wait "$PID" || true; PID=""
  echo "[callgrind] $i: $build -> $out" >&2
  files+=("$out")
done
python3 "$ROOT/bench/callgrind_table.py" "${files[@]}" | tee "$OUT/table.txt"
