#!/usr/bin/env bash
# tests/netns/regions.sh — three chatd relays in three network namespaces ("regions"),
# joined by veth pairs to a bridge (in a fourth, hub namespace) with 40 ms one-way delay
# and 1 % loss on each region's link, federated in a chain r1 – r2 – r3 (r1 and r3 dial
# r2). A user posts in region 1; a WebSocket client in region 3 receives the messages
# (two federation hops). Prints the cross-region delivery latency p50/p99, checks that
# the three logs converge to identical envelope sets and identical per-chat order, and
# removes every namespace, link, process and file it created (trap EXIT).
#
# Usage: sudo tests/netns/regions.sh [BUILD_DIR]        (default: <repo>/build)
# Env:   MESSAGES (default 200), INTERVAL_MS (default 25), DELAY_MS (40), LOSS_PCT (1)
# Needs: root, iproute2 (ip netns, tc), /usr/bin/python3 with python3-websockets.
# Skips (exit 0) with a message when it cannot run here. Bounded: a watchdog ends the
# run after 60 s. If the kernel has no netem qdisc (sch_netem), the delay and loss are
# emulated in user space by a small TCP proxy on each federation link (said so in the
# output); everything else is the same.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-$ROOT/build}
BIN=$BUILD/bin
PY=/usr/bin/python3
MESSAGES=${MESSAGES:-200}
INTERVAL_MS=${INTERVAL_MS:-25}
DELAY_MS=${DELAY_MS:-40}
LOSS_PCT=${LOSS_PCT:-1}
LIMIT_S=${LIMIT_S:-60}

skip() { echo "regions.sh: SKIP: $*"; exit 0; }
die() { echo "regions.sh: FAIL: $*" >&2; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
log() { printf '[%6d ms] %s\n' "$(( $(now_ms) - T0 ))" "$*"; }

T0=$(now_ms)
[[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces); run it with sudo"
command -v ip >/dev/null 2>&1 || skip "iproute2 (ip) is not installed"
command -v tc >/dev/null 2>&1 || skip "tc (iproute2) is not installed"
[[ -x $PY ]] && $PY -c 'import websockets' 2>/dev/null || skip "$PY with python3-websockets is needed"
[[ -x $BIN/chatd && -x $BIN/chatctl ]] || die "no $BIN/chatd or $BIN/chatctl (build first, or pass the build dir)"

ID=$$
NS=(chatd-r1-$ID chatd-r2-$ID chatd-r3-$ID)
HUB=chatd-hub-$ID
NAMES=(eu1 us1 ap1)
ADDR=(10.77.0.1 10.77.0.2 10.77.0.3)
FED_PORT=8082
PROXY_PORT=9082
WORK=$(mktemp -d /tmp/chatd-regions-XXXXXX)
PIDS=()
CREATED_NS=()
WATCHDOG=

cleanup() {
  local rc=$?
  set +e
  if [[ -n $WATCHDOG ]]; then pkill -TERM -P "$WATCHDOG" 2>/dev/null; kill "$WATCHDOG" 2>/dev/null; fi
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  for ns in "${CREATED_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  # veth ends still in the root namespace if setup stopped half-way
  for i in 1 2 3; do ip link del "rg$i-$ID" 2>/dev/null; done
  if [[ $rc -ne 0 && -d $WORK ]]; then
    for i in 0 1 2; do
      [[ -f $WORK/r$i/chatd.log ]] && { echo "---- ${NAMES[$i]} chatd.log (tail) ----"; tail -n 15 "$WORK/r$i/chatd.log"; }
    done
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'echo "regions.sh: FAIL: time limit of ${LIMIT_S}s reached" >&2; exit 124' TERM INT
( sleep "$LIMIT_S"; kill -TERM $$ ) 2>/dev/null &
WATCHDOG=$!
disown "$WATCHDOG" 2>/dev/null || true

ip netns add "$HUB" 2>/dev/null || skip "cannot create network namespaces here (ip netns add failed)"
CREATED_NS+=("$HUB")

# Foreground only: background jobs use `ip netns exec` directly, so that $! is the pid of
# the process itself (ip execs it) and cleanup can signal exactly that pid.
inns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# ---- helper (python): HTTP, WebSocket sender/receiver, delay proxy, log digests --------
cat >"$WORK/helper.py" <<'PYEOF'
import asyncio, hashlib, json, math, random, sqlite3, sys, time, urllib.error, urllib.request
import websockets

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

def http(method, url, body=None, token=None, timeout=5):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with OPENER.open(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except Exception:
            return e.code, raw.decode(errors="replace")
    except Exception as e:  # connection refused while starting, timeouts
        return 0, str(e)

def wait(pred, timeout, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()

def cmd_ready(api, timeout):
    ok = wait(lambda: http("GET", api + "/readyz", timeout=1)[0] == 200, float(timeout))
    sys.exit(0 if ok else 1)

def cmd_register(api, username):
    st, b = http("POST", api + "/api/v1/auth/register",
                 {"username": username, "email": username + "@example.test",
                  "password": "pw-" + username + "-Correct.Horse.7", "first_name": "R", "last_name": username})
    if st != 201:
        sys.exit("register %s: %s %s" % (username, st, b))
    print(b["data"]["user_id"], b["data"]["access_token"])

def cmd_create_chat(api, token, other):
    st, b = http("POST", api + "/api/v1/chats", {"chat_type": "direct", "participants": [other]}, token)
    if st not in (200, 201):
        sys.exit("create chat: %s %s" % (st, b))
    print(b["data"]["chat_id"])

def cmd_status(admin, token_file):
    token = open(token_file).read().strip()
    st, b = http("GET", admin + "/admin/v1/status", token=token)
    if st != 200:
        sys.exit("status: %s %s" % (st, b))
    d = b["data"]
    print(json.dumps({"envelopes": d["envelopes"], "vector": d["vector"]}, sort_keys=True, separators=(",", ":")))

def cmd_linked(admin, token_file, peers, timeout):
    token = open(token_file).read().strip()
    want = set(peers.split(","))
    def up():
        st, b = http("GET", admin + "/admin/v1/federation", token=token)
        if st != 200:
            return False
        return want <= {p["name"] for p in b["data"]["peers"] if p["connected"]}
    sys.exit(0 if wait(up, float(timeout)) else 1)

def cmd_history(api, token, chat):
    ids, before = [], None
    while True:
        url = api + "/api/v1/chats/%s/messages?limit=100" % chat + ("&before_id=" + before if before else "")
        st, b = http("GET", url, token=token)
        if st != 200:
            sys.exit("history: %s %s" % (st, b))
        ids += [m["message_id"] for m in b["data"]["messages"]]
        if not b["data"]["has_more"]:
            break
        before = b["data"]["next_before_id"]
    print(len(ids), len(set(ids)), hashlib.sha256(",".join(ids).encode()).hexdigest()[:16])

def cmd_digest(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
    rows = con.execute("SELECT origin, seq, hex(header_hash) FROM envelopes ORDER BY origin, seq").fetchall()
    con.close()
    print(len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()[:16])

def events(raw):
    d = json.loads(raw)
    return d if isinstance(d, list) else [d]

async def auth(ws, token):
    await ws.send(json.dumps({"type": "auth", "token": token}))
    while True:
        for e in events(await asyncio.wait_for(ws.recv(), 10)):
            if e.get("type") == "auth_ok":
                return
            if e.get("type") == "error":
                raise SystemExit("auth: %s" % e)

def cmd_recv(gw, token, n, timeout, ready_file, out_file):
    n, timeout = int(n), float(timeout)
    async def run():
        lat, dups = {}, 0
        async with websockets.connect(gw, max_size=None, ping_interval=None) as ws:
            await auth(ws, token)
            open(ready_file, "w").close()
            end = time.time() + timeout
            while len(lat) < n and time.time() < end:
                try:
                    raw = await asyncio.wait_for(ws.recv(), max(0.01, end - time.time()))
                except asyncio.TimeoutError:
                    break
                now = time.time()
                for e in events(raw):
                    if e.get("type") != "new_message":
                        continue
                    c = e["message"]["content"]
                    if not c.startswith("lat|"):
                        continue
                    _, i, ts = c.split("|")
                    if int(i) in lat:
                        dups += 1
                    else:
                        lat[int(i)] = (now - float(ts)) * 1000.0
        v = sorted(lat.values())
        res = {"received": len(v), "expected": n, "duplicates": dups}
        if v:
            res.update(p50=round(v[(len(v) - 1) // 2], 1), p99=round(v[max(0, math.ceil(0.99 * len(v)) - 1)], 1),
                       min=round(v[0], 1), max=round(v[-1], 1))
        json.dump(res, open(out_file, "w"))
    asyncio.run(run())

def cmd_send(gw, token, chat, n, interval_ms):
    n, interval = int(n), float(interval_ms) / 1000.0
    async def run():
        acked = set()
        async with websockets.connect(gw, max_size=None, ping_interval=None) as ws:
            await auth(ws, token)
            async def reader():
                while len(acked) < n:
                    for e in events(await ws.recv()):
                        if e.get("type") == "message_sent":
                            acked.add(e["temp_id"])
                        elif e.get("type") == "error":
                            raise SystemExit("send: %s" % e)
            rt = asyncio.create_task(reader())
            for i in range(n):
                await ws.send(json.dumps({"type": "send_message", "chat_id": chat, "message_type": "text",
                                          "content": "lat|%d|%.6f" % (i, time.time()), "temp_id": "lat-%d" % i}))
                await asyncio.sleep(interval)
            await asyncio.wait_for(rt, 15)
        print(len(acked))
    asyncio.run(run())

def cmd_proxy(listen_host, listen_port, target_host, target_port, delay_ms, loss_pct):
    # User-space stand-in for netem: every chunk is held delay_ms (order kept); a "lost"
    # one (loss_pct %) is held a further 200 ms, like a TCP retransmission after an RTO.
    delay, loss = float(delay_ms) / 1000.0, float(loss_pct) / 100.0
    async def pipe(reader, writer):
        loop = asyncio.get_running_loop()
        q, last = asyncio.Queue(), 0.0
        async def pump():
            while True:
                t, data = await q.get()
                d = t - loop.time()
                if d > 0:
                    await asyncio.sleep(d)
                if data is None:
                    try:
                        writer.close()
                    except Exception:
                        pass
                    return
                writer.write(data)
                await writer.drain()
        task = asyncio.create_task(pump())
        try:
            while True:
                data = await reader.read(65536)
                t = max(last, loop.time() + delay + (0.2 if random.random() < loss else 0.0))
                last = t
                await q.put((t, data or None))
                if not data:
                    break
        except Exception:
            await q.put((0.0, None))
        await task
    async def handle(r1, w1):
        try:
            r2, w2 = await asyncio.open_connection(target_host, int(target_port))
        except Exception:
            w1.close()
            return
        await asyncio.gather(pipe(r1, w2), pipe(r2, w1), return_exceptions=True)
    async def main():
        srv = await asyncio.start_server(handle, listen_host, int(listen_port))
        async with srv:
            await srv.serve_forever()
    asyncio.run(main())

if __name__ == "__main__":
    globals()["cmd_" + sys.argv[1].replace("-", "_")](*sys.argv[2:])
PYEOF
H="$PY $WORK/helper.py"

# ---- network: hub bridge, one veth pair per region, delay and loss ---------------------
log "namespaces ${NS[*]} + $HUB"
inns "$HUB" ip link add br0 type bridge
inns "$HUB" ip link set br0 up
inns "$HUB" ip link set lo up
for i in 0 1 2; do
  ns=${NS[$i]}
  ip netns add "$ns"
  CREATED_NS+=("$ns")
  ip link add "rg$((i + 1))-$ID" type veth peer name "hb$((i + 1))-$ID"
  ip link set "rg$((i + 1))-$ID" netns "$ns"
  ip link set "hb$((i + 1))-$ID" netns "$HUB"
  inns "$ns" ip link set lo up
  inns "$ns" ip link set "rg$((i + 1))-$ID" name eth0
  inns "$ns" ip addr add "${ADDR[$i]}/24" dev eth0
  inns "$ns" ip link set eth0 up
  inns "$HUB" ip link set "hb$((i + 1))-$ID" master br0
  inns "$HUB" ip link set "hb$((i + 1))-$ID" up
done
EMULATION=netem
for i in 0 1 2; do
  if ! inns "${NS[$i]}" tc qdisc add dev eth0 root netem delay "${DELAY_MS}ms" loss "${LOSS_PCT}%" 2>"$WORK/tc.err"; then
    EMULATION=proxy
    break
  fi
done
if [[ $EMULATION == proxy ]]; then
  for i in 0 1 2; do inns "${NS[$i]}" tc qdisc del dev eth0 root 2>/dev/null || true; done
  log "netem is not available in this kernel ($(tr -d '\n' <"$WORK/tc.err")):"
  log "  emulating ${DELAY_MS} ms one-way delay and ${LOSS_PCT}% loss with a user-space TCP proxy on each federation link"
else
  log "tc netem: ${DELAY_MS} ms delay, ${LOSS_PCT}% loss on each region's eth0 (one way per hop)"
fi

# ---- relays: init, pin peers (chain), start ------------------------------------------------
for i in 0 1 2; do
  inns "${NS[$i]}" "$BIN/chatctl" init --data-dir "$WORK/r$i" --relay "${NAMES[$i]}" --node-id $((i + 1)) \
    --api 127.0.0.1:8080 --gateway 127.0.0.1:8081 --federation "${ADDR[$i]}:$FED_PORT" --admin 127.0.0.1:8083 >/dev/null
done
key() { "$BIN/chatctl" -c "$WORK/r$1/chatd.toml" keys show; }
K=("$(key 0)" "$(key 1)" "$(key 2)")
ctl() { local i=$1; shift; inns "${NS[$i]}" "$BIN/chatctl" -c "$WORK/r$i/chatd.toml" "$@" >/dev/null; }
B_URL="ws://${ADDR[1]}:$FED_PORT"
for i in 0 2; do
  url=$B_URL
  if [[ $EMULATION == proxy ]]; then
    ip netns exec "${NS[$i]}" $H proxy 127.0.0.1 "$PROXY_PORT" "${ADDR[1]}" "$FED_PORT" "$DELAY_MS" "$LOSS_PCT" \
      >"$WORK/proxy$i.log" 2>&1 &
    PIDS+=($!)
    url="ws://127.0.0.1:$PROXY_PORT"
  fi
  ctl $i peers add "${NAMES[1]}" --url "$url" --key "${K[1]}"
  ctl 1 peers add "${NAMES[$i]}" --key "${K[$i]}"
done
ctl 0 peers add "${NAMES[2]}" --key "${K[2]}"
ctl 2 peers add "${NAMES[0]}" --key "${K[0]}"
for i in 1 0 2; do
  ip netns exec "${NS[$i]}" "$BIN/chatd" --config "$WORK/r$i/chatd.toml" >"$WORK/r$i/chatd.stdout" 2>"$WORK/r$i/chatd.log" &
  PIDS+=($!)
done
API=http://127.0.0.1:8080
ADMIN=http://127.0.0.1:8083
GW=ws://127.0.0.1:8081/ws
for i in 0 1 2; do inns "${NS[$i]}" $H ready "$API" 15 || die "${NAMES[$i]} not ready"; done
inns "${NS[1]}" $H linked "$ADMIN" "$WORK/r1/admin.token" "${NAMES[0]},${NAMES[2]}" 15 || die "links to ${NAMES[1]} not up"
log "relays up and linked: ${NAMES[0]} -> ${NAMES[1]} <- ${NAMES[2]}"

status() { inns "${NS[$1]}" $H status "$ADMIN" "$WORK/r$1/admin.token"; }
converge() {  # converge TIMEOUT_S: all three admin statuses equal
  local end=$(( $(now_ms) + $1 * 1000 ))
  while (( $(now_ms) < end )); do
    local s0 s1 s2
    s0=$(status 0); s1=$(status 1); s2=$(status 2)
    [[ $s0 == "$s1" && $s1 == "$s2" ]] && { echo "$s0"; return 0; }
    sleep 0.05
  done
  echo "r1 $(status 0) | r2 $(status 1) | r3 $(status 2)"
  return 1
}

# ---- users and a chat across regions --------------------------------------------------------
read -r ALICE ALICE_TOK < <(inns "${NS[0]}" $H register "$API" alice)
read -r CAROL CAROL_TOK < <(inns "${NS[2]}" $H register "$API" carol)
[[ -n ${ALICE_TOK:-} && -n ${CAROL_TOK:-} ]] || die "registration failed"
converge 15 >/dev/null || die "users did not replicate"
CHAT=$(inns "${NS[0]}" $H create-chat "$API" "$ALICE_TOK" "$CAROL")
converge 15 >/dev/null || die "the chat did not replicate"
log "alice@${NAMES[0]} and carol@${NAMES[2]} share chat $CHAT"

# ---- cross-region delivery latency: post in region 1, receive in region 3 ------------------
ip netns exec "${NS[2]}" $H recv "$GW" "$CAROL_TOK" "$MESSAGES" 30 "$WORK/recv.ready" "$WORK/recv.json" &
RECV=$!
PIDS+=($RECV)
for _ in $(seq 1 200); do [[ -f $WORK/recv.ready ]] && break; sleep 0.05; done
[[ -f $WORK/recv.ready ]] || die "the receiver in region 3 did not authenticate"
T_SEND=$(now_ms)
ACKED=$(inns "${NS[0]}" $H send "$GW" "$ALICE_TOK" "$CHAT" "$MESSAGES" "$INTERVAL_MS")
log "sent $MESSAGES messages in region 1 ($ACKED acknowledged) in $(( $(now_ms) - T_SEND )) ms"
wait "$RECV" || die "receiver failed"
T_CONV=$(now_ms)
FINAL=$(converge 20) || die "no convergence within 20 s: $FINAL"
CONV_MS=$(( $(now_ms) - T_CONV ))

# ---- identical logs and per-chat order -------------------------------------------------------
D=() HIST=()
for i in 0 1 2; do
  D+=("$($H digest "$WORK/r$i/chatd.db")")
  HIST+=("$(inns "${NS[$i]}" $H history "$API" "$ALICE_TOK" "$CHAT")")
done
RES=$(cat "$WORK/recv.json")
echo
echo "=== regions.sh results (${EMULATION}: ${DELAY_MS} ms one-way per hop, ${LOSS_PCT}% loss; 2 hops ${NAMES[0]} -> ${NAMES[1]} -> ${NAMES[2]}) ==="
echo "cross-region delivery latency: $($PY -c 'import json,sys; r=json.load(open(sys.argv[1])); print("p50 %s ms, p99 %s ms (min %s, max %s; %d/%d received, %d duplicates)" % (r.get("p50"), r.get("p99"), r.get("min"), r.get("max"), r["received"], r["expected"], r["duplicates"]))' "$WORK/recv.json")"
echo "convergence after the last delivery: ${CONV_MS} ms; final status: $FINAL"
for i in 0 1 2; do echo "  ${NAMES[$i]}: envelopes/digest ${D[$i]}; chat history count/unique/digest ${HIST[$i]}"; done
FAILS=0
[[ $ACKED -eq $MESSAGES ]] || { echo "FAIL: $ACKED of $MESSAGES sends acknowledged"; FAILS=1; }
$PY -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["received"]==r["expected"] and r["duplicates"]==0 else 1)' "$WORK/recv.json" \
  || { echo "FAIL: region 3 did not receive every message exactly once"; FAILS=1; }
[[ ${D[0]} == "${D[1]}" && ${D[1]} == "${D[2]}" ]] || { echo "FAIL: envelope sets differ"; FAILS=1; }
[[ ${HIST[0]} == "${HIST[1]}" && ${HIST[1]} == "${HIST[2]}" ]] || { echo "FAIL: per-chat history differs"; FAILS=1; }
read -r hn hu _ <<<"${HIST[0]}"
[[ $hn -eq $MESSAGES && $hu -eq $hn ]] || { echo "FAIL: history holds $hn messages ($hu unique), expected $MESSAGES"; FAILS=1; }
log "done"
[[ $FAILS -eq 0 ]] && echo "PASS" || exit 1
