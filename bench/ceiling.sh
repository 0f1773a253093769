#!/usr/bin/env bash
# bench/ceiling.sh — the load generator's own ceiling: the same fan-out shapes as
# bench/fanout.sh, against `chatctl bench sink` (a trivial gateway stand-in that
# acknowledges at once and fans out pre-built frames) instead of chatd. The sink runs on
# RELAY_CPU, the generator on GEN_CPU; the highest sustained step, and the generator's CPU
# there, say how far the generator can measure before it becomes the limit.
#   bench/ceiling.sh
source "$(dirname "$0")/lib.sh"
STEP="${STEP:-5}"
SINK_PID=""

stop_sink() {
  [ -n "$SINK_PID" ] || return 0
  kill -TERM "$SINK_PID" 2>/dev/null || true
  wait "$SINK_PID" 2>/dev/null || true
  SINK_PID=""
}
trap 'stop_sink; cleanup' EXIT

# sink_runs NAME ARGS… — REPEATS runs of `chatctl bench fanout ARGS…` against a fresh sink.
sink_runs() {
  local name=$1
  shift
  mkdir -p "$OUT/$name"
  for n in $(seq 1 "$REPEATS"); do
    wait_quiet
    rm -f "$WORK/sink.port"
    nice -n "$NICE" taskset -c "$RELAY_CPU" "$CHATCTL" bench sink --listen 127.0.0.1:0 --port-file "$WORK/sink.port" \
        >/dev/null 2>"$WORK/sink.log" &
    SINK_PID=$!
    for _ in $(seq 1 100); do [ -s "$WORK/sink.port" ] && break; sleep 0.05; done
    [ -s "$WORK/sink.port" ] || { log "the sink did not start"; cat "$WORK/sink.log" >&2; exit 1; }
    log "$name run $n/$REPEATS"
    nice -n "$NICE" taskset -c "$GEN_CPU" "$CHATCTL" -o json bench fanout "$@" --sink "$(head -1 "$WORK/sink.port")" \
        --pid "$SINK_PID" --no-progress >"$OUT/$name/run-$n.json" || log "$name run $n: exit $?"
    stop_sink
  done
  python3 "$ROOT/bench/summarize.py" "$OUT/$name" | tee "$OUT/$name/summary.txt"
}

sink_runs ceiling-10x100 --rooms 10 --members 100 --rates "${RATES_10x100:-2000:32000:x2}" --duration "$STEP" --warmup 1
echo
sink_runs ceiling-100x10 --rooms 100 --members 10 --rates "${RATES_100x10:-8000:128000:x2}" --duration "$STEP" --warmup 1
log "results in $OUT"
