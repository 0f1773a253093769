#!/usr/bin/env bash
# bench/xmpp.sh — issue 4's comparison: chatd's fan-out workload against ejabberd 23.01 and
# Prosody 0.12 (the Debian 12 packages), MUC over XMPP-over-WebSocket with MAM on SQLite,
# driven by `chatctl bench xmpp` (the same open-loop generator and report as
# bench/fanout.sh and bench/mosquitto.sh; see docs/BENCHMARKS.md):
#   100 rooms x 10 members:   rising rates (RATES_100x10, default 50,100,200,400,800,1600 msgs/s)
#   2 rooms x 1,000 members:  RATES_2x1000 (default 20 msgs/s), every step run; the join
#                             time of the 2,002 connections is in each run's .log
# A room r<r>@conference.bench.local has one publisher and its members, each a registered
# user logged in with SASL PLAIN; the room reflects each message to its publisher (its ack).
#
# The servers are benchmark-only dependencies, installed when missing with
# `apt-get install -y ejabberd erlang-p1-sqlite3` / `prosody lua-dbi-sqlite3`. The script
# never uses the system service: if the package's postinst started its daemon, the script
# stops that daemon by the pid in the package's pid file (here policy-rc.d kept apt from
# starting any), and runs its own instances on other ports.
# For each server and shape it builds a template once under $WORK — a config, an SQLite
# database holding the R·(M+1) users u0…, and a data directory — and for each of REPEATS
# runs copies it, starts its own server from it on 127.0.0.1:XMPP_PORT (WebSocket at
# /xmpp-websocket), pinned to RELAY_CPU with the nice chatd gets in lib.sh, runs the
# generator on GEN_CPU, and stops that server by its pid. Medians per server and shape at
# the end (bench/summarize.py). Both configs are copied to $OUT.
#
# Users are written straight into the SQLite store (ejabberd: the users table of its
# lite.sql schema, plain passwords — its default; Prosody: `prosodyctl register u0`, then
# u0's SCRAM rows copied to every other user, so they share one salt). Registering 2,002
# users through ejabberdctl would take ~1 s each.
#
# Throttling removed (and only that): ejabberd's c2s shaper (default 3,000 B/s per
# connection) is `none` and max_fsm_queue is 1,000,000 (default 10,000 stanzas queued to a
# session before it is killed); Prosody's mod_limits (10 kB/s per c2s connection in
# Debian's config) is not loaded. Rooms allow 10,000 occupants (ejabberd's default is 200).
# Everything else is each server's default, including how it writes SQLite (see
# bench/XMPP_RESULTS.md).
#
# Environment, besides lib.sh's (REPEATS, RELAY_CPU, GEN_CPU, OUT, CHATCTL, QUIET_WAIT,
# NICE): SERVER ("ejabberd prosody"), SHAPES ("100x10 2x1000"), RATES_100x10,
# RATES_2x1000, XMPP_PORT (15280; Prosody's c2s listener takes XMPP_PORT+1), STEP (seconds
# per step, 5), JOIN_TIMEOUT (600 s).
#   bench/xmpp.sh
#   REPEATS=1 SERVER=prosody SHAPES=100x10 RATES_100x10=50,100 bench/xmpp.sh
BENCH_NO_CHATD=1
source "$(dirname "$0")/lib.sh"
STEP="${STEP:-5}"
SERVER="${SERVER:-ejabberd prosody}"
SHAPES="${SHAPES:-100x10 2x1000}"
RATES_100x10="${RATES_100x10:-50,100,200,400,800,1600}"
RATES_2x1000="${RATES_2x1000:-20}"
XMPP_PORT="${XMPP_PORT:-15280}"
JOIN_TIMEOUT="${JOIN_TIMEOUT:-600}"
DOMAIN=bench.local
PASSWORD=password

# stop_packaged PIDFILE — after our apt-get install only: if the package's postinst started
# its daemon (where policy-rc.d allows it), stop that daemon, by the pid in its pid file.
# No systemctl or service here; a daemon that was running before we installed is left alone.
stop_packaged() {
  local pid
  [ -s "$1" ] || return 0
  pid=$(cat "$1")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    log "stopping the daemon the package started (pid $pid from $1); this script runs its own"
    kill -TERM "$pid" 2>/dev/null || true
  fi
}

for s in $SERVER; do
  case "$s" in
    ejabberd)
      if [ ! -x /usr/sbin/ejabberdctl ] || ! ls -d /usr/lib/erlang/lib/p1_sqlite3-* >/dev/null 2>&1; then
        log "installing ejabberd and erlang-p1-sqlite3 (benchmark-only dependencies)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y ejabberd erlang-p1-sqlite3 >&2
        stop_packaged /run/ejabberd/ejabberd.pid
      fi ;;
    prosody)
      if ! command -v prosody >/dev/null || [ ! -e /usr/lib/x86_64-linux-gnu/liblua5.4-dbi-sqlite3.so.0 ]; then
        log "installing prosody and lua-dbi-sqlite3 (benchmark-only dependencies)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y prosody lua-dbi-sqlite3 >&2
        stop_packaged /run/prosody/prosody.pid
      fi ;;
    *) log "unknown server $s (ejabberd, prosody)"; exit 2 ;;
  esac
done
for p in "$XMPP_PORT" "$((XMPP_PORT + 1))"; do
  if port_open "$p"; then
    log "port $p is in use; set XMPP_PORT to a free pair"
    exit 2
  fi
done
{
  date -u +%Y-%m-%dT%H:%M:%SZ
  dpkg-query -W ejabberd erlang-base erlang-p1-sqlite3 prosody lua5.4 lua-dbi-sqlite3 2>/dev/null || true
  uptime
  top -bn1 | head -15 || true
} >"$OUT/machine.txt"

# ---- ejabberd ----

# ejabberd_config DIR — ejabberd.yml for a server whose data lives in DIR.
ejabberd_config() {
  local dir=$1
  cat <<EOF
# Written by bench/xmpp.sh.
hosts:
  - $DOMAIN
loglevel: warning
log_rotate_count: 0
default_db: sql
sql_type: sqlite
sql_database: "$dir/ejabberd.db"
new_sql_schema: false
auth_method: sql
auth_password_format: plain
listen:
  -
    port: $XMPP_PORT
    ip: "127.0.0.1"
    module: ejabberd_http
    backlog: 1024
    request_handlers:
      /xmpp-websocket: ejabberd_http_ws
access_rules:
  local:
    allow: all
  c2s:
    allow: all
  muc_create:
    allow: all
shaper_rules:
  max_user_sessions: 10
  # Default 'normal' (3,000 B/s per connection) throttles a publisher: none.
  c2s_shaper: none
# Default 10,000 stanzas queued to one session before it is killed.
max_fsm_queue: 1000000
modules:
  mod_caps: {}
  mod_disco: {}
  mod_ping: {}
  mod_roster: {}
  mod_private: {}
  mod_blocking: {}
  mod_privacy: {}
  mod_carboncopy: {}
  mod_client_state: {}
  mod_mam:
    db_type: sql
    assume_mam_usage: true
    default: always
  mod_muc:
    db_type: sql
    access: all
    access_create: muc_create
    access_persistent: muc_create
    access_mam: all
    max_users: 10000
    default_room_options:
      mam: true
      persistent: true
      max_users: 10000
EOF
}

# ejabberd_template DIR USERS — config, schema and USERS users in DIR.
ejabberd_template() {
  local dir=$1 users=$2
  mkdir -p "$dir/spool"
  ejabberd_config "$dir" >"$dir/ejabberd.yml"
  python3 - "$dir/ejabberd.db" "$users" "$PASSWORD" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.executescript(open("/usr/share/ejabberd/sql/lite.sql").read())
db.executemany("INSERT INTO users(username, password) VALUES (?, ?)",
               [(f"u{n}", sys.argv[3]) for n in range(int(sys.argv[2]))])
db.commit()
EOF
}

# ejabberd_start DIR LOG — our own ejabberd (no distribution, so no epmd) on RELAY_CPU;
# erl execs erlexec, which execs beam.smp: $! is the VM's pid.
ejabberd_start() {
  local dir=$1
  sed -i "s|^sql_database: .*|sql_database: \"$dir/ejabberd.db\"|" "$dir/ejabberd.yml"
  EJABBERD_CONFIG_PATH="$dir/ejabberd.yml" EJABBERD_LOG_PATH="$dir/ejabberd.log" \
      ERL_LIBS=/usr/lib/x86_64-linux-gnu ERL_CRASH_DUMP=/dev/null ERL_INETRC=/etc/ejabberd/inetrc \
      nice -n "$NICE" taskset -c "$RELAY_CPU" erl +P 250000 -noinput -noshell \
      -mnesia dir "\"$dir/spool\"" -s ejabberd >"$2" 2>&1 &
  RELAY_PID=$!
}

# ---- Prosody ----

# prosody_config DIR — prosody.cfg.lua for a server whose data lives in DIR.
prosody_config() {
  local dir=$1
  cat <<EOF
-- Written by bench/xmpp.sh.
run_as_root = true  -- our own instance, started by this script (root in this container)
data_path = "$dir/data"
log = { { levels = { min = "warn" }, to = "file", filename = "$dir/prosody.log" } }
interfaces = { "127.0.0.1" }
c2s_ports = { $((XMPP_PORT + 1)) }
c2s_interfaces = { "127.0.0.1" }
s2s_ports = { }
http_ports = { $XMPP_PORT }
http_interfaces = { "127.0.0.1" }
https_ports = { }
http_default_host = "$DOMAIN"
-- Debian's defaults minus s2s, TLS, registration, PEP and "limits" (10 kB/s per c2s
-- connection), plus websocket. No posix: runs in the foreground (-F), no pid file.
modules_enabled = { "roster", "saslauth", "disco", "ping", "websocket", "carbons", "private", "blocklist",
  "vcard_legacy", "csi_simple", "time", "version", "uptime" }
modules_disabled = { "s2s" }
authentication = "internal_hashed"
storage = "sql"
sql = { driver = "SQLite3", database = "prosody.sqlite" }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
consider_websocket_secure = true
VirtualHost "$DOMAIN"
Component "conference.$DOMAIN" "muc"
  modules_enabled = { "muc_mam" }
  muc_room_locking = false
  muc_room_default_persistent = true
  restrict_room_creation = false
EOF
}

prosody_template() {
  local dir=$1 users=$2
  mkdir -p "$dir/data"
  prosody_config "$dir" >"$dir/prosody.cfg.lua"
  prosodyctl --config "$dir/prosody.cfg.lua" register u0 "$DOMAIN" "$PASSWORD" 2>&1 | grep -v certmanager >&2 || true
  python3 - "$dir/data/prosody.sqlite" "$users" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT host, store, key, type, value FROM prosody WHERE user = 'u0' AND store = 'accounts'").fetchall()
assert len(rows) >= 3, rows
db.executemany("INSERT INTO prosody(host, user, store, key, type, value) VALUES (?, ?, ?, ?, ?, ?)",
               [(h, f"u{n}", s, k, t, v) for n in range(1, int(sys.argv[2])) for (h, s, k, t, v) in rows])
db.commit()
EOF
}

prosody_start() {
  local dir=$1
  sed -i "s|^data_path = .*|data_path = \"$dir/data\"|; s|filename = \"[^\"]*\"|filename = \"$dir/prosody.log\"|" \
      "$dir/prosody.cfg.lua"
  nice -n "$NICE" taskset -c "$RELAY_CPU" prosody --config "$dir/prosody.cfg.lua" -F >"$2" 2>&1 &
  RELAY_PID=$!
}

# ---- runs ----

# shape SERVER NAME ROOMS MEMBERS ARGS… — a template, then REPEATS runs of `chatctl bench
# xmpp ARGS…`, each against a fresh copy; $OUT/NAME/run-N.json (and .log: join time and
# RSS), then the medians in $OUT/NAME/summary.txt.
shape() {
  local server=$1 name=$2 rooms=$3 members=$4 n rc
  shift 4
  local tpl="$WORK/tpl-$name" users=$((rooms * (members + 1)))
  mkdir -p "$OUT/$name" "$tpl"
  log "$name: template with $users users"
  "${server}_template" "$tpl" "$users"
  cp "$tpl"/*.yml "$tpl"/*.lua "$OUT/" 2>/dev/null || true
  for n in $(seq 1 "$REPEATS"); do
    local dir="$WORK/run-$name-$n"
    rm -rf "$dir"
    cp -a "$tpl" "$dir"
    wait_quiet
    "${server}_start" "$dir" "$OUT/$name/server-$n.log"
    wait_listening "$XMPP_PORT" "$OUT/$name/server-$n.log" 60
    log "$name run $n/$REPEATS: chatctl bench xmpp --rooms $rooms --members $members $* (server pid $RELAY_PID)"
    rc=0
    nice -n "$NICE" taskset -c "$GEN_CPU" "$CHATCTL" -o json bench xmpp --server "127.0.0.1:$XMPP_PORT" \
        --path /xmpp-websocket --domain "$DOMAIN" --password "$PASSWORD" --pid "$RELAY_PID" \
        --rooms "$rooms" --members "$members" --join-timeout "$JOIN_TIMEOUT" "$@" --no-progress \
        >"$OUT/$name/run-$n.json" 2>"$OUT/$name/run-$n.log" || rc=$?
    cat "$OUT/$name/run-$n.log" >&2
    stop_relay
    for f in "$dir"/*.log; do [ -e "$f" ] && cp "$f" "$OUT/$name/$(basename "$f" .log)-$n.log"; done
    rm -rf "$dir"
    [ "$rc" -eq 0 ] || log "$name run $n: chatctl bench xmpp exited $rc (lost messages or a saturated step; see the JSON)"
  done
  python3 "$ROOT/bench/summarize.py" "$OUT/$name" | tee "$OUT/$name/summary.txt"
}

for server in $SERVER; do
  for s in $SHAPES; do
    case "$s" in
      100x10) shape "$server" "$server-100x10" 100 10 --rates "$RATES_100x10" --duration "$STEP" --warmup 1 ;;
      2x1000) shape "$server" "$server-2x1000" 2 1000 --rates "$RATES_2x1000" --duration "$STEP" --warmup 1 \
          --all-steps ;;
      *) log "unknown shape $s (100x10, 2x1000)"; exit 2 ;;
    esac
    echo
  done
done
log "results in $OUT"
