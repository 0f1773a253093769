// cli/bench_room_traffic.h — what the comparison engines of `chatctl bench` share (mqtt:
// bench_mqtt.h, xmpp: bench_xmpp.h): R rooms, each with one publisher connection and M
// receiving ones, driven through the fan-out scenario's rate steps on one epoll loop.
//
// RoomTraffic owns everything but the protocol. The sockets: connecting from the loopback
// sources with at most `max_connecting` connections between connect() and ready, reading,
// coalesced writes (Touch() queues a connection, Poll() writes each queued one once at the
// end of its iteration), failures counted by reason. The schedule (bench_traffic.h): per
// step a warmup, a measured window and a drain; message i of a step is due at
// start + i / rate whatever happened before, publishers taking turns, and its content
// (bench_scan.h) carries step, room, sequence number and intended send time, so latency
// runs from the intended time (no coordinated omission). The bookkeeping: messages sent,
// deliveries owed (counted when a message is sent), acknowledgements with their latency,
// and each receiver's deliveries through its own SeqTracker (loss, duplicates, reordering);
// the progress line, the "sustained" rule, and the TrafficResult.
//
// An engine derives from it and speaks the protocol: it adds its connections, OnConnected()
// queues a connection's first bytes, Input() consumes what was read (calling MarkReady()
// once the connection may carry traffic, Ack() when the server acknowledged a publisher's
// message, Deliver() with the content of each message a receiver got), and Send() writes
// one message.
//
// Not thread-safe: a RoomTraffic and its connections belong to the thread that runs it.
#pragma once

#include <netinet/in.h>
#include <sys/epoll.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "cli/bench_engine.h"
#include "cli/bench_stats.h"
#include "cli/bench_traffic.h"

namespace chatd::cli::bench {

// A message a publisher sent, by its sequence number.
struct SentMessage {
  int64_t t_ns = 0;  // intended send time
  int32_t step = -1;
  bool done = false;  // acknowledged
};

// One connection. An engine derives its own with the protocol's state.
struct RoomConn {
  // The engine numbers its handshake stages from kHandshake up (below kReady).
  enum State : uint8_t { kQueued = 0, kConnecting = 1, kHandshake = 2, kReady = 254, kClosed = 255 };
  virtual ~RoomConn() = default;

  uint8_t state = kQueued;
  bool publisher = false;
  bool dirty = false, want_out = false;
  int fd = -1;
  uint32_t index = 0;  // position in the engine
  uint32_t room = 0;
  std::string out;  // bytes not yet written, from out_off
  size_t out_off = 0;
  std::string rx;                 // bytes read and not yet consumed (the engine's to manage)
  SeqTracker tracker;             // a receiver's view of its room's publisher
  std::vector<SentMessage> sent;  // a publisher's messages by sequence number
};

// What every comparison engine is given; MqttConfig and XmppConfig add the protocol's.
struct RoomTrafficConfig {
  int pid = 0;  // the server's pid, for CPU and RSS; 0: not sampled
  int rooms = 100;
  int members = 10;  // receiving connections per room, besides its publisher
  // Rates, warmup, duration, drain, size, sources, max_connecting, connect_timeout_s,
  // all_steps, progress; `window` and `threads` are not used.
  TrafficConfig traffic;
};

// The checks every engine makes: rates to run, at least one room and one member.
Status CheckRoomShape(const RoomTrafficConfig& cfg);

class RoomTraffic {
 public:
  virtual ~RoomTraffic();
  RoomTraffic(const RoomTraffic&) = delete;
  RoomTraffic& operator=(const RoomTraffic&) = delete;

  // Runs step after step of tc.rates, stopping after the first one not sustained unless
  // all_steps; then hands the steps and counters over to *res. Call once connected.
  void RunSteps(TrafficResult* res);

 protected:
  // `protocol` names the steps of the progress line ("mqtt"); `peer` the server in
  // messages ("broker", "server"). The config outlives the RoomTraffic.
  RoomTraffic(const RoomTrafficConfig& cfg, std::string protocol, std::string peer);

  // Takes the peer's IPv4 HOST:PORT and sets up the loop; the first call.
  Status Open(const std::string& address);
  // Adds a connection, queued until Poll() opens it.
  void Add(std::unique_ptr<RoomConn> c, uint32_t room, bool publisher);
  // Polls until every connection is ready or failed, or connect_timeout_s passed (the
  // progress line shows ConnectingLine()); sets res's connections, deliveries per message,
  // connect_s and ready, and t_connect_ / t_connected_. An error unless all are ready:
  // "N of M connections <not_ready> (first reason)".
  Status ConnectAll(TrafficResult* res, std::string_view not_ready);
  // Starts the progress line's rates from now; call when connected.
  void StartProgress();
  // Handles I/O until `until_ns` (absolute, MonoNs()) or until something happened, then
  // writes what Touch() queued. Returns at once if anything is queued.
  void Poll(int64_t until_ns);

  // For the engine's handlers.
  void Touch(RoomConn* c);
  void Flush(RoomConn* c);
  void Fail(RoomConn* c, std::string_view why, bool by_server);
  void MarkReady(RoomConn* c);
  // Publisher p's message `seq` was acknowledged (the engine checked it was not already).
  void Ack(RoomConn* p, uint64_t seq, int64_t now);
  // Receiver s got `content` (ours or not: it is checked).
  void Deliver(RoomConn* s, std::string_view content, int64_t now);

  // TCP is connected (state kHandshake): queue the first bytes; they are written at once.
  virtual void OnConnected(RoomConn* c) = 0;
  // Bytes read from c.
  virtual void Input(RoomConn* c, const char* data, size_t len, int64_t now) = 0;
  // Queues message `seq` of ready publisher p; false (its error counted) when it cannot.
  virtual bool Send(RoomConn* p, uint64_t seq, std::string_view content) = 0;
  // c failed or was closed (its socket is closed, its output dropped).
  virtual void OnClosed(RoomConn* c) {}
  // The progress line while connecting.
  virtual std::string ConnectingLine() const;

  const TrafficConfig& tc_;
  const int pid_;
  bool acked_when_written_ = false;  // nothing acknowledges a message: written counts
  std::vector<std::unique_ptr<RoomConn>> conns_;
  size_t ready_ = 0;
  int64_t t_connect_ = 0, t_connected_ = 0;  // ConnectAll's start and end
  EngineCounters counters_;
  std::map<std::string, uint64_t> closes_, errors_;

 private:
  struct Window {
    int64_t t_start = 0, t_measure = 0, t_end = 0;
    bool Holds(int64_t t) const { return t >= t_measure && t < t_end; }
  };

  void OpenQueued();
  void StartConnect(RoomConn* c);
  void OnIo(RoomConn* c, uint32_t events);
  void SetWantOut(RoomConn* c, bool on);
  bool RunStep(size_t k);
  int64_t SendDue(const Window& w, int64_t now);
  void Publish(RoomConn* p, int64_t intended);
  void Progress(const std::string& label);

  const int members_;
  const std::string protocol_, peer_;
  sockaddr_in peer_addr_{};
  std::vector<in_addr_t> sources_;
  int ep_ = -1;
  bool no_pwait2_ = false;
  std::vector<RoomConn*> publishers_;
  std::vector<RoomConn*> dirty_;
  std::vector<char> scratch_;
  std::string content_;
  size_t next_to_open_ = 0, connecting_ = 0;
  // The steps so far; cur_ is the one being sent.
  std::vector<Window> windows_;
  std::vector<StepResult> steps_;
  int cur_ = -1;
  uint64_t step_sent_ = 0;
  uint64_t sent_ = 0, acked_ = 0, arrivals_ = 0, expected_ = 0, delivered_ = 0;
  // Progress display: totals and CPU at the last line.
  int64_t last_t_ = 0;
  uint64_t last_sent_ = 0, last_arrivals_ = 0;
  double last_cpu_ = 0, last_gen_ = 0;
};

}  // namespace chatd::cli::bench
