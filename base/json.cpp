#include "base/json.h"

#include <rapidjson/error/en.h>

#include <charconv>

#include "base/time.h"
#include "base/utf8.h"

namespace chatd::json {
namespace {

constexpr size_t kKeepCopyBytes = 64 * 1024;  // per thread, between parses

Status FieldError(const char* key, const char* what) {
  return BadRequest(std::string("field '") + key + "' " + what);
}

}  // namespace

Status Parse(std::string_view text, Doc* doc) {
  // Checking the whole text first and then parsing without rapidjson's per-character
  // kParseValidateEncodingFlag takes a third off a frame's parse (non-ASCII bytes outside
  // strings are syntax errors either way).
  if (const size_t bad = Utf8InvalidAt(text); bad < text.size()) {
    return BadRequest("malformed JSON at offset " + std::to_string(bad) + ": invalid UTF-8");
  }
  // A NUL-terminated copy: RapidJSON reads it as a string stream, ~12% fewer instructions
  // than its bounded memory stream (no end check per character). A NUL ends the document
  // either way, as before. (RAPIDJSON_SSE2 would take a third off the reader but slows its
  // writer more than that for our short strings: measured, not adopted.)
  thread_local std::string copy;
  copy.assign(text.data(), text.size());
  doc->Parse<rapidjson::kParseIterativeFlag>(copy.c_str());
  if (copy.capacity() > kKeepCopyBytes) std::string().swap(copy);  // a rare large frame
  if (doc->HasParseError()) {
    return BadRequest(std::string("malformed JSON at offset ") + std::to_string(doc->GetErrorOffset()) +
                      ": " + rapidjson::GetParseError_En(doc->GetParseError()));
  }
  if (!doc->IsObject()) return BadRequest("expected a JSON object");
  return Status::Ok();
}

std::string_view TypeOf(const Value& obj) {
  if (!obj.IsObject()) return {};
  auto it = obj.FindMember("type");
  if (it == obj.MemberEnd() || !it->value.IsString()) return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

std::optional<uint64_t> ParseId(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  if (v == 0 || v > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  return v;
}

std::optional<uint64_t> IdFromValue(const Value& v) {
  if (v.IsString()) return ParseId({v.GetString(), v.GetStringLength()});
  if (v.IsUint64()) {
    uint64_t x = v.GetUint64();
    if (x == 0 || x > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return x;
  }
  return std::nullopt;
}

Result<std::optional<std::string_view>> GetOptString(const Value& obj, const char* key, size_t max_bytes) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return std::optional<std::string_view>();
  if (!it->value.IsString()) return FieldError(key, "must be a string");
  std::string_view s(it->value.GetString(), it->value.GetStringLength());
  if (max_bytes && s.size() > max_bytes) {
    Status st(Code::kTooLarge, std::string("field '") + key + "' is longer than " +
                                   std::to_string(max_bytes) + " bytes");
    return st;
  }
  return std::optional<std::string_view>(s);
}

Result<std::string_view> GetString(const Value& obj, const char* key, size_t max_bytes) {
  auto r = GetOptString(obj, key, max_bytes);
  if (!r.ok()) return r.status();
  if (!r.value()) return FieldError(key, "is required");
  return *r.value();
}

Result<std::optional<uint64_t>> GetOptId(const Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return std::optional<uint64_t>();
  auto id = IdFromValue(it->value);
  if (!id) return FieldError(key, "must be an id (a decimal string)");
  return std::optional<uint64_t>(*id);
}

Result<uint64_t> GetId(const Value& obj, const char* key) {
  auto r = GetOptId(obj, key);
  if (!r.ok()) return r.status();
  if (!r.value()) return FieldError(key, "is required");
  return *r.value();
}

Result<std::optional<int64_t>> GetOptInt(const Value& obj, const char* key, int64_t min, int64_t max) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return std::optional<int64_t>();
  if (!it->value.IsInt64()) return FieldError(key, "must be an integer");
  int64_t v = it->value.GetInt64();
  if (v < min || v > max) {
    return BadRequest(std::string("field '") + key + "' must be between " + std::to_string(min) +
                      " and " + std::to_string(max));
  }
  return std::optional<int64_t>(v);
}

Result<int64_t> GetInt(const Value& obj, const char* key, int64_t min, int64_t max) {
  auto r = GetOptInt(obj, key, min, max);
  if (!r.ok()) return r.status();
  if (!r.value()) return FieldError(key, "is required");
  return *r.value();
}

Result<bool> GetBool(const Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return FieldError(key, "is required");
  if (!it->value.IsBool()) return FieldError(key, "must be true or false");
  return it->value.GetBool();
}

JsonWriter& JsonWriter::Time(int64_t unix_ms) {
  char buf[kRfc3339MsMax];
  return Str(std::string_view(buf, Rfc3339Ms(unix_ms, buf)));
}

}  // namespace chatd::json
