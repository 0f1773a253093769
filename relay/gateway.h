// relay/gateway.h — client WebSocket sessions on their own thread (libwebsockets, libuv loop).
//
// The gateway thread owns every session: parsing client frames, subscriptions (a session
// receives everything addressed to its user), per-session send queues and fan-out. It
// hands validated requests to the core with Core::Post and receives committed deliveries
// through Deliver() (any thread: a locked inbox plus lws_cancel_service()). Sync pages are
// read by the worker pool and come back through the same inbox.
//
// Writes: every frame is encoded once (relay/wsframe.h) and shared; at the end of each loop
// pass (FlushDirty) every session with queued frames sends them in one
// lws_write(LWS_WRITE_RAW); under load a session written < gateway.write_hold_ms ago waits
// for its turn (write coalescing; ARCHITECTURE.md, life of a message step 5). A session whose
// queue exceeds limits.session_queue_bytes is closed ("slow consumer") and resumes with
// `sync` from its cursor. Sessions are freed only from lws' CLOSED callback.
//
// Liveness is ours, not lws': its per-connection validity timers live in one sorted list
// (O(connections) per insertion, so idle CPU grew with the square of the connection
// count). Instead one 1 s timer sweeps a timing wheel of 64 one-second slots; each session
// sits in the slot of its next deadline (auth timeout, next ping, hang-up, close grace) and
// is touched only then, so a tick costs O(sessions due), never O(sessions).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include <uv.h>
#include <vector>

#include "base/json.h"
#include "conf/config.h"
#include "relay/auth.h"
#include "relay/core.h"
#include "relay/federation.h"
#include "relay/workers.h"

struct lws;
struct lws_context;
struct lws_vhost;
struct lws_protocols;
struct lws_retry_bo;

namespace chatd {

struct Session;

struct GatewayStats {
  std::atomic<uint64_t> sessions{0}, authenticated{0}, frames_in{0}, frames_out{0}, bytes_out{0},
      writes{0}, bad_frames{0}, slow_consumers{0}, accepted{0};
};

class Gateway final : public DeliverySink {
 public:
  Gateway(const conf::Config& cfg, Core& core, TokenService& tokens, Workers& workers,
          uint64_t initial_cursor);
  ~Gateway() override;

  // Creates the lws context on the gateway thread and waits until it listens.
  Status Start();
  int port() const { return port_; }
  int federation_port() const { return fed_port_; }
  // Thread-safe: committed deliveries, in commit order.
  void Deliver(std::vector<Delivery>&& batch) override;
  // Thread-safe: refuse new connections and new requests (drain, step 1).
  void BeginDrain();
  // Thread-safe: flush queues, close every session with 1001 and a reason, stop the thread.
  void Stop();
  const GatewayStats& stats() const { return stats_; }
  // Thread-safe: replace the pinned peers (federation links follow).
  void SetPeers(std::vector<conf::Peer> peers);
  // Thread-safe: the federation status as JSON (waits for the gateway thread).
  std::string FederationStatus();

  // ---- gateway thread only (used by the lws callback and session handlers) ----
  static int Callback(lws* wsi, int reason, void* user, void* in, size_t len);
  int FederationCallback(lws* wsi, int reason, void* in, size_t len) {
    return federation_ ? federation_->Callback(wsi, reason, in, len) : 0;
  }

 private:
  using Task = std::function<void()>;
  void Run(std::promise<Status>* started);
  Status CreateVhost(const char* name, const conf::HostPort& hp, lws_protocols* protocols,
                     const struct lws_retry_bo* retry, lws_vhost** out, int* port);
  void Post(Task task);
  void ExitLoop();
  void RunInbox();
  void ApplyDeliveries(std::vector<Delivery>& batch);

  // Liveness (gateway thread). Ticks are whole seconds of the loop's clock since Run().
  uint32_t NowTick() const;
  void Schedule(Session* s, uint32_t due);
  void Unschedule(Session* s);
  void Sweep();                                  // the 1 s timer: every slot up to now
  void CheckLiveness(Session* s, uint32_t now);  // a session whose deadline came
  void SendPing(Session* s);                     // with the session's next write (FlushDirty)
  void Touch(Session* s);                        // a frame or pong arrived

  // Session handling (relay/session.cpp).
  void OnOpen(lws* wsi, Session** slot);
  void OnReceive(Session* s, const char* data, size_t len, bool first, bool final, bool binary);
  int OnWriteable(Session* s);
  void OnClosed(Session* s);
  void HandleFrame(Session* s, std::string_view text);
  void HandleAuth(Session* s, const json::Value& v);
  void Enqueue(Session* s, const Frame& frame, uint64_t cursor);
  void RequestWrite(Session* s);    // queued frames: written at the end of this loop pass
  void WantWriteable(Session* s);   // ask lws for a WRITEABLE callback
  void FlushDirty();                // the loop pass's end: write every session RequestWrite named
  bool WriteQueued(Session* s);     // one write of the queued frames (and a due ping); false: gone
  void SendJson(Session* s, std::string_view json);
  void SendError(Session* s, const Status& st, std::string_view ref);
  void CloseSession(Session* s, int code, const char* reason);
  void StartSync(Session* s, uint64_t cursor);
  void RequestSyncPage(Session* s);
  void FinishSync(Session* s, uint64_t from, uint64_t upto, bool has_more);
  // Runs `op` on the core thread; sends its reply frame (built on the core thread) to the
  // session after the batch commits.
  void CoreRequest(Session* s, std::function<std::string(Core&)> op);

  const conf::Config& cfg_;
  Core& core_;
  const TokenService& tokens_;
  Workers& workers_;
  GatewayStats stats_;

  std::thread thread_;
  uv_loop_t loop_{};
  lws_context* context_ = nullptr;
  lws_vhost* vhost_ = nullptr;
  int port_ = 0;
  lws_vhost* fed_vhost_ = nullptr;
  int fed_port_ = 0;

  std::mutex mu_;
  std::vector<Task> inbox_;     // guarded by mu_
  bool stop_requested_ = false; // guarded by mu_
  bool stopped_ = false;         // guarded by mu_
  std::promise<void> exit_promise_;
  std::future<void> exited_ = exit_promise_.get_future();

  // Gateway-thread state.
  bool draining_ = false;
  bool closing_all_ = false;
  bool exit_loop_ = false;
  uint64_t next_session_id_ = 1;
  uint64_t last_cursor_ = 0;
  std::unordered_map<uint64_t, Session*> sessions_;
  std::unordered_map<uint64_t, std::vector<Session*>> by_user_;
  std::vector<unsigned char> scratch_;
  static constexpr uint32_t kWheelSlots = 64;
  static constexpr uint32_t kCloseGraceS = 10;  // a close frame that cannot leave: hang up
  Session* wheel_[kWheelSlots] = {};
  uint32_t wheel_tick_ = 0;  // the last tick swept
  uint64_t wheel_base_ms_ = 0;
  uv_timer_t liveness_timer_{};
  uv_prepare_t flush_prep_{};
  std::vector<uint64_t> dirty_;  // sessions with frames to write at the end of this loop pass
  // Write coalescing under load (gateway.write_hold_ms): while the gateway sends at least
  // gateway.write_hold_above frames/s, a session written less than hold_ms_ ago waits
  // until then, in held_, so one send() carries more frames (a loopback send() costs ~5 µs
  // of kernel time here, about as much for one frame as for ten).
  uint64_t hold_ms_ = 0;
  uint64_t hold_above_ = 0;                      // frames/s
  static constexpr uint32_t kHoldMinFrames = 3;  // in the last window: worth holding
  // Frames queued for `s` in its last whole window of hold_ms_ (rolls the window first).
  uint32_t RecentFrames(Session* s, uint64_t now) const;
  // One token of the session's ephemeral-frame bucket; false (and the seconds until the
  // next token in *retry_after) when it is empty.
  bool TakeEphemeral(Session* s, int* retry_after);
  bool busy_ = false;
  uint64_t busy_window_ms_ = 0, busy_window_frames_ = 0;
  // Held sessions by due time: slot due % kHoldSlots (gateway.write_hold_ms <= 100), so a
  // release touches only the sessions due, never every held one.
  static constexpr uint64_t kHoldSlots = 128;
  std::vector<uint64_t> held_[kHoldSlots];
  size_t held_count_ = 0;
  uint64_t held_swept_ms_ = 0;   // slots up to this time are empty
  uint64_t hold_timer_due_ = 0;  // 0: not armed
  uv_timer_t hold_timer_{};
  void ReleaseHeld();  // the hold timer: held sessions whose time came go back to dirty_
  void ArmHoldTimer(uint64_t due, uint64_t now);
  std::unique_ptr<Federation> federation_;
  std::vector<conf::Peer> initial_peers_;
  TokenService& keys_;
};

}  // namespace chatd
