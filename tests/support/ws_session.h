// tests/support/ws_session.h — chatd's JSON events over a WsClient.
//
// A server text frame holds one JSON object or a JSON array of objects (the server
// batches under load, PROTOCOL.md). WsSession splits batches into single events and
// keeps every received event in arrival order until a test takes it, so waiting for one
// type never loses the others: WaitFor("message_sent") returns the first queued or
// arriving message_sent and leaves e.g. new_message events queued for a later wait.
// It also remembers the cursor of the last durable event it saw (auth_ok, new_message,
// sync_done, …), as raw JSON, to send back in `sync`.
//
// One thread at a time; movable.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tests/support/json.h"
#include "tests/support/ws_client.h"

namespace chatd::test {

class WsSession {
 public:
  WsSession() = default;
  explicit WsSession(WsClient client) : ws_(std::move(client)) {}

  WsClient& ws() { return ws_; }
  Status Send(std::string_view json) { return ws_.SendText(json); }

  // The next event, queued or from the wire. A frame that is not JSON (or not objects)
  // is an error naming the frame: the contract says every frame is JSON.
  Result<Json> Next(int timeout_ms);
  // The first event whose "type" is `type`; everything else stays queued.
  Result<Json> WaitFor(std::string_view type, int timeout_ms);
  // The first event matching `pred`; everything else stays queued.
  Result<Json> WaitFor(const std::function<bool(const Json&)>& pred, int timeout_ms);
  // The first event of one of the given types.
  Result<Json> WaitForAny(const std::vector<std::string>& types, int timeout_ms);
  // Sends {"type":"ping"} and waits for "pong": every event the server queued for this
  // session before it handled the ping is then in pending().
  Status Barrier(int timeout_ms = 5000);
  // Reads from the wire for window_ms and queues what arrives (for "nothing arrives"
  // checks, after a Barrier). Stops early on a close.
  void Soak(int window_ms);

  std::deque<Json>& pending() { return pending_; }
  std::vector<Json> TakeAll(std::string_view type);
  size_t CountPending(std::string_view type) const;
  void ClearPending() { pending_.clear(); }

  // Raw JSON text of the newest "cursor" seen on any event ("" if none yet).
  const std::string& last_cursor() const { return last_cursor_; }
  void set_last_cursor(std::string raw) { last_cursor_ = std::move(raw); }

  // Filled by Auth() in fixtures.h.
  std::string user_id;
  Json auth_ok;

 private:
  // Reads one frame and appends its events to pending_.
  Status ReadOnce(int64_t deadline_ms);

  WsClient ws_;
  std::deque<Json> pending_;
  std::string last_cursor_;
};

}  // namespace chatd::test
