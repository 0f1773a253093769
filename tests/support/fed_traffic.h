// tests/support/fed_traffic.h — message traffic for federation tests, safe to run on a
// worker thread (no Catch macros, its own WebSocket session): SendMany() authenticates on
// a gateway and sends n text messages with up to `window` unacknowledged, recording every
// message_sent (the acknowledged, hence durable, messages). It stops at the first error
// (a killed relay, say) and reports it; what was acknowledged before stays recorded.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/http.h"

namespace chatd::test {

struct SendReport {
  std::vector<std::string> acked_ids;       // message_id of every message_sent, in ack order
  std::vector<std::string> acked_contents;  // the matching contents
  int sent = 0;                             // send_message frames written
  std::string error;                        // "" if all n were acknowledged
  int64_t elapsed_ms = 0;
};

// Contents are prefix + "-" + i. `acked` (optional) is incremented once per ack.
SendReport SendMany(const HostPort& gateway, const std::string& token, const std::string& chat_id,
                    const std::string& prefix, int n, size_t window = 16, std::atomic<int>* acked = nullptr,
                    int ack_timeout_ms = 10000);

}  // namespace chatd::test
