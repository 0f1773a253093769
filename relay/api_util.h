// relay/api_util.h — helpers shared by the REST handler files. Internal to relay/.
// Everything here is stateless or thread-safe and runs on httplib pool threads.
#pragma once

#include <httplib.h>

#include <optional>
#include <string>

#include "base/json.h"
#include "relay/api.h"

namespace chatd::api {

struct Ctx {
  ApiDeps d;
  RateLimiter* limiter;
  const std::string* dummy_hash;
};

// {"success":true,"data":<data_json>} with `status`; 204 sends no body.
void Ok(httplib::Response& res, int status, std::string_view data_json);
void NoContent(httplib::Response& res);
// {"success":false,"error":{"code","message"}} with the status's HTTP code (and
// Retry-After / retry_after for rate limits).
void Fail(httplib::Response& res, const Status& st);
// Parses a JSON object body (415 for a non-JSON content type, 400 for malformed JSON).
Status ParseBody(const httplib::Request& req, json::Doc* doc);
// Verifies the bearer access token.
Result<Claims> Authenticate(const Ctx& ctx, const httplib::Request& req);
// An id path parameter (matches[i]); bad_request naming it if malformed.
Result<uint64_t> PathId(const httplib::Request& req, size_t i, const char* name);
// The client's address for rate limits.
std::string ClientIp(const httplib::Request& req);

void RegisterAuthRoutes(httplib::Server& s, Ctx& ctx);
void RegisterChatRoutes(httplib::Server& s, Ctx& ctx);
void RegisterSocialRoutes(httplib::Server& s, Ctx& ctx);

}  // namespace chatd::api
