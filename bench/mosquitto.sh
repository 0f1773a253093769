#!/usr/bin/env bash
# bench/mosquitto.sh — issue 4's comparison: chatd's fan-out workload against Mosquitto
# (MQTT 3.1.1, QoS 1) on this machine, driven by `chatctl bench mqtt` (the same open-loop
# generator and report as bench/fanout.sh; see docs/BENCHMARKS.md):
#   100 rooms x 10 members:   rising rates (RATES_100x10, default 500:16000:x2 msgs/s)
#   2 rooms x 1,000 members:  RATES_2x1000 (default 20,100 msgs/s), every step run
# A room is a topic room/<r> with one publisher and its members as subscribers.
#
# Mosquitto is a benchmark-only dependency: installed with `apt-get install -y mosquitto`
# when not on PATH. The script never uses the system service: for each of REPEATS runs it
# starts its own broker from a temporary config (loopback listener on MQTT_PORT,
# anonymous, persistence off, queues large enough not to drop), pinned to RELAY_CPU with
# the nice chatd gets in lib.sh, runs the generator on GEN_CPU, and stops that broker by
# its pid. Medians per shape at the end (bench/summarize.py).
#
# Environment, besides lib.sh's (REPEATS, RELAY_CPU, GEN_CPU, OUT, CHATCTL, QUIET_WAIT,
# NICE): MQTT_PORT (18830), MQTT_QOS (1), MQTT_INFLIGHT (max_inflight_messages, 0 = no
# limit), MQTT_QUEUED (max_queued_messages, 1000000), STEP (seconds per step, 5).
#   bench/mosquitto.sh
#   REPEATS=3 RATES_100x10=2000,4000 SHAPES=100x10 bench/mosquitto.sh
BENCH_NO_CHATD=1
source "$(dirname "$0")/lib.sh"
STEP="${STEP:-5}"
MQTT_PORT="${MQTT_PORT:-18830}"
MQTT_QOS="${MQTT_QOS:-1}"
MQTT_INFLIGHT="${MQTT_INFLIGHT:-0}"
MQTT_QUEUED="${MQTT_QUEUED:-1000000}"
RATES_100x10="${RATES_100x10:-500:16000:x2}"
RATES_2x1000="${RATES_2x1000:-20,100}"
SHAPES="${SHAPES:-100x10 2x1000}"

if ! command -v mosquitto >/dev/null; then
  log "mosquitto not found; installing the Debian package (benchmark-only dependency)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y mosquitto >&2
fi
MOSQUITTO="$(command -v mosquitto)"
if port_open "$MQTT_PORT"; then
  log "port $MQTT_PORT is in use (a system mosquitto?); set MQTT_PORT to a free one"
  exit 2
fi

CONF="$WORK/mosquitto.conf"
cat >"$CONF" <<EOF
# Written by bench/mosquitto.sh.
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
# Per client; the default of 1000 could drop QoS 1 messages to a subscriber behind.
max_queued_messages $MQTT_QUEUED
max_queued_bytes 0
max_inflight_messages $MQTT_INFLIGHT
set_tcp_nodelay true
max_connections -1
sys_interval 0
log_dest stderr
log_type error
log_type warning
EOF
cp "$CONF" "$OUT/mosquitto.conf"
{
  date -u +%Y-%m-%dT%H:%M:%SZ
  "$MOSQUITTO" -h 2>&1 | head -1 || true  # -h exits 3
  uptime
  top -bn1 | head -15 || true
} >"$OUT/machine.txt"

# start_broker LOG — our own mosquitto on RELAY_CPU; sets RELAY_PID, so lib.sh's
# stop_relay (and its exit trap) stops it by pid.
start_broker() {
  nice -n "$NICE" taskset -c "$RELAY_CPU" "$MOSQUITTO" -c "$CONF" >"$1" 2>&1 &
  RELAY_PID=$!
  wait_listening "$MQTT_PORT" "$1" 5
}

# shape NAME ARGS… — REPEATS runs of `chatctl bench mqtt ARGS…`, each against a fresh
# broker; $OUT/NAME/run-N.json, then the medians in $OUT/NAME/summary.txt.
shape() {
  local name=$1 n rc
  shift
  mkdir -p "$OUT/$name"
  for n in $(seq 1 "$REPEATS"); do
    wait_quiet
    start_broker "$OUT/$name/mosquitto-$n.log"
    log "$name run $n/$REPEATS: chatctl bench mqtt $* (broker pid $RELAY_PID)"
    rc=0
    nice -n "$NICE" taskset -c "$GEN_CPU" "$CHATCTL" -o json bench mqtt --broker "127.0.0.1:$MQTT_PORT" \
        --pid "$RELAY_PID" --qos "$MQTT_QOS" "$@" --no-progress >"$OUT/$name/run-$n.json" || rc=$?
    stop_relay
    [ "$rc" -eq 0 ] || log "$name run $n: chatctl bench mqtt exited $rc (lost messages or a saturated step; see the JSON)"
  done
  python3 "$ROOT/bench/summarize.py" "$OUT/$name" | tee "$OUT/$name/summary.txt"
}

for s in $SHAPES; do
  case "$s" in
    100x10) shape mqtt-100x10 --rooms 100 --members 10 --rates "$RATES_100x10" --duration "$STEP" --warmup 1 ;;
    2x1000) shape mqtt-2x1000 --rooms 2 --members 1000 --rates "$RATES_2x1000" --duration "$STEP" --warmup 1 \
        --all-steps ;;
    *) log "unknown shape $s (100x10, 2x1000)"; exit 2 ;;
  esac
  echo
done
log "results in $OUT"
