#include "tests/support/ws_session.h"

#include <algorithm>

#include "base/time.h"

namespace chatd::test {

Status WsSession::ReadOnce(int64_t deadline_ms) {
  int left = static_cast<int>(std::max<int64_t>(0, deadline_ms - MonoMs()));
  auto text = ws_.RecvText(left);
  if (!text.ok()) return text.status();
  auto doc = Json::Parse(*text);
  if (!doc.ok()) {
    return Status(Code::kCorrupt, "server frame is not JSON (" + doc.status().message() +
                                      "): " + text->substr(0, 300));
  }
  auto take = [&](const rapidjson::Value& v) -> Status {
    if (!v.IsObject()) {
      return Status(Code::kCorrupt, "server frame holds a non-object: " + text->substr(0, 300));
    }
    Json ev = Json::FromValue(v);
    const rapidjson::Value& cursor = Get(v, "cursor");
    if (!cursor.IsNull()) last_cursor_ = Dump(cursor);
    pending_.push_back(std::move(ev));
    return Status::Ok();
  };
  const rapidjson::Value& root = doc->root();
  if (root.IsArray()) {
    for (const auto& v : root.GetArray()) {
      if (Status s = take(v); !s.ok()) return s;
    }
    return Status::Ok();
  }
  if (root.IsObject()) {
    // Keep the original text for a single object (cheaper than re-serializing).
    const rapidjson::Value& cursor = Get(root, "cursor");
    if (!cursor.IsNull()) last_cursor_ = Dump(cursor);
    pending_.push_back(std::move(doc).value());
    return Status::Ok();
  }
  return take(root);
}

Result<Json> WsSession::Next(int timeout_ms) {
  int64_t deadline = MonoMs() + timeout_ms;
  while (pending_.empty()) {
    if (Status s = ReadOnce(deadline); !s.ok()) return s;
  }
  Json ev = std::move(pending_.front());
  pending_.pop_front();
  return ev;
}

Result<Json> WsSession::WaitFor(const std::function<bool(const Json&)>& pred, int timeout_ms) {
  int64_t deadline = MonoMs() + timeout_ms;
  size_t scanned = 0;
  for (;;) {
    for (; scanned < pending_.size(); ++scanned) {
      if (pred(pending_[scanned])) {
        Json ev = std::move(pending_[scanned]);
        pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(scanned));
        return ev;
      }
    }
    if (Status s = ReadOnce(deadline); !s.ok()) {
      std::string seen;
      for (const auto& ev : pending_) seen += (seen.empty() ? "" : ", ") + ev.type();
      return Status(s.code(), s.message() + " [queued events: " + seen + "]");
    }
  }
}

Result<Json> WsSession::WaitFor(std::string_view type, int timeout_ms) {
  std::string t(type);
  return WaitFor([&](const Json& ev) { return ev.type() == t; }, timeout_ms);
}

Result<Json> WsSession::WaitForAny(const std::vector<std::string>& types, int timeout_ms) {
  return WaitFor(
      [&](const Json& ev) { return std::find(types.begin(), types.end(), ev.type()) != types.end(); },
      timeout_ms);
}

Status WsSession::Barrier(int timeout_ms) {
  if (Status s = Send(R"({"type":"ping"})"); !s.ok()) return s;
  auto pong = WaitFor("pong", timeout_ms);
  return pong.ok() ? Status::Ok() : pong.status();
}

void WsSession::Soak(int window_ms) {
  int64_t deadline = MonoMs() + window_ms;
  while (MonoMs() < deadline) {
    Status s = ReadOnce(deadline);
    if (!s.ok() && !WsClient::IsTimeout(s)) return;
  }
}

std::vector<Json> WsSession::TakeAll(std::string_view type) {
  std::vector<Json> out;
  std::deque<Json> rest;
  for (auto& ev : pending_) {
    if (ev.type() == type) {
      out.push_back(std::move(ev));
    } else {
      rest.push_back(std::move(ev));
    }
  }
  pending_.swap(rest);
  return out;
}

size_t WsSession::CountPending(std::string_view type) const {
  return static_cast<size_t>(
      std::count_if(pending_.begin(), pending_.end(), [&](const Json& ev) { return ev.type() == type; }));
}

}  // namespace chatd::test
