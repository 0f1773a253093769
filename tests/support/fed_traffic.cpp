#include "tests/support/fed_traffic.h"

#include <map>

#include "base/time.h"
#include "tests/support/fixtures.h"
#include "tests/support/json.h"

namespace chatd::test {

SendReport SendMany(const HostPort& gateway, const std::string& token, const std::string& chat_id,
                    const std::string& prefix, int n, size_t window, std::atomic<int>* acked, int ack_timeout_ms) {
  SendReport rep;
  int64_t t0 = MonoMs();
  auto s = Auth(gateway, token);
  if (!s.ok()) {
    rep.error = "auth: " + s.status().message();
    return rep;
  }
  std::map<std::string, std::string> inflight;  // temp_id -> content
  int next = 0;
  while (static_cast<int>(rep.acked_ids.size()) < n) {
    while (next < n && inflight.size() < window) {
      std::string content = prefix + "-" + std::to_string(next);
      std::string temp = "t-" + content;
      Status st = s->Send(JsonBuilder().Add("type", "send_message").Add("chat_id", chat_id)
                              .Add("message_type", "text").Add("content", content).Add("temp_id", temp).str());
      if (!st.ok()) {
        rep.error = "send " + content + ": " + st.message();
        rep.elapsed_ms = MonoMs() - t0;
        return rep;
      }
      ++rep.sent;
      inflight[temp] = content;
      ++next;
    }
    auto ev = s->WaitForAny({"message_sent", "error"}, ack_timeout_ms);
    if (!ev.ok()) {
      rep.error = "waiting for acks after " + std::to_string(rep.acked_ids.size()) + ": " + ev.status().message();
      break;
    }
    if (ev->type() == "error") {
      rep.error = "send_message answered " + ev->text();
      break;
    }
    auto it = inflight.find(ev->Str("temp_id"));
    if (it == inflight.end()) {
      rep.error = "message_sent for an unknown temp_id: " + ev->text();
      break;
    }
    rep.acked_ids.push_back(ev->Str("message_id"));
    rep.acked_contents.push_back(it->second);
    inflight.erase(it);
    if (acked) ++*acked;
    // Other members' messages are not this sender's business.
    (void)s->TakeAll("new_message");
  }
  rep.elapsed_ms = MonoMs() - t0;
  return rep;
}

}  // namespace chatd::test
