// tests/support/http.h — one HTTP call to a relay, answer parsed.
//
// HttpCall() runs one request with cpp-httplib's client (a new connection each time, so
// tests never share keep-alive state) and returns the status, headers, body and the body
// parsed as JSON when it is JSON. The accessors read PROTOCOL.md's envelope:
// {"success": true, "data": …} or {"success": false, "error": {"code", "message"}}.
// Thread-safe: every call is independent.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/json.h"

namespace chatd::test {

struct HostPort {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string str() const { return host + ":" + std::to_string(port); }
};
// "127.0.0.1:8080" → {host, port}; port 0 if malformed.
HostPort ParseHostPort(const std::string& s);

struct HttpResponse {
  int status = 0;          // 0: no answer (see error)
  std::string error;       // transport error, if any
  std::string body;
  std::multimap<std::string, std::string> headers;  // names as the server sent them
  Json json;               // parsed body (null if empty or not JSON)
  bool json_ok = false;

  // Header lookup, case-insensitive; "" if absent.
  std::string Header(const std::string& name) const;
  bool success() const;                       // "success": true
  const rapidjson::Value& data() const;       // "data"
  std::string error_code() const;             // "error.code"
  std::string error_message() const;         // "error.message"
  // "HTTP 400 {body…}" for failure messages.
  std::string Describe() const;
};

struct HttpRequest {
  std::string method = "GET";
  std::string path;                  // full path with query, e.g. /api/v1/chats?limit=5
  std::string body;
  std::string content_type = "application/json";
  std::string bearer;                // Authorization: Bearer <bearer> when non-empty
  std::vector<std::pair<std::string, std::string>> headers;
  int timeout_ms = 15000;
};

HttpResponse HttpCall(const HostPort& to, const HttpRequest& req);

// Shorthands for the REST API under /api/v1 (path without the prefix, e.g. "/chats").
HttpResponse ApiGet(const HostPort& api, const std::string& path, const std::string& token = "");
HttpResponse ApiPost(const HostPort& api, const std::string& path, const std::string& body,
                     const std::string& token = "");
HttpResponse ApiPatch(const HostPort& api, const std::string& path, const std::string& body,
                      const std::string& token = "");
HttpResponse ApiDelete(const HostPort& api, const std::string& path, const std::string& token = "");

// Percent-encodes a query parameter value.
std::string UrlEncode(const std::string& s);

}  // namespace chatd::test
