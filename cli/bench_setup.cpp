// Benchmark setup: the target relay, users, rooms, and the saved-setup file.
#include "cli/bench_setup.h"

#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "base/json.h"
#include "relay/relay.h"

namespace chatd::cli::bench {

namespace {

constexpr char kPassword[] = "bench-password-1";

std::string Str(const json::Value& v, const char* key) {
  auto s = json::GetString(v, key, 0);
  return s.ok() ? std::string(*s) : std::string();
}

// POST with JSON; retries rate_limited answers after their retry_after.
Result<std::string> PostJson(httplib::Client& c, const std::string& path, const std::string& body,
                             const std::string& token) {
  httplib::Headers h;
  if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
  for (int attempt = 0;; ++attempt) {
    auto res = c.Post(path.c_str(), h, body, "application/json");
    if (!res) return Status(Code::kUnavailable, "REST API unreachable (" + httplib::to_string(res.error()) + ")");
    json::Doc doc;
    if (!json::Parse(res->body, &doc).ok()) return Internal(path + ": malformed JSON answer");
    if (res->status == 429 && attempt < 20) {
      if (attempt == 0) {
        fprintf(stderr, "chatctl bench: %s is rate limited; retrying (raise auth.register_per_ip_per_min)\n",
                path.c_str());
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    if (res->status >= 300) return Internal(path + ": HTTP " + std::to_string(res->status) + ": " + res->body);
    auto data = doc.FindMember("data");
    if (data == doc.MemberEnd()) return Internal(path + ": answer without data");
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    data->value.Accept(w);
    return std::string(buf.GetString(), buf.GetSize());
  }
}

std::string RunTag() {
  std::random_device rd;
  char buf[16];
  snprintf(buf, sizeof buf, "%06x", static_cast<unsigned>(rd()) & 0xffffff);
  return buf;
}

}  // namespace

bool ParseHostPort(const std::string& hp, std::string* host, int* port) {
  size_t colon = hp.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  *host = hp.substr(0, colon);
  if (*host == "localhost") *host = "127.0.0.1";
  try {
    *port = std::stoi(hp.substr(colon + 1));
  } catch (...) {
    return false;
  }
  return *port > 0 && *port < 65536;
}

Result<Target> ResolveTarget(const std::string& relay_dir, const std::string& api, const std::string& gateway, int pid,
                             const std::string& sink) {
  Target t;
  if (!sink.empty()) {
    t.sink = true;
    t.gateway = sink;
    t.pid = pid;
    return t;
  }
  if (!relay_dir.empty()) {
    auto text = ReadSmallFile(relay_dir + "/" + Relay::kPortsFile, 4096);
    if (!text.ok())
      return Status(text.status().code(), "no running relay in " + relay_dir + ": " + text.status().message());
    json::Doc doc;
    if (!json::Parse(*text, &doc).ok()) return Internal(relay_dir + "/chatd.ports.json is malformed");
    t.api = Str(doc, "api");
    t.gateway = Str(doc, "gateway");
    auto p = json::GetInt(doc, "pid", 1, INT32_MAX);
    if (p.ok()) t.pid = static_cast<int>(*p);
  }
  if (!api.empty()) t.api = api;
  if (!gateway.empty()) t.gateway = gateway;
  if (pid) t.pid = pid;
  std::string h;
  int port;
  if (t.api.empty() || t.gateway.empty()) return BadRequest("name the relay: --relay-dir DIR, or --api and --gateway");
  if (!ParseHostPort(t.api, &h, &port)) return BadRequest("--api must be HOST:PORT, got '" + t.api + "'");
  if (!ParseHostPort(t.gateway, &h, &port)) return BadRequest("--gateway must be HOST:PORT, got '" + t.gateway + "'");
  return t;
}

Result<Setup> RunSetup(const Target& t, const Plan& plan, const std::function<void(int, int)>& progress) {
  const int recv_users =
      plan.receivers_per_room == 0 ? 0 : (plan.receivers_per_room + plan.conns_per_user - 1) / plan.conns_per_user;
  const int per_room = plan.senders_per_room + recv_users;
  const int total = plan.rooms * per_room + plan.loose_users;
  std::vector<Member> users(static_cast<size_t>(total));
  const std::string tag = RunTag();
  std::atomic<int> next{0}, done{0};
  std::mutex mu;
  Status failure = Status::Ok();
  auto worker = [&] {
    httplib::Client c("http://" + t.api);
    c.set_keep_alive(true);
    c.set_connection_timeout(5, 0);
    c.set_read_timeout(60, 0);
    for (;;) {
      int i = next.fetch_add(1);
      if (i >= total) return;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!failure.ok()) return;
      }
      std::string name = "b" + tag + "_" + std::to_string(i);
      std::string body =
          R"({"username":")" + name + R"(","email":")" + name + R"(@bench.invalid","password":")" + kPassword + "\"}";
      auto r = PostJson(c, "/api/v1/auth/register", body, "");
      json::Doc doc;
      if (r.ok() && json::Parse(*r, &doc).ok()) {
        auto id = json::GetId(doc, "user_id");
        users[static_cast<size_t>(i)] = Member{id.ok() ? *id : 0, Str(doc, "access_token")};
      }
      if (!r.ok() || users[static_cast<size_t>(i)].token.empty()) {
        std::lock_guard<std::mutex> lock(mu);
        if (failure.ok()) failure = r.ok() ? Internal("register: no access_token in the answer") : r.status();
        return;
      }
      done++;
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < std::max(1, std::min(plan.threads, total)); ++i) threads.emplace_back(worker);
  while (done.load() < total) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!failure.ok()) break;
    }
    if (progress) progress(done.load(), total);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  for (auto& th : threads) th.join();
  if (!failure.ok()) return Status(failure.code(), "setup: " + failure.message());
  if (progress) progress(total, total);

  Setup s;
  httplib::Client c("http://" + t.api);
  c.set_read_timeout(60, 0);
  for (int r = 0; r < plan.rooms; ++r) {
    const Member* base = &users[static_cast<size_t>(r * per_room)];
    Room room;
    std::string body = R"({"chat_type":"group","chat_name":"bench )" + std::to_string(r) + R"(","participants":[)";
    for (int i = 0; i < per_room; ++i) {
      if (i > 0) body += ",";
      body += "\"" + std::to_string(base[i].user_id) + "\"";
      if (i < plan.senders_per_room) room.senders.push_back(base[i]);
    }
    body += "]}";
    for (int i = 0; i < plan.receivers_per_room; ++i) {
      room.receivers.push_back(base[plan.senders_per_room + i / plan.conns_per_user]);
    }
    auto res = PostJson(c, "/api/v1/chats", body, base[0].token);
    if (!res.ok()) return Status(res.status().code(), "setup: create chat: " + res.status().message());
    json::Doc doc;
    auto id = json::Parse(*res, &doc).ok() ? json::GetId(doc, "chat_id") : Result<uint64_t>(Internal("bad JSON"));
    if (!id.ok()) return Status(id.status().code(), "setup: create chat: " + id.status().message());
    room.chat_id = *id;
    s.rooms.push_back(std::move(room));
  }
  for (int i = 0; i < plan.loose_users; ++i) s.loose.push_back(users[static_cast<size_t>(plan.rooms * per_room + i)]);
  return s;
}

Setup SinkSetup(const Plan& plan) {
  Setup s;
  for (int r = 0; r < plan.rooms; ++r) {
    Room room;
    room.chat_id = static_cast<uint64_t>(r) + 1;
    for (int i = 0; i < plan.senders_per_room; ++i) room.senders.push_back(Member{1, "sink"});
    for (int i = 0; i < plan.receivers_per_room; ++i)
      room.receivers.push_back(Member{2, "sink:" + std::to_string(room.chat_id)});
    s.rooms.push_back(std::move(room));
  }
  for (int i = 0; i < plan.loose_users; ++i) s.loose.push_back(Member{3, "sink"});
  return s;
}

namespace {

std::string PlanKey(const Plan& p) {
  return std::to_string(p.rooms) + "x" + std::to_string(p.senders_per_room) + "+" +
         std::to_string(p.receivers_per_room) + "/" + std::to_string(p.conns_per_user) + "+" +
         std::to_string(p.loose_users);
}

void WriteMember(rapidjson::Writer<rapidjson::StringBuffer>& w, const Member& m) {
  w.StartArray();
  w.String(std::to_string(m.user_id).c_str());
  w.String(m.token.c_str());
  w.EndArray();
}

bool ReadMembers(const json::Value& arr, std::vector<Member>* out) {
  if (!arr.IsArray()) return false;
  for (const auto& m : arr.GetArray()) {
    if (!m.IsArray() || m.Size() != 2 || !m[0].IsString() || !m[1].IsString()) return false;
    out->push_back(Member{json::ParseId(m[0].GetString()).value_or(0), m[1].GetString()});
  }
  return true;
}

}  // namespace

Status SaveSetup(const std::string& path, const Plan& plan, const Setup& s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("plan");
  w.String(PlanKey(plan).c_str());
  w.Key("rooms");
  w.StartArray();
  for (const Room& r : s.rooms) {
    w.StartObject();
    w.Key("chat_id");
    w.String(std::to_string(r.chat_id).c_str());
    w.Key("senders");
    w.StartArray();
    for (const auto& m : r.senders) WriteMember(w, m);
    w.EndArray();
    w.Key("receivers");
    w.StartArray();
    for (const auto& m : r.receivers) WriteMember(w, m);
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.Key("loose");
  w.StartArray();
  for (const auto& m : s.loose) WriteMember(w, m);
  w.EndArray();
  w.EndObject();
  return WriteFileAtomic(path, std::string_view(buf.GetString(), buf.GetSize()), 0600);
}

Result<Setup> LoadSetup(const std::string& path, const Plan& plan) {
  auto text = ReadSmallFile(path, 256u << 20);
  if (!text.ok()) return text.status();
  json::Doc doc;
  if (!json::Parse(*text, &doc).ok()) return BadRequest(path + ": not a saved setup");
  if (Str(doc, "plan") != PlanKey(plan)) {
    return BadRequest(path + ": saved for plan " + Str(doc, "plan") + ", this run needs " + PlanKey(plan));
  }
  Setup s;
  auto rooms = doc.FindMember("rooms");
  auto loose = doc.FindMember("loose");
  if (rooms == doc.MemberEnd() || !rooms->value.IsArray() || loose == doc.MemberEnd()) {
    return BadRequest(path + ": not a saved setup");
  }
  for (const auto& r : rooms->value.GetArray()) {
    Room room;
    auto id = json::GetId(r, "chat_id");
    auto snd = r.FindMember("senders");
    auto rcv = r.FindMember("receivers");
    if (!id.ok() || snd == r.MemberEnd() || rcv == r.MemberEnd() || !ReadMembers(snd->value, &room.senders) ||
        !ReadMembers(rcv->value, &room.receivers)) {
      return BadRequest(path + ": malformed room");
    }
    room.chat_id = *id;
    s.rooms.push_back(std::move(room));
  }
  if (!ReadMembers(loose->value, &s.loose)) return BadRequest(path + ": malformed users");
  return s;
}

}  // namespace chatd::cli::bench
