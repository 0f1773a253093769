// relay/session.h — one client WebSocket session. Gateway thread only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "relay/wsframe.h"

struct lws;

namespace chatd {

struct Queued {
  Frame frame;
  uint64_t cursor = 0;
};

struct Session {
  uint64_t id = 0;
  lws* wsi = nullptr;
  uint64_t user_id = 0, device_id = 0;
  std::vector<Queued> out;   // frames waiting for WRITEABLE; out_head is the next to send
  size_t out_head = 0;
  size_t out_bytes = 0;
  std::vector<Queued> held;  // live events held while a sync is running
  std::string rx;            // a message arriving in fragments
  uint64_t synced_upto = 0;  // live events at or below this cursor were sent by sync
  uint64_t live_from = 0;    // every event after this cursor reaches the session live
  // A running sync reads (sync_from, sync_upper] a page at a time, paced by the queue.
  uint64_t sync_from = 0, sync_upper = 0, sync_at = 0;
  int sync_sent = 0;
  bool sync_waiting = false;  // the next page waits for the queue to drain
  const char* close_reason = nullptr;
  uint16_t close_code = 0;
  uint8_t bad_frames = 0;
  bool authed = false;
  bool syncing = false;
  bool rx_overflow = false;
  bool close_after_flush = false;
  bool want_write = false;   // a WRITEABLE callback is already requested
  bool dirty = false;        // in the gateway's list to write at the end of the loop pass
  bool ping_pending = false;  // a WebSocket ping goes out with the next write
  // Write coalescing (Gateway::FlushDirty): the loop clock of the last direct write, and
  // the frames queued in the current and the previous window of gateway.write_hold_ms.
  uint64_t last_write_ms = 0;
  uint64_t rate_window_ms = 0;
  uint32_t window_frames = 0, prev_window_frames = 0;
  // Ephemeral frames (typing, presence, call signals): a token bucket (Gateway::TakeEphemeral).
  uint64_t eph_ms = 0;  // loop clock up to which tokens were added; 0 = never used
  uint16_t eph_tokens = 0;
  // Liveness (Gateway::Sweep): the session sits in one slot of the gateway's timing wheel,
  // an intrusive list, until its next deadline (auth, ping, hang-up, close grace).
  Session* wheel_prev = nullptr;
  Session* wheel_next = nullptr;
  int32_t wheel_slot = -1;      // -1: not in the wheel
  uint32_t due = 0;             // gateway tick (seconds) of the next liveness check
  uint32_t opened = 0;          // tick of the connection (auth deadline)
  uint32_t last_rx = 0;         // tick of the last frame or pong received
};

}  // namespace chatd
