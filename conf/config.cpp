// conf/config.cpp — reading chatd.toml with toml11 and checking it against the key table.
//
// This is the only file that includes toml11 (it compiles slowly). toml11 throws; every
// exception stops here and becomes a Status naming the file, the line and the key.
#include "conf/config.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>
#include <toml.hpp>

#include "base/utf8.h"

namespace chatd::conf {
namespace {

constexpr size_t kMaxFileBytes = 1 << 20;  // a real chatd.toml is a few KB
constexpr int kMaxNesting = 32;            // toml11 parses arrays and inline tables recursively
constexpr int kMaxDots = 32;               // ...and builds one nested table per dotted-key part
constexpr size_t kMaxErrors = 10;

struct Error {
  uint32_t line;  // 0: no line (the file as a whole)
  std::string text;
};

// A value as the user wrote it, for "got ..." in messages.
std::string Quoted(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < 64; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > 64) out += "...";
  return out + "\"";
}

std::string Describe(const toml::value& v) {
  switch (v.type()) {
    case toml::value_t::string:
      return "string " + Quoted(v.as_string().str);
    case toml::value_t::integer:
      return "integer " + std::to_string(v.as_integer());
    case toml::value_t::floating: {
      std::ostringstream os;
      os << v.as_floating();
      return "float " + os.str();
    }
    case toml::value_t::boolean:
      return v.as_boolean() ? "true" : "false";
    case toml::value_t::array:
      return "an array";
    case toml::value_t::table:
      return "a table";
    default:
      return "a date or time";
  }
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// " (did you mean 'x'?)" for the candidate closest to `word`, if it is close.
std::string Suggest(std::string_view word, const std::vector<std::string_view>& candidates) {
  std::string_view best;
  size_t best_distance = 3;  // suggest only within two edits
  for (std::string_view c : candidates) {
    const size_t d = EditDistance(word, c);
    if (d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  return best.empty() ? "" : " (did you mean '" + std::string(best) + "'?)";
}

// "90s", "15m", "2h", "30d" -> seconds.
bool ParseDuration(std::string_view s, int64_t* seconds) {
  if (s.size() < 2 || s.size() > 12) return false;
  int64_t n = 0;
  for (char c : s.substr(0, s.size() - 1)) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  switch (s.back()) {
    case 's':
      *seconds = n;
      return true;
    case 'm':
      *seconds = n * 60;
      return true;
    case 'h':
      *seconds = n * 3600;
      return true;
    case 'd':
      *seconds = n * 86400;
      return true;
    default:
      return false;
  }
}

// Rejects, before toml11 sees it, input that toml11 3.7.1 handles badly:
// - invalid UTF-8: its error path for a bad byte in a '''literal string''' reads out of
//   bounds (found by fuzz/config_fuzz.cpp);
// - deep nesting of arrays or inline tables, and long dotted keys: it recurses.
// Strings and comments are skipped roughly as TOML lexes them; the limits are far beyond
// any real config.
std::optional<Error> CheckShape(std::string_view t) {
  if (t.size() > kMaxFileBytes) {
    return Error{0, "file too large (over " + std::to_string(kMaxFileBytes) + " bytes)"};
  }
  if (const size_t bad = Utf8InvalidAt(t); bad < t.size()) {
    const auto line = static_cast<uint32_t>(1 + std::count(t.begin(), t.begin() + static_cast<ptrdiff_t>(bad), '\n'));
    return Error{line, "invalid UTF-8 (a TOML file must be UTF-8)"};
  }
  uint32_t line = 1;
  int depth = 0;
  int dots = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (c == '\n') {
      ++line;
      dots = 0;
    } else if (c == '#') {
      while (i + 1 < t.size() && t[i + 1] != '\n') ++i;
    } else if (c == '"' || c == '\'') {
      const bool multi = t.substr(i, 3) == std::string(3, c);
      for (i += multi ? 3 : 1; i < t.size(); ++i) {
        if (t[i] == '\\' && c == '"' && i + 1 < t.size() && t[i + 1] != '\n') {
          ++i;
        } else if (t[i] == '\n') {
          ++line;
          if (!multi) break;  // unterminated; toml11 reports it
        } else if (t[i] == c && (!multi || t.substr(i, 3) == std::string(3, c))) {
          if (multi) i += 2;
          break;
        }
      }
    } else if (c == '[' || c == '{') {
      dots = 0;
      if (++depth > kMaxNesting) return Error{line, "arrays or tables nested too deeply"};
    } else if (c == ']' || c == '}') {
      depth = std::max(0, depth - 1);
    } else if (c == '=' || c == ',') {
      dots = 0;
    } else if (c == '.' && ++dots > kMaxDots) {
      return Error{line, "dotted key too long"};
    }
  }
  return std::nullopt;
}

// Turns toml11's multi-line, source-quoting message into one line and its line number:
// "[error] toml::parse_table: invalid line format\n --> f\n 3 | a = 1 x\n   | ^--- expected
// newline, but got 'x'." becomes {3, "TOML syntax error: invalid line format (expected
// newline, but got 'x')"}. Where toml11 shows several places, the last one is the error.
Error SyntaxError(const toml::exception& e) {
  std::istringstream in{std::string(e.what())};
  std::string summary;
  std::string hint;
  uint32_t line = e.location().line();
  bool first = true;
  for (std::string l; std::getline(in, l); first = false) {
    if (first) {
      summary = l.starts_with("[error] ") ? l.substr(8) : l;
      // Drop toml11's function name ("toml::parse_table: ").
      const size_t colon = summary.find(": ");
      const size_t space = summary.find(' ');
      if (colon != std::string::npos && colon < space) summary.erase(0, colon + 2);
      if (summary.find(' ') == std::string::npos) summary.clear();  // only a function name
      continue;
    }
    const size_t bar = l.find(" | ");
    if (bar == std::string::npos) continue;
    const std::string lhs = l.substr(0, bar);
    const size_t digits = lhs.find_first_not_of(' ');
    if (digits != std::string::npos &&
        lhs.find_first_not_of("0123456789", digits) == std::string::npos) {
      line = static_cast<uint32_t>(std::strtoul(lhs.c_str() + digits, nullptr, 10));
    } else if (digits == std::string::npos) {
      // "   | ^--- hint" or "   | ~~~~ hint": the text after the marker.
      const std::string rhs = l.substr(bar + 3);
      const size_t mark = rhs.find_first_of("^~");
      if (mark != std::string::npos) {
        const size_t text = rhs.find(' ', mark);
        hint = text == std::string::npos ? "" : rhs.substr(text + 1);
      }
    }
  }
  auto trim = [](std::string s) {
    while (!s.empty() && (s.back() == '.' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
    return s.size() > 160 ? s.substr(0, 160) + "..." : s;
  };
  summary = trim(summary);
  hint = trim(hint);
  if (hint == "here" || hint == summary) hint.clear();
  std::string text = "TOML syntax error: " + (summary.empty() ? hint : summary);
  if (!summary.empty() && !hint.empty()) text += " (" + hint + ")";
  return {line, text};
}

bool IsChoice(const KeySpec& k, std::string_view s) {
  return std::find(k.choices.begin(), k.choices.end(), s) != k.choices.end();
}

// What a string or enum key accepts: "one of debug|info|warn|error", its format, or "a string".
std::string Expected(const KeySpec& k) {
  if (k.type != KeyType::kEnum) return k.format.empty() ? "a string" : std::string(k.format);
  std::string s = "one of";
  for (size_t i = 0; i < k.choices.size(); ++i) s.append(i ? "|" : " ").append(k.choices[i]);
  return s;
}

class Checker {
 public:
  explicit Checker(Config* config) : config_(config) {
    for (const KeySpec& k : KeyTable()) {
      if (std::find(tables_.begin(), tables_.end(), k.table()) == tables_.end()) {
        tables_.push_back(k.table());
      }
    }
  }

  void Check(const toml::value& root) {
    for (const auto& [name, v] : root.as_table()) {
      const uint32_t line = v.location().line();
      if (name == "peers") {
        CheckPeers(v);
        continue;
      }
      const bool known = std::find(tables_.begin(), tables_.end(), name) != tables_.end();
      if (known && v.is_table()) {
        table_lines_[name] = line;
        for (const auto& [key, value] : v.as_table()) CheckKey(name, key, value);
      } else if (known) {
        Fail(line, "'" + name + "' must be a table [" + name + "], got " + Describe(v));
      } else if (v.is_table()) {
        Fail(line, "unknown table [" + name + "]" + Suggest(name, tables_));
      } else {
        std::string hint;
        for (const KeySpec& k : KeyTable()) {
          if (k.name() != name) continue;
          hint =
              " (did you mean '" + std::string(k.key) + "' in [" + std::string(k.table()) + "]?)";
        }
        Fail(line, "unknown key '" + name + "' outside any table" + hint);
      }
    }
    for (const KeySpec& k : KeyTable()) {
      if (!k.required || lines_.count(k.key)) continue;
      const auto t = table_lines_.find(std::string(k.table()));
      if (t != table_lines_.end()) {
        Fail(t->second, "key '" + std::string(k.key) + "' is required but missing from [" +
                            std::string(k.table()) + "]");
      } else {
        Fail(0, "key '" + std::string(k.key) + "' is required; add it under [" +
                    std::string(k.table()) + "]");
      }
    }
    if (errors_.empty()) CheckAcrossKeys();
  }

  std::vector<Error>& errors() { return errors_; }

 private:
  void Fail(uint32_t line, std::string text) { errors_.push_back({line, std::move(text)}); }
  void FailKey(const KeySpec& k, uint32_t line, const std::string& text) {
    Fail(line, "key '" + std::string(k.key) + "': " + text);
  }

  void CheckKey(const std::string& table, const std::string& key, const toml::value& v) {
    const std::string dotted = table + "." + key;
    const uint32_t line = v.location().line();
    const KeySpec* spec = FindKey(dotted);
    if (spec == nullptr) {
      std::vector<std::string_view> names;
      for (const KeySpec& k : KeyTable()) {
        if (k.table() == table) names.push_back(k.key);
      }
      Fail(line, "unknown key '" + dotted + "'" + Suggest(dotted, names));
      return;
    }
    lines_[spec->key] = line;
    Set(*spec, v, line);
  }

  template <typename T>
  T* Field(const KeySpec& k) {
    auto* member = std::get_if<T Config::*>(&k.field);
    return member ? &(config_->**member) : nullptr;
  }

  void Set(const KeySpec& k, const toml::value& v, uint32_t line) {
    switch (k.type) {
      case KeyType::kString:
      case KeyType::kEnum: {
        const std::string* s = v.is_string() ? &v.as_string().str : nullptr;
        const bool ok =
            s != nullptr && (k.type == KeyType::kEnum ? IsChoice(k, *s) : !k.valid || k.valid(*s));
        if (!ok) return FailKey(k, line, "expected " + Expected(k) + ", got " + Describe(v));
        if (auto* f = Field<std::string>(k)) *f = *s;
        return;
      }
      case KeyType::kHostPort: {
        if (!v.is_string()) {
          return FailKey(k, line, "expected \"HOST:PORT\", got " + Describe(v));
        }
        Result<HostPort> hp = ParseHostPort(v.as_string().str);
        if (!hp.ok()) return FailKey(k, line, hp.status().message());
        if (auto* f = Field<HostPort>(k)) *f = std::move(hp).value();
        return;
      }
      case KeyType::kBool:
        if (!v.is_boolean()) return FailKey(k, line, "expected true or false, got " + Describe(v));
        if (auto* f = Field<bool>(k)) *f = v.as_boolean();
        return;
      case KeyType::kInt:
      case KeyType::kSeconds: {
        const bool seconds = k.type == KeyType::kSeconds;
        const std::string range = std::to_string(k.min) + ".." + std::to_string(k.max);
        int64_t n = 0;
        bool ok = v.is_integer();
        if (ok) n = v.as_integer();
        if (seconds && v.is_string()) ok = ParseDuration(v.as_string().str, &n);
        if (!ok || n < k.min || n > k.max) {
          const std::string what =
              seconds ? "seconds in " + range +
                            R"( (an integer, or a string like "90s" "15m" "2h" "30d"))"
                      : "an integer in " + range;
          return FailKey(k, line, "expected " + what + ", got " + Describe(v));
        }
        if (auto* f = Field<int>(k)) *f = static_cast<int>(n);
        return;
      }
    }
  }

  void CheckPeers(const toml::value& v) {
    const uint32_t line = v.location().line();
    if (!v.is_array()) return Fail(line, "'peers' must be an array of tables: [[peers]]");
    for (const toml::value& entry : v.as_array()) {
      const uint32_t l = entry.location().line();
      if (!entry.is_table()) {
        Fail(l, "'peers' must be an array of tables: [[peers]]");
        continue;
      }
      Peer p;
      bool ok = true;
      for (const auto& [key, value] : entry.as_table()) {
        const uint32_t kl = value.location().line();
        std::string* field = key == "name"      ? &p.name
                             : key == "url"     ? &p.url
                             : key == "api_url" ? &p.api_url
                             : key == "key"     ? &p.key
                                                : nullptr;
        if (field == nullptr) {
          Fail(kl, "unknown key 'peers." + key + "' (a peer has name, url, api_url and key)");
          ok = false;
        } else if (!value.is_string()) {
          Fail(kl, "key 'peers." + key + "': expected a string, got " + Describe(value));
          ok = false;
        } else {
          *field = value.as_string().str;
        }
      }
      if (!ok) continue;
      Status st = ValidatePeer(p);
      if (!st.ok()) {
        Fail(l, st.message());
        continue;
      }
      for (const Peer& other : config_->peers) {
        if (other.name == p.name) Fail(l, "peer '" + p.name + "' is listed twice");
      }
      peer_lines_.push_back(l);
      config_->peers.push_back(std::move(p));
    }
  }

  uint32_t LineOf(std::string_view key) const {
    const auto it = lines_.find(key);
    return it == lines_.end() ? 0 : it->second;
  }

  // Rules that involve two keys. Reported at the key the file sets (or the first one).
  void CheckAcrossKeys() {
    auto fail = [&](std::string_view a, std::string_view b, const std::string& text) {
      const uint32_t line = LineOf(a) ? LineOf(a) : LineOf(b);
      Fail(line, "key '" + std::string(line == LineOf(a) ? a : b) + "': " + text);
    };
    const Config& c = *config_;
    for (size_t i = 0; i < c.peers.size(); ++i) {
      if (c.peers[i].name == c.relay_name) {
        Fail(peer_lines_[i], "peer '" + c.peers[i].name + "' is this relay's own name");
      }
    }
    if (c.max_content_bytes >= c.max_frame_bytes) {
      fail("limits.max_content_bytes", "limits.max_frame_bytes",
           "limits.max_content_bytes (" + std::to_string(c.max_content_bytes) +
               ") must be less than limits.max_frame_bytes (" + std::to_string(c.max_frame_bytes) +
               ")");
    }
    if (c.idle_timeout_s <= c.ping_interval_s) {
      fail("gateway.idle_timeout", "gateway.ping_interval",
           "gateway.idle_timeout (" + std::to_string(c.idle_timeout_s) +
               ") must exceed gateway.ping_interval (" + std::to_string(c.ping_interval_s) + ")");
    }
    const std::pair<std::string_view, const HostPort*> listen[] = {
        {"listen.api", &c.api},
        {"listen.gateway", &c.gateway},
        {"listen.federation", &c.federation},
        {"listen.admin", &c.admin}};
    for (size_t i = 0; i < std::size(listen); ++i) {
      for (size_t j = i + 1; j < std::size(listen); ++j) {
        if (listen[i].second->port != 0 && *listen[i].second == *listen[j].second) {
          fail(listen[j].first, listen[i].first,
               listen[i].second->ToString() + " is used by both " + std::string(listen[i].first) +
                   " and " + std::string(listen[j].first));
        }
      }
    }
  }

  Config* config_;
  std::vector<std::string_view> tables_;
  std::map<std::string, uint32_t> table_lines_;
  std::map<std::string_view, uint32_t> lines_;  // keys the file sets -> line
  std::vector<Error> errors_;
  std::vector<uint32_t> peer_lines_;
};

// "file:7: text" lines, ordered by line, errors without a line last.
Status ErrorStatus(const std::string& file, std::vector<Error> errors) {
  std::stable_sort(errors.begin(), errors.end(), [](const Error& a, const Error& b) {
    return (a.line ? a.line : UINT32_MAX) < (b.line ? b.line : UINT32_MAX);
  });
  std::string m;
  for (size_t i = 0; i < errors.size() && i < kMaxErrors; ++i) {
    if (i) m += "\n";
    m +=
        file + (errors[i].line ? ":" + std::to_string(errors[i].line) : "") + ": " + errors[i].text;
  }
  if (errors.size() > kMaxErrors) {
    m += "\n" + file + ": " + std::to_string(errors.size() - kMaxErrors) + " more errors";
  }
  return BadRequest(std::move(m));
}

// config_path = absolute form of `path`; a relative data_dir is resolved against its
// directory. Purely lexical apart from reading the working directory.
void ResolvePaths(const std::string& path, Config* c) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path file = path.empty() ? fs::path() : fs::absolute(path, ec).lexically_normal();
  c->config_path = file.string();
  fs::path dir = path.empty() ? fs::current_path(ec) : file.parent_path();
  fs::path data(c->data_dir);
  if (data.is_relative()) data = dir / data;
  std::string resolved = data.lexically_normal().string();
  if (resolved.size() > 1 && resolved.back() == '/') resolved.pop_back();
  c->data_dir = resolved;
}

Result<Config> Parse(std::string_view text, const std::string& path) {
  const std::string file = path.empty() ? "<config>" : path;
  if (auto shape = CheckShape(text)) return ErrorStatus(file, {*shape});
  toml::value root;
  try {
    std::istringstream in{std::string(text)};
    root = toml::parse(in, file);
  } catch (const toml::exception& e) {
    return ErrorStatus(file, {SyntaxError(e)});
  }
  Config config;
  Checker checker(&config);
  checker.Check(root);
  if (!checker.errors().empty()) return ErrorStatus(file, std::move(checker.errors()));
  ResolvePaths(path, &config);
  return config;
}

}  // namespace

Result<Config> ParseConfigText(std::string_view text, const std::string& path_for_errors) {
  try {
    return Parse(text, path_for_errors);
  } catch (const std::exception& e) {  // bad_alloc, or a toml11 path we did not foresee
    return BadRequest((path_for_errors.empty() ? "<config>" : path_for_errors) +
                      ": cannot parse: " + e.what());
  }
}

Status ValidatePeer(const Peer& p) {
  auto bad = [](const std::string& m) { return Status(Code::kBadRequest, m); };
  bool name_ok = !p.name.empty() && p.name.size() <= 32 && std::islower(static_cast<unsigned char>(p.name[0]));
  for (char ch : p.name) {
    if (!(std::islower(static_cast<unsigned char>(ch)) || std::isdigit(static_cast<unsigned char>(ch)) || ch == '-')) {
      name_ok = false;
    }
  }
  if (!name_ok) return bad("key 'peers.name': expected a relay name ([a-z][a-z0-9-]{0,31}), got \"" + p.name + "\"");
  if (p.key.rfind("ed25519:", 0) != 0 || p.key.size() != 8 + 43) {
    return bad("key 'peers.key' of peer '" + p.name + "': expected \"ed25519:<43 base64url chars>\" (chatctl keys show)");
  }
  for (char ch : p.key.substr(8)) {
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_')) {
      return bad("key 'peers.key' of peer '" + p.name + "': not base64url");
    }
  }
  if (!p.url.empty()) {
    if (p.url.rfind("ws://", 0) != 0) {
      return bad("key 'peers.url' of peer '" + p.name + "': expected \"ws://HOST:PORT\", got \"" + p.url + "\"");
    }
    auto hp = ParseHostPort(std::string_view(p.url).substr(5));
    if (!hp.ok() || hp->port == 0) {
      return bad("key 'peers.url' of peer '" + p.name + "': expected \"ws://HOST:PORT\", got \"" + p.url + "\"");
    }
  }
  if (!p.api_url.empty()) {
    auto hp = p.api_url.rfind("http://", 0) == 0 ? ParseHostPort(std::string_view(p.api_url).substr(7))
                                                 : Result<HostPort>(BadRequest("scheme"));
    if (!hp.ok() || hp->port == 0) {
      return bad("key 'peers.api_url' of peer '" + p.name + "': expected \"http://HOST:PORT\", got \"" + p.api_url +
                 "\"");
    }
  }
  return Status::Ok();
}

std::string PeerToml(const Peer& p) {
  std::string out = "\n[[peers]]\nname = \"" + p.name + "\"\n";
  if (!p.url.empty()) out += "url = \"" + p.url + "\"\n";
  if (!p.api_url.empty()) out += "api_url = \"" + p.api_url + "\"\n";
  out += "key = \"" + p.key + "\"\n";
  return out;
}

Result<Config> LoadConfig(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError(path + ": cannot open: " + std::strerror(errno));
  std::string text;
  char buf[16384];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || text.size() > kMaxFileBytes) break;
    text.append(buf, static_cast<size_t>(n));
  }
  const int read_errno = errno;
  ::close(fd);
  if (n < 0) return IoError(path + ": cannot read: " + std::strerror(read_errno));
  return ParseConfigText(text, path);
}

}  // namespace chatd::conf
