// cli/bench_engine.h — the load generator's WebSocket client engine: many non-blocking
// connections on one epoll loop, owned by one thread.
//
// Each connection binds to one of the configured source addresses (127.0.0.x) before
// connecting, so a process can open more connections than one address has ephemeral ports,
// then upgrades to a WebSocket, sends {"type":"auth","token":…} and becomes ready on
// `auth_ok`. At most `max_connecting` connections are between connect() and auth_ok at a
// time. Server events are handed to the handler with the monotonic time at which their
// bytes were read. Writes are coalesced: SendText() only appends a masked frame to the
// connection's buffer; Poll() writes every touched connection once at the end of its
// iteration. Pings are answered, close frames echoed.
//
// Not thread-safe: an Engine, its Conns and its handler belong to the thread that calls
// Poll(). Conn pointers stay valid for the Engine's lifetime (closed ones included).
#pragma once

#include <netinet/in.h>
#include <sys/epoll.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/time.h"
#include "cli/bench_scan.h"
#include "cli/bench_ws.h"

namespace chatd::cli::bench {

struct EngineOptions {
  sockaddr_in gateway{};  // where to connect
  std::string host;       // Host header, "127.0.0.1:PORT"
  std::string path = "/ws";
  std::vector<in_addr_t> sources;  // source addresses (network order); empty: the kernel picks
  int max_connecting = 256;        // connections between connect() and auth_ok
  size_t max_frame = 16u << 20;    // largest server frame accepted
  size_t max_out = 64u << 20;      // bytes queued for one connection before it counts as stuck
  // Connections added with role `alt_role` connect to `alt_gateway` (Host `alt_host`)
  // instead, when its port is set: receivers on another relay (cross-relay latency).
  sockaddr_in alt_gateway{};
  std::string alt_host;
  int32_t alt_role = 1;
};

struct Conn {
  enum class State : uint8_t { kQueued, kConnecting, kUpgrading, kAuthing, kReady, kClosed };
  State state = State::kQueued;
  bool dirty = false;     // queued for this iteration's flush
  bool want_out = false;  // EPOLLOUT armed
  uint8_t frag_opcode = 0;
  int fd = -1;
  uint32_t index = 0;  // position in the engine
  in_addr_t source = 0;
  // Free for the driver.
  int32_t room = -1;
  int32_t role = 0;
  uint32_t slot = 0;
  std::string token;  // dropped after auth
  std::string key;    // Sec-WebSocket-Key, dropped after the upgrade
  std::string out;    // bytes not yet written, from out_off
  size_t out_off = 0;
  std::string rx;    // an incomplete frame (or HTTP head)
  std::string frag;  // a fragmented message being assembled
};

class EngineHandler {
 public:
  virtual ~EngineHandler() = default;
  virtual void OnReady(Conn* c, int64_t now_ns) = 0;
  virtual void OnEvent(Conn* c, const ScannedEvent& ev, int64_t now_ns) = 0;
  // The connection failed or was closed; `why` says by whom and why.
  virtual void OnClosed(Conn* c, std::string_view why) = 0;
};

struct EngineCounters {
  uint64_t bytes_in = 0, bytes_out = 0, frames_in = 0, reads = 0, writes = 0, events = 0;
  uint64_t connect_failures = 0, closed_by_server = 0, stuck = 0, pings = 0;
};

// Socket and WebSocket client steps shared with the comparison engines
// (bench_room_traffic.h, bench_xmpp.cpp). Thread-compatible.
//
// A non-blocking TCP socket (TCP_NODELAY) connecting to `to`, from `source` (network
// order; 0: the kernel picks) with its port picked at connect(); -1 with *error set.
int StartTcpConnect(const sockaddr_in& to, in_addr_t source, std::string* error);
// Writes out[*off..] until all of it is written or the socket is full, advancing *off and
// counting writes and bytes; false with *error set when the connection failed.
bool WriteOut(int fd, const std::string& out, size_t* off, EngineCounters* counters, std::string* error);
// WriteOut, then drops what was written: the whole buffer once all of it was (*out empty
// and *off 0 after), or the written prefix once it passes 1 MiB.
bool FlushOut(int fd, std::string* out, size_t* off, EngineCounters* counters, std::string* error);

// Mask keys for client frames: a xorshift sequence (varied keys; nothing here needs them
// unpredictable).
class MaskKeys {
 public:
  uint32_t Next() {
    uint32_t x = state_;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    state_ = x;
    return x;
  }

 private:
  uint32_t state_ = 0x9E3779B9u;
};

// Reads the server's answer to UpgradeRequest(…, *key) at the start of *rx. kComplete: the
// connection is a WebSocket, the answer's head is removed from *rx and the key dropped;
// kError: *error says why ("upgrade refused: <status line>", or a wrong
// Sec-WebSocket-Accept).
HttpHead ReadUpgradeResponse(std::string* rx, std::string* key, std::string* error);

// Waits up to `wait_ns` for events: epoll_pwait2, or epoll_wait with milliseconds rounded
// up (at most 1 s) where the kernel lacks it (before 5.11, valgrind), remembered in
// *no_pwait2. Sends may then leave up to 1 ms late (still measured from their intended time).
int WaitEvents(int ep, epoll_event* evs, int max_events, int64_t wait_ns, bool* no_pwait2);
// Arms (or disarms) EPOLLOUT for fd, registered in ep with data.u64 = index.
void SetEpollOut(int ep, int fd, uint64_t index, bool on);

// The close reason of a server's close frame ("closed by the server: CODE", then the
// frame's reason text when `with_text`); appends our echo (the status code) to *out.
std::string AnswerClose(std::string* out, std::string_view payload, uint32_t mask_key, bool with_text);

// What ReadServerFrames did besides handing text messages over.
struct WsRead {
  size_t used = 0;        // bytes consumed
  bool answered = false;  // a pong was appended to *out
  bool closed = false;    // the server sent a close frame: write *out now (the echo), then close
  std::string why;        // why to close the connection; empty: keep it
};

// Reads the server frames in [data, data+len) (writable: see DecodeFrame) as a WebSocket
// client: reassembles a fragmented message in *frag (its opcode in *frag_opcode), hands
// every text message to on_text(payload), which returns whether to go on (false once the
// connection closed), answers pings with pongs and a close frame with its echo (appended to
// *out, masked with keys from *masks; the reason per AnswerClose), and ignores the rest.
// Counts frames and pings in *counters. Stops after a close frame, and on a malformed
// frame or a message over max_message (`why` says which).
template <class OnText>
WsRead ReadServerFrames(char* data, size_t len, size_t max_message, bool close_text, std::string* frag,
                        uint8_t* frag_opcode, std::string* out, MaskKeys* masks, EngineCounters* counters,
                        OnText&& on_text) {
  WsRead r;
  std::string whole;
  while (r.used < len) {
    WsFrame f;
    size_t n = 0;
    WsDecode d = DecodeFrame(data + r.used, len - r.used, /*expect_masked=*/false, max_message, &f, &n);
    if (d == WsDecode::kNeedMore) break;
    if (d == WsDecode::kError) {
      r.why = "malformed frame from the server";
      break;
    }
    r.used += n;
    counters->frames_in++;
    uint8_t opcode = f.opcode;
    std::string_view payload = f.payload;
    if (opcode == kWsContinuation) {
      if (frag->size() + payload.size() > max_message) {
        r.why = "fragmented message too large";
        break;
      }
      frag->append(payload);
      if (!f.fin) continue;
      whole = std::move(*frag);
      frag->clear();
      opcode = *frag_opcode;
      payload = whole;
    } else if (!f.fin && opcode < 0x8) {
      frag->assign(payload);
      *frag_opcode = opcode;
      continue;
    }
    if (opcode == kWsText) {
      if (!on_text(payload)) break;
    } else if (opcode == kWsPing) {
      counters->pings++;
      AppendFrame(out, kWsPong, payload, masks->Next());
      r.answered = true;
    } else if (opcode == kWsClose) {
      r.why = AnswerClose(out, payload, masks->Next(), close_text);
      r.closed = true;
      break;
    }  // binary and pong: ignored
  }
  return r;
}

class Engine {
 public:
  Engine(EngineOptions opts, EngineHandler* handler);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a connection; Poll() opens it when a connecting slot is free.
  Conn* Add(std::string token, int32_t room, int32_t role, uint32_t slot);
  // Appends a masked text frame to the connection's buffer; written at the end of Poll().
  void SendText(Conn* c, std::string_view json);
  // Closes a connection from our side (no handler call).
  void Close(Conn* c);
  // Handles I/O until `until_ns` (absolute, MonoNs()) or until something happened, then
  // flushes pending writes. Returns at once if anything is pending.
  void Poll(int64_t until_ns);

  size_t total() const { return conns_.size(); }
  size_t ready() const { return ready_; }
  size_t open() const { return open_; }
  size_t connecting() const { return connecting_; }
  size_t queued() const { return conns_.size() - next_to_open_; }
  const EngineCounters& counters() const { return counters_; }
  const std::vector<std::unique_ptr<Conn>>& conns() const { return conns_; }

 private:
  void OpenQueued();
  bool StartConnect(Conn* c);
  void OnIo(Conn* c, uint32_t events);
  void ReadAll(Conn* c);
  void Input(Conn* c, char* data, size_t len, int64_t now);
  size_t Frames(Conn* c, char* data, size_t len, int64_t now);
  void Text(Conn* c, std::string_view payload, int64_t now);
  void Flush(Conn* c);
  void Fail(Conn* c, std::string_view why, bool by_server);
  void Touch(Conn* c);
  void SetWantOut(Conn* c, bool on);

  EngineOptions opts_;
  EngineHandler* handler_;
  int ep_ = -1;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<Conn*> dirty_;
  std::vector<char> scratch_;
  size_t next_to_open_ = 0;
  size_t connecting_ = 0, ready_ = 0, open_ = 0;
  size_t next_source_ = 0;
  MaskKeys masks_;
  bool no_pwait2_ = false;  // epoll_pwait2 unavailable: epoll_wait with ms timeouts
  EngineCounters counters_;
};

}  // namespace chatd::cli::bench
