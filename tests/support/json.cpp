#include "tests/support/json.h"

#include <cctype>
#include <cstdio>
#include <ctime>

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace chatd::test {
namespace {

const rapidjson::Value& NullValue() {
  static const rapidjson::Value kNull;
  return kNull;
}

}  // namespace

Json::Json() : doc_(std::make_shared<rapidjson::Document>()) {}

Result<Json> Json::Parse(std::string_view text) {
  Json j;
  j.text_.assign(text);
  j.doc_->Parse(j.text_.data(), j.text_.size());
  if (j.doc_->HasParseError()) {
    return BadRequest(std::string("invalid JSON at offset ") +
                      std::to_string(j.doc_->GetErrorOffset()) + ": " +
                      rapidjson::GetParseError_En(j.doc_->GetParseError()));
  }
  return j;
}

Json Json::FromValue(const rapidjson::Value& v) {
  Json j;
  j.doc_->CopyFrom(v, j.doc_->GetAllocator());
  j.text_ = Dump(v);
  return j;
}

const rapidjson::Value& Json::operator[](const char* key) const { return Get(*doc_, key); }

bool Json::Has(const char* key) const { return doc_->IsObject() && doc_->HasMember(key); }

std::string Json::Str(const char* key) const { return StrOf(Get(*doc_, key)); }

const rapidjson::Value& Get(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject()) return NullValue();
  auto it = v.FindMember(key);
  return it == v.MemberEnd() ? NullValue() : it->value;
}

const rapidjson::Value& At(const rapidjson::Value& v, std::string_view path) {
  const rapidjson::Value* cur = &v;
  while (!path.empty()) {
    size_t dot = path.find('.');
    std::string key(path.substr(0, dot));
    cur = &Get(*cur, key.c_str());
    if (dot == std::string_view::npos) break;
    path.remove_prefix(dot + 1);
  }
  return *cur;
}

std::string StrOf(const rapidjson::Value& v) {
  return v.IsString() ? std::string(v.GetString(), v.GetStringLength()) : std::string();
}

std::string Dump(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

std::string Quote(std::string_view s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  return std::string(buf.GetString(), buf.GetSize());
}

std::string TypeName(const rapidjson::Value& v) {
  if (v.IsNull()) return "null";
  if (v.IsBool()) return "bool";
  if (v.IsNumber()) return "number";
  if (v.IsString()) return "string";
  if (v.IsArray()) return "array";
  return "object";
}

bool IsDecimalId(const rapidjson::Value& v) { return IdOf(v).has_value(); }

std::optional<uint64_t> IdOf(const rapidjson::Value& v) {
  if (!v.IsString()) return std::nullopt;
  std::string_view s(v.GetString(), v.GetStringLength());
  if (s.empty() || s.size() > 19) return std::nullopt;
  if (s.size() > 1 && s[0] == '0') return std::nullopt;
  uint64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  if (n == 0 || n > 0x7fffffffffffffffULL) return std::nullopt;  // 63-bit, positive
  return n;
}

std::optional<int64_t> ParseRfc3339Ms(std::string_view s) {
  // Exactly YYYY-MM-DDTHH:MM:SS.mmmZ (24 characters).
  if (s.size() != 24) return std::nullopt;
  static const char kPattern[] = "dddd-dd-ddTdd:dd:dd.dddZ";
  for (size_t i = 0; i < 24; ++i) {
    if (kPattern[i] == 'd') {
      if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
    } else if (s[i] != kPattern[i]) {
      return std::nullopt;
    }
  }
  auto num = [&](size_t pos, size_t len) {
    int v = 0;
    for (size_t i = 0; i < len; ++i) v = v * 10 + (s[pos + i] - '0');
    return v;
  };
  struct tm tm {};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(5, 2) - 1;
  tm.tm_mday = num(8, 2);
  tm.tm_hour = num(11, 2);
  tm.tm_min = num(14, 2);
  tm.tm_sec = num(17, 2);
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60) {
    return std::nullopt;
  }
  time_t secs = timegm(&tm);
  return static_cast<int64_t>(secs) * 1000 + num(20, 3);
}

bool IsRfc3339Ms(const rapidjson::Value& v) {
  return v.IsString() && ParseRfc3339Ms(std::string_view(v.GetString(), v.GetStringLength()));
}

void JsonBuilder::Key(std::string_view key) {
  if (!first_) out_ += ',';
  first_ = false;
  out_ += Quote(key);
  out_ += ':';
}

JsonBuilder& JsonBuilder::Add(std::string_view key, std::string_view value) {
  Key(key);
  out_ += Quote(value);
  return *this;
}

JsonBuilder& JsonBuilder::Add(std::string_view key, int64_t value) {
  Key(key);
  out_ += std::to_string(value);
  return *this;
}

JsonBuilder& JsonBuilder::Add(std::string_view key, bool value) {
  Key(key);
  out_ += value ? "true" : "false";
  return *this;
}

JsonBuilder& JsonBuilder::Null(std::string_view key) {
  Key(key);
  out_ += "null";
  return *this;
}

JsonBuilder& JsonBuilder::Raw(std::string_view key, std::string_view json) {
  Key(key);
  out_ += json;
  return *this;
}

std::string JsonStringArray(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += Quote(items[i]);
  }
  return out + "]";
}

}  // namespace chatd::test
