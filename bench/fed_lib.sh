# bench/fed_lib.sh — shared by the federation benchmarks (catchup.sh, partition.sh,
# crossrelay.sh); source it after nothing else (it sources bench/lib.sh). Not executable.
#
# Adds to lib.sh: several named relays at once (each with a fixed federation port, so a
# peer's pinned url survives restarts of a copy), pinning them to each other with
# `chatctl peers add` as an operator would, a digest of each relay's envelope log, and the
# medians of the scenarios' JSON (bench/summarize.py knows only the traffic and idle
# shapes). Only the pids started here are ever signalled.

# With kernel.sched_autogroup_enabled (Debian's default) nice only ranks processes within
# one session: NICE would not put chatd and the generator ahead of other sessions' work
# (other jobs' compilers). So the run re-executes itself in a session of its own
# (setsid --wait) and gives that session's autogroup the NICE value (root only).
if [ -z "${FED_SESSION:-}" ] && [ "$(id -u)" -eq 0 ] && [ "${NICE:--10}" -lt 0 ] &&
   [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ] && command -v setsid >/dev/null; then
  export FED_SESSION=1
  exec setsid --wait "$0" "$@"
fi
[ -n "${FED_SESSION:-}" ] && echo "${NICE:--10}" >/proc/self/autogroup 2>/dev/null || true

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

declare -A FED_PID=()

fed_cleanup() {
  local name
  for name in "${!FED_PID[@]}"; do stop_fed "$name" || true; done
  cleanup
}
trap fed_cleanup EXIT

# free_port — a TCP port on 127.0.0.1 that was free a moment ago, below the ephemeral
# range (so that no outgoing connection takes it before a copy of the relay starts again).
free_port() {
  python3 - <<'PY'
import random, socket
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(1000):
    port = random.randrange(max(1024, lo - 12000), lo)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        print(port)
        break
    except OSError:
        pass
    finally:
        s.close()
PY
}

# make_fed_relay DIR NAME NODE — a new relay named NAME with benchmark settings, loopback
# ports picked at start except the federation listener's, which is fixed now.
make_fed_relay() {
  local dir=$1 name=$2 node=$3
  "$CHATCTL" init --data-dir "$dir" --relay "$name" --node-id "$node" --api 127.0.0.1:0 \
      --gateway 127.0.0.1:0 --federation "127.0.0.1:$(free_port)" --admin 127.0.0.1:0 >/dev/null
  local conf="$dir/chatd.toml"
  set_key "$conf" auth register_per_ip_per_min 100000
  set_key "$conf" auth access_token_ttl 86400
  set_key "$conf" limits max_connections 19000
  set_key "$conf" log level '"warn"'
}

# fed_url DIR — ws://HOST:PORT of the relay's federation listener (from its config).
fed_url() {
  echo "ws://$(sed -n 's/^federation *= *"\(.*\)"$/\1/p' "$1/chatd.toml" | head -1)"
}

# start_fed NAME DIR [CPU] — starts chatd for DIR (pinned to CPU when given, at NICE).
start_fed() {
  local name=$1 dir=$2 cpu=${3:-}
  rm -f "$dir/chatd.ports.json"
  if [ -n "$cpu" ]; then
    nice -n "$NICE" taskset -c "$cpu" "$CHATD" --config "$dir/chatd.toml" >"$dir/stdout.log" 2>"$dir/chatd.log" &
  else
    nice -n "$NICE" "$CHATD" --config "$dir/chatd.toml" >"$dir/stdout.log" 2>"$dir/chatd.log" &
  fi
  FED_PID[$name]=$!
  for _ in $(seq 1 200); do
    [ -s "$dir/chatd.ports.json" ] && return 0
    kill -0 "${FED_PID[$name]}" 2>/dev/null || { cat "$dir/chatd.log" >&2; unset "FED_PID[$name]"; return 1; }
    sleep 0.05
  done
  log "chatd $name did not become ready in 10 s"
  return 1
}

# stop_fed NAME — SIGTERM (drain), SIGKILL after 20 s; only the pid started as NAME.
stop_fed() {
  local name=$1 pid=${FED_PID[$1]:-}
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "FED_PID[$name]"
}

# pin DIR PEER_DIR [url] — on the relay of DIR, pin the relay of PEER_DIR (with its
# federation url when the third argument is "url": DIR's relay then dials it).
pin() {
  local dir=$1 peer=$2 mode=${3:-}
  local name key
  name=$(sed -n 's/^name *= *"\(.*\)"$/\1/p' "$peer/chatd.toml" | head -1)
  key=$("$CHATCTL" -c "$peer/chatd.toml" keys show)
  if [ "$mode" = url ]; then
    "$CHATCTL" -c "$dir/chatd.toml" peers add "$name" --url "$(fed_url "$peer")" --key "$key" >/dev/null
  else
    "$CHATCTL" -c "$dir/chatd.toml" peers add "$name" --key "$key" >/dev/null
  fi
}

# unpin DIR NAME — on the relay of DIR, remove peer NAME.
unpin() { "$CHATCTL" -c "$1/chatd.toml" peers remove "$2" >/dev/null; }

# log_digest DIR — SHA-256 of the relay's log as (origin, seq, header hash) in seq order,
# and the per-chat order of messages (chat, id by pos) — read-only, safe while it runs.
log_digest() {
  python3 - "$1/chatd.db" <<'EOF'
import hashlib, sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
h = hashlib.sha256()
for o, s, hh in db.execute("SELECT origin, seq, hex(header_hash) FROM envelopes ORDER BY origin, seq"):
    h.update(f"{o} {s} {hh}\n".encode())
n = db.execute("SELECT count(*) FROM envelopes").fetchone()[0]
print(f"{n} {h.hexdigest()[:16]}")
EOF
}

# fed_summarize DIR — median (min–max) of every numeric field of DIR/run-*.json (and of
# the per-relay arrays' numeric fields), printed and kept in DIR/summary.txt.
fed_summarize() {
  python3 - "$1" <<'EOF' | tee "$1/summary.txt"
import glob, json, os, statistics, sys
runs = []
for p in sorted(glob.glob(os.path.join(sys.argv[1], "run-*.json"))):
    try:
        t = open(p).read().strip()
        if t:
            runs.append(json.loads(t))
    except ValueError as e:
        print(f"skipping {p}: {e}", file=sys.stderr)
if not runs:
    print("no runs"); sys.exit(0)
def flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, bool):
            out[prefix + k] = 1.0 if v else 0.0
        elif isinstance(v, (int, float)):
            out[prefix + k] = float(v)
        elif isinstance(v, dict):
            out.update(flat(v, prefix + k + "."))
        elif isinstance(v, list):
            for i, e in enumerate(v):
                if isinstance(e, dict):
                    out.update(flat(e, prefix + k + "." + str(e.get("name", i)) + "."))
    return out
rows = [flat(r) for r in runs]
keys = []
for r in rows:
    for k in r:
        if k not in keys:
            keys.append(k)
print(f"{runs[0].get('scenario', '?')}: {len(runs)} runs, median (min–max)")
for k in keys:
    vals = [r[k] for r in rows if k in r]
    med = statistics.median(vals)
    fmt = (lambda v: f"{v:,.3f}") if abs(med) < 100 else (lambda v: f"{v:,.0f}")
    spread = "" if min(vals) == max(vals) else f" ({fmt(min(vals))}–{fmt(max(vals))})"
    print(f"  {k:48s} {fmt(med)}{spread}")
EOF
}
