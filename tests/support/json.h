// tests/support/json.h — JSON for tests: parsed documents, a tiny builder, shape checks.
//
// Json owns a parsed RapidJSON document (shared, so copies are cheap and read-only) and
// keeps the text it came from, for failure messages. JsonBuilder writes a JSON object
// with correct escaping (tests never glue JSON together by hand). The shape checks
// (IsDecimalId, IsRfc3339Ms) encode PROTOCOL.md's conventions. Nothing here is
// thread-safe beyond "distinct objects may be used on distinct threads".
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

#include "base/status.h"

namespace chatd::test {

class Json {
 public:
  Json();  // null
  static Result<Json> Parse(std::string_view text);
  // Wraps a copy of one value (used to split a server batch into its events).
  static Json FromValue(const rapidjson::Value& v);

  const rapidjson::Value& root() const { return *doc_; }
  const std::string& text() const { return text_; }
  bool IsObject() const { return doc_->IsObject(); }
  bool IsNull() const { return doc_->IsNull(); }

  // Field access on the root object; missing members yield a shared null value.
  const rapidjson::Value& operator[](const char* key) const;
  bool Has(const char* key) const;
  // The string member `key`, or "" if it is absent or not a string.
  std::string Str(const char* key) const;
  // "type" of an event.
  std::string type() const { return Str("type"); }

 private:
  std::shared_ptr<rapidjson::Document> doc_;
  std::string text_;
};

// Member lookup on any value; a shared null when absent or when v is not an object.
const rapidjson::Value& Get(const rapidjson::Value& v, const char* key);
// Path lookup "data.participants" (object members only).
const rapidjson::Value& At(const rapidjson::Value& v, std::string_view dotted_path);
std::string StrOf(const rapidjson::Value& v);          // the string, or "" if not a string
std::string Dump(const rapidjson::Value& v);           // compact JSON text
std::string Quote(std::string_view s);                 // a JSON string literal
std::string TypeName(const rapidjson::Value& v);       // "string", "number", …

// PROTOCOL.md: ids are decimal strings of 63-bit snowflakes.
bool IsDecimalId(const rapidjson::Value& v);
std::optional<uint64_t> IdOf(const rapidjson::Value& v);  // from a decimal id string
// PROTOCOL.md: times are RFC 3339 UTC with milliseconds: 2026-01-15T10:35:00.123Z.
bool IsRfc3339Ms(const rapidjson::Value& v);
// Milliseconds since the epoch of such a string (nullopt if malformed).
std::optional<int64_t> ParseRfc3339Ms(std::string_view s);

// Builds one JSON object: JsonBuilder().Add("a", "x").Add("n", 5).Raw("l", "[1]").str().
class JsonBuilder {
 public:
  JsonBuilder& Add(std::string_view key, std::string_view value);
  JsonBuilder& Add(std::string_view key, const char* value) { return Add(key, std::string_view(value)); }
  JsonBuilder& Add(std::string_view key, const std::string& value) { return Add(key, std::string_view(value)); }
  JsonBuilder& Add(std::string_view key, int64_t value);
  JsonBuilder& Add(std::string_view key, int value) { return Add(key, static_cast<int64_t>(value)); }
  JsonBuilder& Add(std::string_view key, bool value);
  JsonBuilder& Null(std::string_view key);
  // Inserts already-serialized JSON (an array, an object, a number as sent by the server).
  JsonBuilder& Raw(std::string_view key, std::string_view json);
  std::string str() const { return out_ + "}"; }

 private:
  void Key(std::string_view key);
  std::string out_ = "{";
  bool first_ = true;
};

// ["a","b"] from strings.
std::string JsonStringArray(const std::vector<std::string>& items);

}  // namespace chatd::test
