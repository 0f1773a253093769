#include "tests/support/http.h"

#include <strings.h>

#include <httplib.h>

namespace chatd::test {

HostPort ParseHostPort(const std::string& s) {
  HostPort hp;
  size_t colon = s.rfind(':');
  if (colon == std::string::npos) return hp;
  hp.host = s.substr(0, colon);
  if (hp.host.size() >= 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  try {
    hp.port = std::stoi(s.substr(colon + 1));
  } catch (...) {
    hp.port = 0;
  }
  return hp;
}

std::string HttpResponse::Header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
  }
  return "";
}

bool HttpResponse::success() const {
  const auto& v = json["success"];
  return v.IsBool() && v.GetBool();
}

const rapidjson::Value& HttpResponse::data() const { return json["data"]; }

std::string HttpResponse::error_code() const { return StrOf(At(json.root(), "error.code")); }

std::string HttpResponse::error_message() const { return StrOf(At(json.root(), "error.message")); }

std::string HttpResponse::Describe() const {
  if (status == 0) return "no HTTP answer: " + error;
  std::string b = body.size() > 600 ? body.substr(0, 600) + "…" : body;
  return "HTTP " + std::to_string(status) + " " + b;
}

HttpResponse HttpCall(const HostPort& to, const HttpRequest& req) {
  HttpResponse out;
  httplib::Client cli(to.host, to.port);
  int secs = req.timeout_ms / 1000;
  int usecs = (req.timeout_ms % 1000) * 1000;
  cli.set_connection_timeout(secs, usecs);
  cli.set_read_timeout(secs, usecs);
  cli.set_write_timeout(secs, usecs);
  cli.set_keep_alive(false);

  httplib::Request r;
  r.method = req.method;
  r.path = req.path;
  r.body = req.body;
  if (!req.body.empty() || req.method == "POST" || req.method == "PATCH" || req.method == "PUT") {
    if (!req.content_type.empty()) r.headers.emplace("Content-Type", req.content_type);
  }
  if (!req.bearer.empty()) r.headers.emplace("Authorization", "Bearer " + req.bearer);
  for (const auto& [k, v] : req.headers) r.headers.emplace(k, v);

  auto res = cli.send(r);
  if (!res) {
    out.error = httplib::to_string(res.error());
    return out;
  }
  out.status = res->status;
  out.body = res->body;
  for (const auto& [k, v] : res->headers) out.headers.emplace(k, v);
  if (!out.body.empty()) {
    auto parsed = Json::Parse(out.body);
    if (parsed.ok()) {
      out.json = std::move(parsed).value();
      out.json_ok = true;
    }
  }
  return out;
}

namespace {
HttpResponse Api(const HostPort& api, const char* method, const std::string& path,
                 const std::string& body, const std::string& token) {
  HttpRequest r;
  r.method = method;
  r.path = "/api/v1" + path;
  r.body = body;
  r.bearer = token;
  return HttpCall(api, r);
}
}  // namespace

HttpResponse ApiGet(const HostPort& api, const std::string& path, const std::string& token) {
  return Api(api, "GET", path, "", token);
}
HttpResponse ApiPost(const HostPort& api, const std::string& path, const std::string& body,
                     const std::string& token) {
  return Api(api, "POST", path, body, token);
}
HttpResponse ApiPatch(const HostPort& api, const std::string& path, const std::string& body,
                      const std::string& token) {
  return Api(api, "PATCH", path, body, token);
}
HttpResponse ApiDelete(const HostPort& api, const std::string& path, const std::string& token) {
  return Api(api, "DELETE", path, "", token);
}

std::string UrlEncode(const std::string& s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace chatd::test
