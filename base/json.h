// base/json.h — JSON helpers over RapidJSON.
//
// Parsing untrusted input: Parse() bounds depth via RapidJSON's iterative parser and turns
// every syntax error into a bad_request Status. The Get* helpers read one field and name
// it in the error ("field 'content' must be a string"), so callers never touch RapidJSON's
// asserting accessors on unchecked values. Ids travel as decimal strings; a JSON number is
// accepted too. JsonWriter builds compact JSON into a std::string. Stateless; thread-safe.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace chatd::json {

using Doc = rapidjson::Document;
using Value = rapidjson::Value;

// Parses text into doc (which must outlive any string_view taken from it).
Status Parse(std::string_view text, Doc* doc);
// The object's "type" field, or "" if absent / not a string.
std::string_view TypeOf(const Value& obj);

// Required-field readers. `max_bytes` bounds strings; 0 means unbounded.
Result<std::string_view> GetString(const Value& obj, const char* key, size_t max_bytes);
Result<uint64_t> GetId(const Value& obj, const char* key);
Result<int64_t> GetInt(const Value& obj, const char* key, int64_t min, int64_t max);
Result<bool> GetBool(const Value& obj, const char* key);
// Optional readers: absent or null → nullopt; present with the wrong type → error.
Result<std::optional<std::string_view>> GetOptString(const Value& obj, const char* key, size_t max_bytes);
Result<std::optional<uint64_t>> GetOptId(const Value& obj, const char* key);
Result<std::optional<int64_t>> GetOptInt(const Value& obj, const char* key, int64_t min, int64_t max);
// Parses an id from a decimal string or number value (1 .. 2^63-1).
std::optional<uint64_t> IdFromValue(const Value& v);
std::optional<uint64_t> ParseId(std::string_view s);

// Compact JSON writer.
class JsonWriter {
 public:
  // Room for a new_message event at once: growing from RapidJSON's 256 bytes cost two
  // reallocs per message on the ingest path.
  JsonWriter() : buf_(nullptr, kInitialBytes), w_(buf_) {}
  JsonWriter& Key(std::string_view k) { w_.Key(k.data(), static_cast<rapidjson::SizeType>(k.size())); return *this; }
  JsonWriter& Str(std::string_view s) { w_.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); return *this; }
  JsonWriter& Id(uint64_t id) {  // ids are strings on the wire; no allocation for one
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, id);
    return Str(std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
  }
  JsonWriter& IdOrNull(uint64_t id) { return id ? Id(id) : Null(); }
  JsonWriter& Int(int64_t v) { w_.Int64(v); return *this; }
  JsonWriter& Bool(bool b) { w_.Bool(b); return *this; }
  JsonWriter& Null() { w_.Null(); return *this; }
  JsonWriter& Time(int64_t unix_ms);  // RFC 3339 with ms
  JsonWriter& StrOrNull(std::string_view s) { return s.empty() ? Null() : Str(s); }
  JsonWriter& BeginObject() { w_.StartObject(); return *this; }
  JsonWriter& EndObject() { w_.EndObject(); return *this; }
  JsonWriter& BeginArray() { w_.StartArray(); return *this; }
  JsonWriter& EndArray() { w_.EndArray(); return *this; }
  // Inserts already-serialized JSON as a value.
  JsonWriter& Raw(std::string_view json) {
    w_.RawValue(json.data(), json.size(), rapidjson::kObjectType);
    return *this;
  }
  std::string Take() { return std::string(buf_.GetString(), buf_.GetSize()); }
  std::string_view View() const { return {buf_.GetString(), buf_.GetSize()}; }

 private:
  static constexpr size_t kInitialBytes = 1024;
  rapidjson::StringBuffer buf_;
  rapidjson::Writer<rapidjson::StringBuffer> w_;
};

}  // namespace chatd::json
