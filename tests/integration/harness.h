// tests/integration/harness.h — Catch2 glue over tests/support for the integration suite.
//
// StartRelay() runs a fresh chatd (its own temp dir, port 0 everywhere) or fails the
// test with chatd's log; MUST(expr) unwraps a Result or Status from the support library
// or fails the test with the error text (which carries the server's answer). Included by
// the test files only; the binaries' paths come from CMake (CHATD_BIN, CHATCTL_BIN).
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/time.h"
#include "tests/support/fixtures.h"
#include "tests/support/http.h"
#include "tests/support/json.h"
#include "tests/support/relay_process.h"
#include "tests/support/ws_client.h"
#include "tests/support/ws_session.h"

namespace chatd::test {

// Default timeout for one expected WebSocket event.
constexpr int kEventMs = 5000;

inline RelayOptions Options(const std::string& name = "eu1", int node_id = 1) {
  RelayOptions o;
  o.chatd_bin = CHATD_BIN;
  o.chatctl_bin = CHATCTL_BIN;
  o.relay_name = name;
  o.node_id = node_id;
  return o;
}

inline std::unique_ptr<RelayProcess> StartRelay(RelayOptions opts = Options()) {
  auto relay = std::make_unique<RelayProcess>(std::move(opts));
  Status s = relay->Start();
  if (!s.ok()) FAIL("relay did not start: " << s.message());
  return relay;
}

inline const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}

template <typename T>
T MustImpl(Result<T>&& r, const char* expr, const char* file, int line) {
  if (!r.ok()) FAIL(file << ":" << line << ": " << expr << " failed: " << r.status().message());
  return std::move(r).value();
}
inline void MustImpl(Status&& s, const char* expr, const char* file, int line) {
  if (!s.ok()) FAIL(file << ":" << line << ": " << expr << " failed: " << s.message());
}
#define MUST(expr) ::chatd::test::MustImpl((expr), #expr, __FILE__, __LINE__)

// A WebSocket send that must succeed.
#define SEND(session, json)                                                          \
  do {                                                                               \
    ::chatd::Status send_status_ = (session).Send(json);                             \
    if (!send_status_.ok()) FAIL("ws send failed: " << send_status_.message());      \
  } while (0)

// {"type":"send_message",...} for a text message.
inline std::string SendMessageFrame(const std::string& chat_id, const std::string& content,
                                    const std::string& temp_id) {
  return JsonBuilder()
      .Add("type", "send_message")
      .Add("chat_id", chat_id)
      .Add("message_type", "text")
      .Add("content", content)
      .Add("temp_id", temp_id)
      .str();
}

// Sends one text message over the WebSocket and waits for its message_sent; returns it.
inline Json SendAndAck(WsSession& s, const std::string& chat_id, const std::string& content,
                       const std::string& temp_id) {
  SEND(s, SendMessageFrame(chat_id, content, temp_id));
  auto ev = s.WaitFor(
      [&](const Json& e) {
        return (e.type() == "message_sent" && e.Str("temp_id") == temp_id) ||
               (e.type() == "error" && e.Str("ref") == temp_id);
      },
      kEventMs);
  if (!ev.ok()) FAIL("no message_sent for " << temp_id << ": " << ev.status().message());
  if (ev->type() != "message_sent") FAIL("send_message " << temp_id << " answered " << ev->text());
  return std::move(ev).value();
}

// Sends every content over one session with up to `window` unacknowledged sends
// (temp ids prefix-0, prefix-1, ...); the message_ids in the order of `contents`.
inline std::vector<std::string> SendPipelined(WsSession& s, const std::string& chat_id,
                                              const std::vector<std::string>& contents,
                                              const std::string& prefix = "p", size_t window = 16) {
  std::vector<std::string> ids(contents.size());
  std::map<std::string, size_t> inflight;
  size_t next = 0, acked = 0;
  while (acked < contents.size()) {
    while (next < contents.size() && inflight.size() < window) {
      std::string temp = prefix + "-" + std::to_string(next);
      SEND(s, SendMessageFrame(chat_id, contents[next], temp));
      inflight[temp] = next++;
    }
    auto ev = s.WaitForAny({"message_sent", "error"}, kEventMs);
    if (!ev.ok()) FAIL("waiting for acks (" << acked << " of " << contents.size() << "): " << ev.status().message());
    if (ev->type() == "error") FAIL("send_message answered " << ev->text());
    auto it = inflight.find(ev->Str("temp_id"));
    if (it == inflight.end()) FAIL("message_sent for an unknown temp_id: " << ev->text());
    ids[it->second] = ev->Str("message_id");
    inflight.erase(it);
    ++acked;
  }
  return ids;
}

inline const std::string kUploadBoundary = "chatd-test-boundary-7MA4YWxkTrZu0gW";

// A multipart/form-data body with a chat_id part and a file part (either omitted if "").
inline std::string Multipart(const std::string& chat_id, const std::string& filename, const std::string& mime,
                             const std::string& data) {
  std::string b;
  if (!chat_id.empty()) {
    b += "--" + kUploadBoundary + "\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n" + chat_id + "\r\n";
  }
  if (!filename.empty()) {
    b += "--" + kUploadBoundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + filename +
         "\"\r\nContent-Type: " + mime + "\r\n\r\n" + data + "\r\n";
  }
  return b + "--" + kUploadBoundary + "--\r\n";
}

// POST /files/upload (single request) of `data` into chat_id.
inline HttpResponse Upload(const RelayProcess& relay, const std::string& token, const std::string& chat_id,
                           const std::string& filename, const std::string& mime, const std::string& data) {
  HttpRequest r;
  r.method = "POST";
  r.path = "/api/v1/files/upload";
  r.body = Multipart(chat_id, filename, mime, data);
  r.content_type = "multipart/form-data; boundary=" + kUploadBoundary;
  r.bearer = token;
  r.timeout_ms = 60000;
  return HttpCall(relay.api(), r);
}

// A decimal id as a number (0 if it is not one), for order checks.
inline uint64_t IdNum(const std::string& id) {
  rapidjson::Value v(id.c_str(), static_cast<rapidjson::SizeType>(id.size()));
  return IdOf(v).value_or(0);
}

// Message ids of a history, in the order given.
inline std::vector<std::string> IdsOf(const std::vector<Json>& msgs) {
  std::vector<std::string> ids;
  for (const auto& m : msgs) ids.push_back(m.Str("message_id"));
  return ids;
}

// The error event or REST error must carry code/message and be the failure envelope.
inline void CheckRestError(const HttpResponse& r, int status, const std::string& code) {
  INFO(r.Describe());
  CHECK(r.status == status);
  REQUIRE(r.json_ok);
  CHECK(r.json["success"].IsBool());
  CHECK_FALSE(r.success());
  if (!code.empty()) CHECK(r.error_code() == code);
  CHECK_FALSE(r.error_message().empty());
}

// `token` is refused on `relay`: REST GET /users/me answers 401, and a WebSocket `auth`
// gets error unauthorized (ref "auth") and then close 1008. `what` names the case.
inline void RequireTokenRefused(const RelayProcess& relay, const std::string& token, const std::string& what) {
  INFO(what);
  HttpResponse r = ApiGet(relay.api(), "/users/me", token);
  CheckRestError(r, 401, "unauthorized");
  auto ws = ConnectWs(relay.gateway());
  REQUIRE(ws.ok());
  SEND(*ws, JsonBuilder().Add("type", "auth").Add("token", token).str());
  auto ev = ws->Next(kEventMs);
  if (!ev.ok()) FAIL("no answer to auth: " << ev.status().message());
  CHECK(ev->type() == "error");
  CHECK(ev->Str("code") == "unauthorized");
  CHECK(ev->Str("ref") == "auth");
  auto more = ws->Next(kEventMs);  // then the session is closed
  CHECK_FALSE(more.ok());
  CHECK(ws->ws().last_close_code() == 1008);
}

}  // namespace chatd::test
