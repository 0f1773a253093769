# bench/lib.sh — shared by the bench/*.sh scripts (source it; not executable).
#
# Each benchmark builds a template relay once (chatctl init, benchmark settings, users and
# rooms registered by `chatctl bench … --setup-only`, then a clean stop), and for each of
# REPEATS runs copies the template to a fresh directory, starts chatd on CPU RELAY_CPU,
# runs the generator on CPU GEN_CPU, saves its JSON, and stops that chatd. Everything
# lives in one temp directory that is removed on exit; only loopback addresses are used,
# and only the processes started here are ever signalled (by their pid).
#
# Environment: REPEATS (5), RELAY_CPU (0), GEN_CPU (1), OUT (results directory, default
# bench/results/<script>-<timestamp>), CHATD, CHATCTL (binaries, default build/bin/…),
# QUIET_WAIT (most seconds to wait for other processes to calm down before a run, 300),
# NICE (scheduling priority of chatd and the generator, default -10 when root so that
# other work on a shared machine disturbs the runs less; 0 to leave it), RELAY_SET (config
# of each run's relay: "table.key=value ...", e.g. RELAY_SET="store.search=false").

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHATD="${CHATD:-$ROOT/build/bin/chatd}"
CHATCTL="${CHATCTL:-$ROOT/build/bin/chatctl}"
REPEATS="${REPEATS:-5}"
RELAY_CPU="${RELAY_CPU:-0}"
GEN_CPU="${GEN_CPU:-1}"
QUIET_WAIT="${QUIET_WAIT:-300}"
if [ "$(id -u)" -eq 0 ]; then NICE="${NICE:--10}"; else NICE="${NICE:-0}"; fi
SCRIPT_NAME="$(basename "$0" .sh)"
OUT="${OUT:-$ROOT/bench/results/$SCRIPT_NAME-$(date +%Y%m%d-%H%M%S)}"

WORK="$(mktemp -d /tmp/chatd-bench.XXXXXX)"
RELAY_PID=""

cleanup() {
  stop_relay || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

NEEDED_BINS=("$CHATD" "$CHATCTL")
# BENCH_NO_CHATD=1: a script that benchmarks another server (mosquitto.sh) needs only chatctl.
[ "${BENCH_NO_CHATD:-0}" != 1 ] || NEEDED_BINS=("$CHATCTL")
for bin in "${NEEDED_BINS[@]}"; do
  [ -x "$bin" ] || { echo "$SCRIPT_NAME: $bin not found; build first (scripts/build.sh)" >&2; exit 2; }
done
mkdir -p "$OUT"
[ "$(nproc)" -ge 2 ] || echo "$SCRIPT_NAME: warning: fewer than 2 CPUs; chatd and the generator share one" >&2

log() { echo "[$SCRIPT_NAME] $*" >&2; }

# set_key FILE TABLE KEY VALUE — puts "KEY = VALUE" right under "[TABLE]".
set_key() {
  local file=$1 table=$2 key=$3 value=$4
  sed -i "s|^\[$table\]\$|[$table]\n$key = $value|" "$file"
}

# make_relay DIR — a new relay with benchmark settings, on loopback ports picked at start.
make_relay() {
  local dir=$1
  "$CHATCTL" init --data-dir "$dir" --relay bench --node-id 1 --api 127.0.0.1:0 \
      --gateway 127.0.0.1:0 --federation 127.0.0.1:0 --admin 127.0.0.1:0 >/dev/null
  local conf="$dir/chatd.toml"
  set_key "$conf" auth register_per_ip_per_min 100000
  set_key "$conf" auth access_token_ttl 86400
  set_key "$conf" limits max_connections 19000
  set_key "$conf" log level '"warn"'
}

# start_relay DIR [CPU] — starts chatd (pinned to CPU when given); sets RELAY_PID.
start_relay() {
  local dir=$1 cpu=${2:-}
  rm -f "$dir/chatd.ports.json"
  if [ -n "$cpu" ]; then
    nice -n "$NICE" taskset -c "$cpu" "$CHATD" --config "$dir/chatd.toml" >"$dir/stdout.log" 2>"$dir/chatd.log" &
  else
    "$CHATD" --config "$dir/chatd.toml" >"$dir/stdout.log" 2>"$dir/chatd.log" &
  fi
  RELAY_PID=$!
  for _ in $(seq 1 200); do
    [ -s "$dir/chatd.ports.json" ] && return 0
    kill -0 "$RELAY_PID" 2>/dev/null || { cat "$dir/chatd.log" >&2; RELAY_PID=""; return 1; }
    sleep 0.05
  done
  log "chatd did not become ready in 10 s"
  return 1
}

# stop_relay — SIGTERM (drain), then SIGKILL after 20 s; only the pid we started.
stop_relay() {
  [ -n "$RELAY_PID" ] || return 0
  kill -TERM "$RELAY_PID" 2>/dev/null || true
  for _ in $(seq 1 200); do
    kill -0 "$RELAY_PID" 2>/dev/null || { wait "$RELAY_PID" 2>/dev/null || true; RELAY_PID=""; return 0; }
    sleep 0.1
  done
  kill -KILL "$RELAY_PID" 2>/dev/null || true
  wait "$RELAY_PID" 2>/dev/null || true
  RELAY_PID=""
}

# port_open PORT — something listens on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_listening PORT LOG SECONDS — until the server started as RELAY_PID listens on PORT;
# if it exits first, prints LOG and fails.
wait_listening() {
  local port=$1 logf=$2 secs=$3 i
  for ((i = 0; i < secs * 10; i++)); do
    port_open "$port" && return 0
    kill -0 "$RELAY_PID" 2>/dev/null || { cat "$logf" >&2; RELAY_PID=""; return 1; }
    sleep 0.1
  done
  log "the server did not listen on $port in $secs s"
  return 1
}

# busy_pct — percent of all CPUs busy over one second (other processes, nothing of ours runs).
busy_pct() {
  local a b
  a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
  sleep 1
  b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
  echo "$a $b" | awk '{busy=$3-$1; idle=$4-$2; t=busy+idle; pct=0; if (t > 0) pct=100*busy/t; printf "%d\n", pct}'
}

# wait_quiet — waits (at most QUIET_WAIT seconds) until the machine is nearly idle, so
# other processes do not skew a run; each result also reports what others used.
wait_quiet() {
  local waited=0 pct
  while :; do
    pct=$(busy_pct)
    [ "$pct" -le 10 ] && return 0
    if [ "$waited" -ge "$QUIET_WAIT" ]; then
      log "machine still ${pct}% busy after ${QUIET_WAIT}s; running anyway (see other_processes_cpu_pct)"
      return 0
    fi
    [ "$waited" -eq 0 ] && log "machine ${pct}% busy with other work; waiting up to ${QUIET_WAIT}s"
    sleep 4
    waited=$((waited + 5))
  done
}

# template NAME SUBCOMMAND ARGS… — a stopped relay in $WORK/tpl-NAME holding the users and
# rooms `chatctl bench SUBCOMMAND ARGS…` needs (saved in its setup.json).
template() {
  local name=$1
  shift
  local dir="$WORK/tpl-$name"
  make_relay "$dir"
  start_relay "$dir"
  log "$name: registering users and creating rooms (once)"
  "$CHATCTL" bench "$@" --relay-dir "$dir" --setup-only --setup-file "$dir/setup.json" --no-progress
  stop_relay
}

# run_once NAME N SUBCOMMAND ARGS… — copies the template, starts chatd on RELAY_CPU, runs
# the generator on GEN_CPU, writes $OUT/NAME/run-N.json, stops chatd.
run_once() {
  local name=$1 n=$2
  shift 2
  local dir="$WORK/run-$name-$n"
  rm -rf "$dir"
  cp -a "$WORK/tpl-$name" "$dir"
  local kv
  for kv in ${RELAY_SET:-}; do  # "table.key=value ...": config of this run's relay
    local k=${kv%%=*}
    set_key "$dir/chatd.toml" "${k%%.*}" "${k#*.}" "${kv#*=}"
  done
  mkdir -p "$OUT/$name"
  wait_quiet
  start_relay "$dir" "$RELAY_CPU"
  log "$name run $n/$REPEATS: chatctl bench $*"
  local rc=0
  nice -n "$NICE" taskset -c "$GEN_CPU" "$CHATCTL" -o json bench "$@" --relay-dir "$dir" --setup-file "$dir/setup.json" \
      --no-progress >"$OUT/$name/run-$n.json" || rc=$?
  stop_relay
  rm -rf "$dir"
  [ "$rc" -eq 0 ] || log "$name run $n: chatctl bench exited $rc (lost or failed messages; see the JSON)"
}

# repeat_runs NAME SUBCOMMAND ARGS… — the template once, then REPEATS runs, then the
# medians (bench/summarize.py) printed and kept in $OUT/NAME/summary.txt.
repeat_runs() {
  local name=$1
  shift
  template "$name" "$@"
  for n in $(seq 1 "$REPEATS"); do
    run_once "$name" "$n" "$@"
  done
  python3 "$ROOT/bench/summarize.py" "$OUT/$name" | tee "$OUT/$name/summary.txt"
}
