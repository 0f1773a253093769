#include "cli/common.h"

#include <httplib.h>
#include <signal.h>

#include <climits>
#include <cstdio>
#include <functional>

#include "base/json.h"
#include "relay/relay.h"

namespace chatd::cli {

void PrintError(const Status& s) { fprintf(stderr, "chatctl: %s\n", s.message().c_str()); }

void FailAdmin(Globals& g, const Status& s) {
  PrintError(s);
  g.exit_code = s.code() == Code::kUnavailable ? kUnreachable : kFail;
}

bool AdminAnswer(Globals& g, Result<std::string> data, json::Doc* doc) {
  if (!data.ok()) {
    FailAdmin(g, data.status());
    return false;
  }
  if (g.output == "json") {
    printf("%s\n", data->c_str());
    return false;
  }
  if (!json::Parse(*data, doc).ok()) {
    FailAdmin(g, Internal("the admin API answered with malformed JSON"));
    return false;
  }
  return true;
}

Result<conf::Config> LoadRelayConfig(Globals& g) {
  if (g.config.empty()) {
    Status s(Code::kBadRequest, "no relay config: pass --config FILE or set CHATD_CONFIG");
    PrintError(s);
    g.exit_code = kUsage;
    return s;
  }
  auto cfg = conf::LoadConfig(g.config);
  if (!cfg.ok()) {
    PrintError(cfg.status());
    g.exit_code = kUsage;
  }
  return cfg;
}

std::string AdminBase(const conf::Config& cfg) {
  auto ports = ReadSmallFile(cfg.data_dir + "/" + Relay::kPortsFile, 4096);
  if (ports.ok()) {
    json::Doc doc;
    if (json::Parse(*ports, &doc).ok()) {
      auto admin = json::GetString(doc, "admin", 128);
      if (admin.ok()) return "http://" + std::string(*admin);
    }
  }
  return "http://" + cfg.admin.ToString();
}

namespace {

Result<std::string> AdminCall(const conf::Config& cfg, const std::string& method, const std::string& path,
                              const std::string& body = {}) {
  auto token = ReadSmallFile(cfg.data_dir + "/" + Relay::kAdminTokenFile, 1024);
  if (!token.ok()) return token.status();
  std::string t = *token;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  httplib::Client client(AdminBase(cfg));
  client.set_connection_timeout(3, 0);
  client.set_read_timeout(10, 0);
  httplib::Headers headers = {{"Authorization", "Bearer " + t}};
  httplib::Result res = method == "POST"     ? client.Post(path.c_str(), headers, body, "application/json")
                        : method == "DELETE" ? client.Delete(path.c_str(), headers)
                                             : client.Get(path.c_str(), headers);
  if (!res) return Status(Code::kUnavailable, "the relay is not reachable at " + AdminBase(cfg));
  json::Doc doc;
  if (!json::Parse(res->body, &doc).ok()) return Internal("the admin API answered with malformed JSON");
  if (res->status >= 400) {
    auto err = doc.FindMember("error");
    std::string msg = "admin API error " + std::to_string(res->status);
    if (err != doc.MemberEnd() && err->value.IsObject()) {
      auto m = json::GetString(err->value, "message", 0);
      if (m.ok()) msg = std::string(*m);
    }
    // Keep the answer's kind (not found, bad request, …) for the exit code and the caller.
    Code code = res->status == 404   ? Code::kNotFound
                : res->status == 400 ? Code::kBadRequest
                : res->status == 403 ? Code::kForbidden
                : res->status == 409 ? Code::kConflict
                : res->status == 401 ? Code::kUnauthorized
                                     : Code::kInternal;
    return Status(code, msg);
  }
  auto data = doc.FindMember("data");
  if (data == doc.MemberEnd()) return Internal("the admin API answered without data");
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  data->value.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

Result<std::string> AdminGet(const conf::Config& cfg, const std::string& path) { return AdminCall(cfg, "GET", path); }
Result<std::string> AdminPost(const conf::Config& cfg, const std::string& path, const std::string& body) {
  return AdminCall(cfg, "POST", path, body);
}
Result<std::string> AdminDelete(const conf::Config& cfg, const std::string& path) {
  return AdminCall(cfg, "DELETE", path);
}

std::string Field(const json::Value& v, const char* key) {
  auto it = v.FindMember(key);
  if (it == v.MemberEnd() || it->value.IsNull()) return "-";
  if (it->value.IsString()) return it->value.GetString();
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  it->value.Accept(w);
  return b.GetString();
}

void AdminPagedList(Globals& g, const conf::Config& cfg, const std::string& path, const char* key, int limit,
                    const std::function<void(const json::Value&)>& print_row) {
  std::string after;
  int left = limit;
  std::string json_out;  // -o json: one array of every row
  while (left > 0) {
    std::string page =
        path + (path.find('?') == std::string::npos ? "?" : "&") + "limit=" + std::to_string(std::min(left, 1000));
    if (!after.empty()) page += "&after=" + after;  // handles and ids: nothing to escape
    auto data = AdminGet(cfg, page);
    if (!data.ok()) return FailAdmin(g, data.status());
    json::Doc doc;
    if (!json::Parse(*data, &doc).ok() || !doc.HasMember(key) || !doc[key].IsArray()) {
      return FailAdmin(g, Internal(std::string("the admin API answered without ") + key));
    }
    for (const auto& row : doc[key].GetArray()) {
      if (g.output == "json") {
        rapidjson::StringBuffer b;
        rapidjson::Writer<rapidjson::StringBuffer> w(b);
        row.Accept(w);
        json_out += (json_out.empty() ? "" : ",") + std::string(b.GetString());
      } else {
        print_row(row);
      }
      --left;
    }
    if (!doc["has_more"].IsTrue() || !doc["next_after"].IsString()) break;
    after = doc["next_after"].GetString();
  }
  if (g.output == "json") printf("[%s]\n", json_out.c_str());
}

bool RelayRunning(const conf::Config& cfg) {
  auto ports = ReadSmallFile(cfg.data_dir + "/" + Relay::kPortsFile, 4096);
  if (!ports.ok()) return false;
  json::Doc doc;
  if (!json::Parse(*ports, &doc).ok()) return false;
  auto pid = json::GetInt(doc, "pid", 1, INT32_MAX);
  return pid.ok() && kill(static_cast<pid_t>(*pid), 0) == 0;
}

}  // namespace chatd::cli
