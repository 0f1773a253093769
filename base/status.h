// base/status.h — errors as values.
//
// Status carries an error code (the PROTOCOL.md error codes plus internal ones) and a
// human-readable message. Result<T> is a Status or a value. Both are cheap to move and
// safe to pass between threads (they own their data). Libraries that throw (toml11,
// CLI11, httplib) are caught at the module's edge and turned into a Status.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace chatd {

enum class Code {
  kOk = 0,
  kBadRequest,    // 400 bad_request
  kUnauthorized,  // 401 unauthorized
  kForbidden,     // 403 forbidden (or a refinement such as not_member)
  kNotFound,      // 404 not_found
  kConflict,      // 409 conflict
  kTooLarge,      // 413 too_large
  kUnsupported,   // 415 unsupported
  kRateLimited,   // 429 rate_limited
  kInternal,      // 500 internal
  kUnavailable,   // 503 (shutting down, overloaded)
  kIo,            // file system / store errors (reported as internal to clients)
  kCorrupt,       // bad signature, bad hash, undecodable bytes
};

// Maps a code to its PROTOCOL.md wire name and HTTP status.
const char* CodeName(Code c);
int HttpStatus(Code c);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message, std::string wire_code = {})
      : code_(code), message_(std::move(message)), wire_code_(std::move(wire_code)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // The code clients see: a refinement ("not_member") if set, else CodeName(code).
  std::string wire_code() const { return wire_code_.empty() ? CodeName(code_) : wire_code_; }
  int http_status() const { return HttpStatus(code_); }
  std::string ToString() const { return wire_code() + ": " + message_; }
  // Seconds a rate-limited client should wait (only meaningful for kRateLimited).
  int retry_after = 0;

 private:
  Code code_ = Code::kOk;
  std::string message_;
  std::string wire_code_;
};

inline Status BadRequest(std::string m) { return Status(Code::kBadRequest, std::move(m)); }
inline Status Unauthorized(std::string m) { return Status(Code::kUnauthorized, std::move(m)); }
inline Status Forbidden(std::string m, std::string wire = {}) {
  return Status(Code::kForbidden, std::move(m), std::move(wire));
}
inline Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
inline Status Conflict(std::string m) { return Status(Code::kConflict, std::move(m)); }
inline Status TooLarge(std::string m) { return Status(Code::kTooLarge, std::move(m)); }
inline Status Internal(std::string m) { return Status(Code::kInternal, std::move(m)); }
inline Status IoError(std::string m) { return Status(Code::kIo, std::move(m)); }
inline Status Corrupt(std::string m) { return Status(Code::kCorrupt, std::move(m)); }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace chatd
