#!/usr/bin/env bash
# bench/ab.sh — A/B of two (or more) chatd builds on durable ingest, in one time window:
# the builds alternate, one run each per round, on fresh copies of ONE template relay, so
# a shared machine's drift hits every build alike. Compare the builds as ratios.
#   bench/ab.sh N LABEL=BUILD_DIR[:table.key=value,...] ...
#   e.g. bench/ab.sh 3 old=/tmp/old/build new=build            # chatd pinned to CPU 0
#        bench/ab.sh 3 on=build off=build:store.search=false     # one build, two configs
#        RELAY_CPU=0,1 GEN_CPU=0,1 NICE=0 bench/ab.sh 3 old=… new=…  # both on both CPUs
# Environment: SENDERS (100), DURATION (6 s); bench/lib.sh's RELAY_CPU, GEN_CPU, NICE.
# AB_ARGS: another scenario instead of ingest (one step), e.g.
#   AB_ARGS="fanout --rooms 10 --members 100 --rates 4000 --duration 5 --warmup 1" bench/ab.sh 3 …
N=${1:?usage: bench/ab.sh N LABEL=BUILD_DIR ...}
shift
[ $# -ge 1 ] || { echo "usage: bench/ab.sh N LABEL=BUILD_DIR ..." >&2; exit 2; }
first=${1#*=}
first=${first%%:*}
export CHATD="$first/bin/chatd" CHATCTL="$first/bin/chatctl" REPEATS=1
source "$(dirname "$0")/lib.sh"
SENDERS="${SENDERS:-100}"
DURATION="${DURATION:-6}"
if [ -n "${AB_ARGS:-}" ]; then
  read -r -a ARGS <<<"$AB_ARGS"
else
  ARGS=(ingest --senders "$SENDERS" --window 1 --duration "$DURATION" --warmup 1)
fi
template ab "${ARGS[@]}"
for round in $(seq 1 "$N"); do
  for cfg in "$@"; do
    label=${cfg%%=*}
    build=${cfg#*=}
    RELAY_SET=""
    if [[ $build == *:* ]]; then RELAY_SET=${build#*:}; RELAY_SET=${RELAY_SET//,/ }; build=${build%%:*}; fi
    CHATD="$build/bin/chatd"
    [ -x "$CHATD" ] || { log "$CHATD not found"; exit 2; }
    run_once ab "$label-$round" "${ARGS[@]}"
    python3 - "$label" "$OUT/ab/run-$label-$round.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[2]))["steps"][0]
if "server_us_per_delivery" in s:  # fan-out shapes
    lat = s["delivery_latency"]
    head = f"deliveries/s {s['deliveries_per_s']:9.0f}  us/delivery {s['server_us_per_delivery']:5.2f}"
else:
    lat = s["ack_latency"]
    head = f"acked/s {s['acked_per_s']:8.0f}  us/msg {s['server_us_per_message']:6.1f}"
print(f"{sys.argv[1]:10s} {head}  chatd {s['server_cpu_pct']:4.0f}%  other {s['other_processes_cpu_pct']:4.0f}%  "
      f"p50 {lat['p50_us'] / 1000:.2f} ms  p99 {lat['p99_us'] / 1000:.2f} ms", flush=True)
PY
  done
done
log "results in $OUT"
