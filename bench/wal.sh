#!/usr/bin/env bash
# bench/wal.sh — how large the store's WAL (chatd.db-wal) grows under sustained load: one
# scenario (default: durable ingest, 100 senders) run REPEATS times for DURATION seconds,
# the WAL file's size sampled every second, then chatd's WAL gauges from /metrics.
# Expected since 4d089d1: about store.wal_max_mb (64 MB) plus what is written while the
# checkpointer catches up; before it, everything written during the run.
#   bench/wal.sh
#   SCENARIO="fanout --rooms 10 --members 100 --rates 5000" REPEATS=3 bench/wal.sh
#   RELAY_SET="store.wal_max_mb=16" bench/wal.sh
source "$(dirname "$0")/lib.sh"
SCENARIO="${SCENARIO:-ingest --senders 100 --window 1}"
DURATION="${DURATION:-10}"
read -r -a ARGS <<<"$SCENARIO"

template wal "${ARGS[@]}" --duration 1
for n in $(seq 1 "$REPEATS"); do
  dir="$WORK/run-$n"
  cp -a "$WORK/tpl-wal" "$dir"
  for kv in ${RELAY_SET:-}; do
    k=${kv%%=*}
    set_key "$dir/chatd.toml" "${k%%.*}" "${k#*.}" "${kv#*=}"
  done
  mkdir -p "$OUT/wal"
  wait_quiet
  start_relay "$dir" "$RELAY_CPU"
  log "run $n/$REPEATS: chatctl bench $SCENARIO (${DURATION} s), sampling $dir/chatd.db-wal"
  (for ((i = 1; i <= DURATION + 1; i++)); do
    sleep 1
    echo "$i $(stat -c %s "$dir/chatd.db-wal" 2>/dev/null || echo 0)"
  done) >"$OUT/wal/sizes-$n.txt" &
  sampler=$!
  nice -n "$NICE" taskset -c "$GEN_CPU" "$CHATCTL" -o json bench "${ARGS[@]}" --duration "$DURATION" --warmup 1 \
      --relay-dir "$dir" --setup-file "$dir/setup.json" --no-progress >"$OUT/wal/run-$n.json" || true
  wait "$sampler"
  api=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['api'])" "$dir/chatd.ports.json")
  metrics=$(curl -s "http://$api/metrics" | grep -E '^chatd_store_wal_(frames|resets_total) ' | tr '\n' ' ')
  largest=$(sort -k2 -n "$OUT/wal/sizes-$n.txt" | tail -1 | cut -d' ' -f2)
  echo "run $n: largest WAL file $((largest / 1000000)) MB; $metrics" | tee -a "$OUT/wal/summary.txt"
  stop_relay
  rm -rf "$dir"
done
log "results in $OUT"
