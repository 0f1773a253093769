// conf/keys.cpp — THE key table of chatd.toml, and what is generated from it: the
// commented example file and the chatd.toml(5) man page.
//
// To add a key: add a Config member (conf/config.h) and one row below. Parsing,
// validation, the example config and the man page follow; then regenerate
// man/chatd.toml.5 (see tests/unit/conf_config_test.cpp).
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "conf/config.h"

namespace chatd::conf {
namespace {

bool IsRelayName(std::string_view s) {
  if (s.empty() || s.size() > 32 || s[0] < 'a' || s[0] > 'z') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}
bool IsPath(std::string_view s) { return !s.empty() && s.find('\0') == std::string_view::npos; }
bool IsUrl(std::string_view s, std::string_view a, std::string_view b) {
  if (s.empty()) return true;
  const bool scheme =
      (s.starts_with(a) && s.size() > a.size()) || (s.starts_with(b) && s.size() > b.size());
  return scheme && std::none_of(s.begin(), s.end(), [](char c) {
           return static_cast<unsigned char>(c) <= ' ' || c == 0x7f;
         });
}
bool IsWsUrl(std::string_view s) { return IsUrl(s, "ws://", "wss://"); }
bool IsHttpUrl(std::string_view s) { return IsUrl(s, "http://", "https://"); }

// Tables in file order, with the comment that introduces each.
struct TableDoc {
  std::string_view name;
  std::string_view doc;
};
const TableDoc kTables[] = {
    {"relay", "Identity of this relay and where it keeps its data."},
    {"listen", "Listening sockets, each \"HOST:PORT\". Port 0 picks a free port."},
    {"public",
     "Addresses announced to clients, when they differ from the listening ones\n"
     "(behind a reverse proxy or NAT)."},
    {"auth", "Tokens, password hashing and login rate limits."},
    {"limits", "Sizes and counts. Requests beyond them are refused with an error."},
    {"gateway", "Client WebSocket sessions."},
    {"store", "The SQLite store."},
    {"api", "The REST API server."},
    {"federation", "Replication with the relays pinned in [[peers]] (see the end of this file)."},
    {"log", "Logging: JSON lines on stderr."},
};

std::vector<KeySpec> BuildTable() {
  using K = KeyType;
  // One key per row reads better than clang-format's one field per line.
  // clang-format off
  return {
      // [relay]
      {.key = "relay.name", .type = K::kString, .field = &Config::relay_name, .required = true,
       .format = "1..32 chars of [a-z0-9-], starting with a letter", .valid = IsRelayName,
       .doc = "Name of this relay, unique in its federation: users here are\n"
              "name@<relay>. It must not change once the store exists."},
      {.key = "relay.node_id", .type = K::kInt, .field = &Config::node_id, .required = true,
       .min = 0, .max = 1023,
       .doc = "Node number, unique in the federation. It is the low 10 bits of every id\n"
              "this relay creates."},
      {.key = "relay.data_dir", .type = K::kString, .field = &Config::data_dir, .def = ".",
       .format = "a directory", .valid = IsPath,
       .doc = "Directory of the store, file blobs and the node key. A relative path is\n"
              "resolved against the directory of this file."},
      // [listen]
      {.key = "listen.api", .type = K::kHostPort, .field = &Config::api, .def = "127.0.0.1:8080",
       .doc = "REST API, /livez, /readyz and /metrics."},
      {.key = "listen.gateway", .type = K::kHostPort, .field = &Config::gateway,
       .def = "127.0.0.1:8081", .doc = "Client WebSocket endpoint, /ws."},
      {.key = "listen.federation", .type = K::kHostPort, .field = &Config::federation,
       .def = "127.0.0.1:8082", .doc = "Peer links from the other relays of the federation."},
      {.key = "listen.admin", .type = K::kHostPort, .field = &Config::admin,
       .def = "127.0.0.1:8083",
       .doc = "Admin API used by chatctl. Keep it on loopback: the admin token grants\n"
              "full control."},
      // [public]
      {.key = "public.gateway_url", .type = K::kString, .field = &Config::public_gateway_url,
       .def = "", .format = "\"\" or a ws:// or wss:// URL", .valid = IsWsUrl,
       .doc = "WebSocket URL given to clients. Empty: ws://HOST:PORT/ws of listen.gateway."},
      {.key = "public.api_url", .type = K::kString, .field = &Config::public_api_url, .def = "",
       .format = "\"\" or an http:// or https:// URL", .valid = IsHttpUrl,
       .doc = "REST API base URL given to clients and peers. Empty: http://HOST:PORT of\n"
              "listen.api."},
      // [auth]
      {.key = "auth.access_token_ttl", .type = K::kSeconds, .field = &Config::access_token_ttl_s,
       .def = "3600", .min = 60, .max = 86400,
       .doc = "Lifetime of access tokens."},
      {.key = "auth.refresh_token_ttl", .type = K::kSeconds,
       .field = &Config::refresh_token_ttl_s, .def = "2592000", .min = 300, .max = 31536000,
       .doc = "Lifetime of refresh tokens: a client that does not refresh within it must\n"
              "log in again."},
      {.key = "auth.argon2_ops", .type = K::kInt, .field = &Config::argon2_ops, .def = "2",
       .min = 2, .max = 10,
       .doc = "Argon2id passes per password hash. Stored hashes keep their parameters;\n"
              "new passwords use the current ones."},
      {.key = "auth.argon2_mem_kib", .type = K::kInt, .field = &Config::argon2_mem_kib,
       .def = "19456", .min = 19456, .max = 1048576,
       .doc = "Argon2id memory per hash, in KiB (at least OWASP's 19 MiB). Every login in\n"
              "progress holds this much memory."},
      {.key = "auth.login_per_account_per_min", .type = K::kInt,
       .field = &Config::login_per_account_per_min, .def = "10", .min = 1, .max = 10000,
       .doc = "Login attempts per account per minute; more get rate_limited."},
      {.key = "auth.login_per_ip_per_min", .type = K::kInt, .field = &Config::login_per_ip_per_min,
       .def = "60", .min = 1, .max = 100000,
       .doc = "Login attempts per client IP address per minute; more get rate_limited."},
      {.key = "auth.register_per_ip_per_min", .type = K::kInt,
       .field = &Config::register_per_ip_per_min, .def = "30", .min = 1, .max = 100000,
       .doc = "Account registrations per client IP address per minute."},
      // [limits]
      {.key = "limits.max_group_members", .type = K::kInt, .field = &Config::max_group_members,
       .def = "1000", .min = 2, .max = 100000,
       .doc = "Most members a group chat may have."},
      {.key = "limits.max_frame_bytes", .type = K::kInt, .field = &Config::max_frame_bytes,
       .def = "65536", .min = 1024, .max = 16777216,
       .doc = "Largest WebSocket message a client may send; a larger one is answered with a\n"
              "too_large error and the session stays open. Must exceed limits.max_content_bytes."},
      {.key = "limits.max_body_bytes", .type = K::kInt, .field = &Config::max_body_bytes,
       .def = "1048576", .min = 1024, .max = 67108864,
       .doc = "Largest REST request body; a larger one gets too_large (413)."},
      {.key = "limits.max_content_bytes", .type = K::kInt, .field = &Config::max_content_bytes,
       .def = "16384", .min = 1, .max = 1048576,
       .doc = "Largest message text, in bytes of UTF-8."},
      {.key = "limits.session_queue_bytes", .type = K::kInt,
       .field = &Config::session_queue_bytes, .def = "4194304", .min = 65536, .max = 1073741824,
       .doc = "Bytes that may wait for one client session. A slower consumer is\n"
              "disconnected and resumes from its cursor when it reconnects."},
      {.key = "limits.history_page_max", .type = K::kInt, .field = &Config::history_page_max,
       .def = "100", .min = 1, .max = 1000,
       .doc = "Most messages one history request returns."},
      {.key = "limits.max_connections", .type = K::kInt, .field = &Config::max_connections,
       .def = "19000", .min = 1, .max = 1000000,
       .doc = "Most client WebSocket connections at once; more are refused. The file\n"
              "descriptor limit (ulimit -n) must allow them."},
      {.key = "limits.max_file_bytes", .type = K::kInt, .field = &Config::max_file_bytes,
       .def = "104857600", .min = 1024, .max = 2147483647,
       .doc = "Largest file a client may upload (POST /files/upload or a resumable upload);\n"
              "a larger one gets too_large (413) and nothing is stored."},
      {.key = "limits.upload_chunk_bytes", .type = K::kInt, .field = &Config::upload_chunk_bytes,
       .def = "4194304", .min = 16384, .max = 67108864,
       .doc = "Chunk size of resumable uploads (POST /files/uploads): every chunk but the last\n"
              "must be exactly this long."},
      {.key = "limits.ephemeral_burst", .type = K::kInt, .field = &Config::ephemeral_burst,
       .def = "40", .min = 1, .max = 10000,
       .doc = "Typing, presence and call signalling frames a WebSocket session may send at\n"
              "once; then limits.ephemeral_per_second. A frame over the limit is dropped and\n"
              "answered rate_limited (the session stays)."},
      {.key = "limits.ephemeral_per_second", .type = K::kInt, .field = &Config::ephemeral_per_second,
       .def = "20", .min = 1, .max = 10000,
       .doc = "Typing, presence and call signalling frames a session may send per second after\n"
              "its limits.ephemeral_burst."},
      {.key = "limits.prekey_claims_per_min", .type = K::kInt, .field = &Config::prekey_claims_per_min,
       .def = "60", .min = 1, .max = 100000,
       .doc = "One-time prekeys one user may claim of another user's devices per minute, at\n"
              "that user's home relay (429 rate_limited above it)."},
      // [gateway]
      {.key = "gateway.ping_interval", .type = K::kSeconds, .field = &Config::ping_interval_s,
       .def = "30", .min = 5, .max = 3600,
       .doc = "Interval of WebSocket pings to each client."},
      {.key = "gateway.idle_timeout", .type = K::kSeconds, .field = &Config::idle_timeout_s,
       .def = "120", .min = 10, .max = 86400,
       .doc = "A session silent this long (not even a pong) is closed. Must exceed\n"
              "gateway.ping_interval."},
      {.key = "gateway.auth_timeout", .type = K::kSeconds, .field = &Config::auth_timeout_s,
       .def = "10", .min = 1, .max = 300,
       .doc = "A new connection must send its auth frame within this time or is closed."},
      {.key = "gateway.rx_buffer_bytes", .type = K::kInt, .field = &Config::rx_buffer_bytes,
       .def = "1024", .min = 512, .max = 65536,
       .doc = "Receive buffer per connection, most of what an idle connection costs\n"
              "(about 3 KB each at 1024). Larger messages arrive in pieces."},
      {.key = "gateway.write_hold_ms", .type = K::kInt, .field = &Config::write_hold_ms,
       .def = "20", .min = 0, .max = 100,
       .doc = "Under load (gateway.write_hold_above), a session written less than this many\n"
              "ms ago waits until then, so one send() carries more frames: a frame waits at\n"
              "most this long. 0: every session is written at once."},
      {.key = "gateway.write_hold_above", .type = K::kInt, .field = &Config::write_hold_above,
       .def = "50000", .min = 0, .max = 100000000,
       .doc = "Frames per second (all sessions) above which gateway.write_hold_ms applies.\n"
              "Below it every frame is written at once. 0: always."},
      {.key = "gateway.presence_interval", .type = K::kSeconds, .field = &Config::presence_interval_s,
       .def = "60", .min = 1, .max = 3600,
       .doc = "How often the relay tells its peers which of its users are online. A relay\n"
              "shows a user online on another relay for 2.5 intervals after it last heard so,\n"
              "then offline (that relay stopped, or the link is down)."},
      // [store]
      {.key = "store.commit_max_batch", .type = K::kInt, .field = &Config::commit_max_batch,
       .def = "4096", .min = 1, .max = 100000,
       .doc = "Most queued commands (each writes zero or more envelopes) in one transaction\n"
              "(group commit)."},
      {.key = "store.read_connections", .type = K::kInt, .field = &Config::read_connections,
       .def = "4", .min = 1, .max = 64,
       .doc = "SQLite read connections shared by the REST handlers."},
      {.key = "store.wal_max_mb", .type = K::kInt, .field = &Config::wal_max_mb, .def = "64",
       .min = 1, .max = 65536,
       .doc = "Bound of chatd.db-wal under sustained writes: past it, the writer finishes a\n"
              "checkpoint itself (a pause of ~10-20 ms) so that the WAL starts over. The file\n"
              "keeps its largest size until a clean stop truncates it."},
      {.key = "store.search", .type = K::kBool, .field = &Config::search, .def = "true",
       .doc = "Keep a full-text index of message text (search.db) for GET /api/v1/search,\n"
              "at ~10 us of background CPU per message. Off: search answers not_found;\n"
              "turned back on, the index catches up from where it stopped."},
      // [api]
      {.key = "api.threads", .type = K::kInt, .field = &Config::api_threads, .def = "32",
       .min = 1, .max = 1024,
       .doc = "Threads of the REST API server: the most REST connections served at once (an\n"
              "idle kept-alive one holds a thread up to 2 s; while all are busy, one moving\n"
              "under 1 KiB in 10 s is closed; more wait their turn)."},
      {.key = "api.file_url_ttl", .type = K::kSeconds, .field = &Config::file_url_ttl_s, .def = "3600",
       .min = 60, .max = 604800,
       .doc = "Lifetime of the signed file_url that GET /files/{id} and uploads return; after\n"
              "it the URL answers 403 and the client asks GET /files/{id} for a fresh one."},
      {.key = "api.upload_ttl", .type = K::kSeconds, .field = &Config::upload_ttl_s, .def = "86400",
       .min = 60, .max = 2592000,
       .doc = "A resumable upload not completed within this time after it was started is\n"
              "dropped, with its chunks."},
      {.key = "api.unsent_file_ttl", .type = K::kSeconds, .field = &Config::unsent_file_ttl_s,
       .def = "86400", .min = 1, .max = 2592000,
       .doc = "A file no message has shown yet can be sent and read this long after its upload.\n"
              "A sent file is readable while a message shows it; when none does (deleted for\n"
              "everyone, or disappeared), GET /files/{id} answers 404 and its content goes."},
      {.key = "api.file_gc_delay", .type = K::kSeconds, .field = &Config::file_gc_delay_s,
       .def = "600", .min = 1, .max = 86400,
       .doc = "Content (blobs/) no readable file uses is deleted once unused and unwritten this\n"
              "long, by the files janitor (a pass every 60 s, or this if shorter). It covers\n"
              "an upload between its content and its metadata."},
      // [federation]
      {.key = "federation.restore_wait", .type = K::kSeconds, .field = &Config::restore_wait_s,
       .def = "300", .min = 0, .max = 604800,
       .doc = "Started on a store restored by chatctl backup restore, with peers pinned, the\n"
              "relay takes back its own envelopes from them and originates nothing until every\n"
              "peer's vector is in and caught up, or this long. 0: no wait (see chatd(8))."},
      // [log]
      {.key = "log.level", .type = K::kEnum, .field = &Config::log_level, .def = "info",
       .choices = {"debug", "info", "warn", "error"}, .reloadable = true,
       .doc = "Least severe level that is logged."},
  };
  // clang-format on
}

std::string TomlString(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

// The default as TOML literal text ("" for a required key).
std::string DefaultLiteral(const KeySpec& k) {
  if (k.required) return "";
  switch (k.type) {
    case KeyType::kString:
    case KeyType::kHostPort:
    case KeyType::kEnum:
      return TomlString(k.def);
    default:
      return std::string(k.def);
  }
}

// One line: what values the key takes, its default, and whether it is reloadable.
std::string Summary(const KeySpec& k) {
  std::string s;
  switch (k.type) {
    case KeyType::kString:
      s = "string";
      if (!k.format.empty()) s.append(": ").append(k.format);
      break;
    case KeyType::kInt:
      s = "integer, " + std::to_string(k.min) + ".." + std::to_string(k.max);
      break;
    case KeyType::kSeconds:
      s = "seconds, " + std::to_string(k.min) + ".." + std::to_string(k.max);
      break;
    case KeyType::kBool:
      s = "boolean";
      break;
    case KeyType::kHostPort:
      s = "\"HOST:PORT\"";
      break;
    case KeyType::kEnum:
      s = "one of";
      for (size_t i = 0; i < k.choices.size(); ++i) {
        s.append(i ? "|" : " ").append(k.choices[i]);
      }
      break;
  }
  s += k.required ? "; required" : "; default " + DefaultLiteral(k);
  s += k.reloadable ? "; reloadable." : "; restart to change.";
  return s;
}

// Prefixes every line of `text` with "# ".
std::string Commented(std::string_view text) {
  std::string out;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) out += line.empty() ? "#\n" : "# " + line + "\n";
  return out;
}

// Escapes text for roff: backslashes, hyphens (so they print as ASCII '-', which
// matters for keys and values one copies), and control characters at line starts.
std::string Roff(std::string_view text) {
  std::string out;
  bool line_start = true;
  for (char c : text) {
    if (line_start && (c == '.' || c == '\'')) out += "\\&";
    line_start = c == '\n';
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
  }
  return out;
}

// A short config of the given keys only, in table order (for the man page).
std::string CompactToml(const std::map<std::string, std::string>& values) {
  std::string out;
  for (const TableDoc& t : kTables) {
    std::string body;
    for (const KeySpec& k : KeyTable()) {
      const auto it = values.find(std::string(k.key));
      if (k.table() == t.name && it != values.end()) {
        body.append(k.name()).append(" = ").append(it->second).append("\n");
      }
    }
    if (!body.empty())
      out.append(out.empty() ? "" : "\n").append("[").append(t.name).append("]\n").append(body);
  }
  return out;
}

}  // namespace

const std::vector<KeySpec>& KeyTable() {
  static const std::vector<KeySpec> table = BuildTable();
  return table;
}

const KeySpec* FindKey(std::string_view dotted_key) {
  for (const KeySpec& k : KeyTable()) {
    if (k.key == dotted_key) return &k;
  }
  return nullptr;
}

std::string FormatValue(const KeySpec& spec, const Config& config) {
  return std::visit(
      [&](auto member) -> std::string {
        const auto& v = config.*member;
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return TomlString(v);
        } else if constexpr (std::is_same_v<T, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, int>) {
          return std::to_string(v);
        } else {
          return TomlString(v.ToString());
        }
      },
      spec.field);
}

std::vector<std::string_view> RestartRequired(const Config& running, const Config& reloaded) {
  std::vector<std::string_view> keys;
  for (const KeySpec& k : KeyTable()) {
    const bool same = std::visit([&](auto m) { return running.*m == reloaded.*m; }, k.field);
    if (!same && !k.reloadable) keys.push_back(k.key);
  }
  return keys;
}

std::string ExampleConfig(const std::map<std::string, std::string>& overrides) {
  std::string out =
      "# chatd.toml: configuration of chatd, the federated chat relay.\n"
      "# Every key is listed with its default; see chatd.toml(5). Keys left commented\n"
      "# out take the default shown. \"reloadable\" keys apply on SIGHUP; the others\n"
      "# need a restart.\n";
  std::string unknown;
  for (const auto& [key, value] : overrides) {
    if (FindKey(key) == nullptr) unknown += key + " = " + value + "\n";
  }
  if (!unknown.empty()) {
    out += "\n# Keys given to the generator that chatd does not know (loading fails):\n" + unknown;
  }
  const Config defaults;
  for (const TableDoc& t : kTables) {
    out.append("\n[").append(t.name).append("]\n").append(Commented(t.doc));
    for (const KeySpec& k : KeyTable()) {
      if (k.table() != t.name) continue;
      out += "\n" + Commented(k.doc) + Commented(Summary(k));
      const auto it = overrides.find(std::string(k.key));
      std::string line = std::string(k.name()) + " = ";
      if (it != overrides.end()) {
        out += line + it->second + "\n";
      } else if (k.required) {
        out += line + FormatValue(k, defaults) + "  # required: set this\n";
      } else {
        out += "#" + line + FormatValue(k, defaults) + "\n";
      }
    }
  }
  out +=
      "\n# Federation peers: one [[peers]] table per pinned relay (chatctl peers add|remove\n"
      "# edits this list). name: the peer's relay name; url: \"ws://HOST:PORT\" of its\n"
      "# federation listener, or omit it to pin a relay's key without dialing it; api_url\n"
      "# (optional): \"http://HOST:PORT\" of its REST API, where file blobs are fetched from;\n"
      "# key: its public key as `chatctl keys show` prints it. Reloadable.\n"
      "#[[peers]]\n#name = \"us1\"\n#url = \"ws://10.0.0.2:8082\"\n#key = \"ed25519:...\"\n";
  return out;
}

std::string ManPageToml5() {
  std::string m =
      ".\\\" Generated from the key table in conf/keys.cpp by ManPageToml5(); do not edit.\n"
      ".TH CHATD.TOML 5 \"\" \"chatd\" \"File Formats\"\n"
      ".nh\n"
      ".SH NAME\n"
      "chatd.toml \\- configuration file of the chatd chat relay\n"
      ".SH SYNOPSIS\n"
      ".I /etc/chatd/chatd.toml\n"
      ".SH DESCRIPTION\n"
      ".BR chatd (8)\n"
      "reads its configuration from a TOML file.\n"
      "Keys are grouped in tables such as\n"
      ".BR [relay] ;\n"
      "this page names each key by table and key, as in\n"
      ".BR relay.name .\n"
      "A key left out takes its default, except the required ones.\n"
      ".PP\n"
      "chatd checks the whole file before it starts.\n"
      "Syntax errors, unknown tables and keys, values of the wrong type or out of range\n"
      "and missing required keys are errors that name the file, the line and the key:\n"
      ".PP\n"
      ".RS 4\n"
      ".EX\n"
      "/etc/chatd/chatd.toml:7: key \\(aqlisten.api\\(aq: expected \"HOST:PORT\", got \"8080\"\n"
      ".EE\n"
      ".RE\n"
      ".PP\n"
      "A duration in seconds is an integer, or a string with one of the units\n"
      ".BR s ,\n"
      ".BR m ,\n"
      ".B h\n"
      "or\n"
      ".BR d ,\n"
      "as in\n"
      ".BR \"\\(dq30d\\(dq\" .\n"
      "An address is a string \\(dqHOST:PORT\\(dq with an IPv4 address, a host name or an\n"
      "IPv6 address in brackets, as in \\(dq[::1]:8080\\(dq; port 0 picks a free port.\n"
      "The four listening addresses must differ,\n"
      ".B limits.max_content_bytes\n"
      "must be less than\n"
      ".BR limits.max_frame_bytes ,\n"
      "and\n"
      ".B gateway.idle_timeout\n"
      "must exceed\n"
      ".BR gateway.ping_interval .\n"
      ".PP\n"
      "On\n"
      ".B SIGHUP\n"
      "chatd reads the file again.\n"
      "Keys marked\n"
      ".I reloadable\n"
      "take effect at once; a change to any other key is logged and waits for a restart.\n"
      "A file with errors is rejected as a whole and the running configuration stays.\n"
      ".SH KEYS\n";
  for (const TableDoc& t : kTables) {
    m += ".SS [" + std::string(t.name) + "]\n" + Roff(t.doc) + "\n";
    for (const KeySpec& k : KeyTable()) {
      if (k.table() != t.name) continue;
      m += ".TP\n.B " + Roff(k.key) + "\n" + Roff(Summary(k)) + "\n.br\n" + Roff(k.doc) + "\n";
    }
  }
  m += ".SS [[peers]]\n"
       "Federation peers, one array-of-tables entry per pinned relay, each with\n"
       ".B name\n"
       "(the peer's relay name),\n"
       ".B url\n"
       "(\\(dqws://HOST:PORT\\(dq of its federation listener; omit it to pin the key of a relay\n"
       "that this relay does not dial, so envelopes and tokens it signs are accepted when they\n"
       "arrive through other peers),\n"
       ".B api_url\n"
       "(optional: \\(dqhttp://HOST:PORT\\(dq of its REST API; a file uploaded at that relay\n"
       "whose bytes are not here yet is fetched from it, or from any peer that has one, when\n"
       "first downloaded) and\n"
       ".B key\n"
       "(its public key as\n"
       ".B chatctl keys show\n"
       "prints it). Names are unique and differ from relay.name. The list is reloadable;\n"
       ".B chatctl peers add\n"
       "and\n"
       ".B chatctl peers remove\n"
       "edit it.\n";
  m += ".SH FILES\n"
       ".TP\n"
       ".I /etc/chatd/chatd.toml\n"
       "The configuration file.\n"
       ".SH EXAMPLE\n"
       "A relay reachable from clients and peers behind a TLS reverse proxy:\n"
       ".PP\n"
       ".RS 4\n"
       ".EX\n";
  m += Roff(CompactToml({
      {"relay.name", "\"eu1\""},
      {"relay.node_id", "1"},
      {"relay.data_dir", "\"/var/lib/chatd\""},
      {"listen.federation", "\"0.0.0.0:8082\""},
      {"public.gateway_url", "\"wss://eu1.chat.example/ws\""},
      {"public.api_url", "\"https://eu1.chat.example\""},
      {"log.level", "\"warn\""},
  }));
  m += ".EE\n"
       ".RE\n"
       ".SH SEE ALSO\n"
       ".BR chatd (8),\n"
       ".BR chatctl (1)\n";
  return m;
}

}  // namespace chatd::conf
