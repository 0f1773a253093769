// conf/config.h — chatd.toml: the daemon's configuration, its key table and its docs.
//
// Every key is declared once, in the table in conf/keys.cpp (KeyTable()): dotted name,
// type, default or "required", range, whether it is reloadable, and its doc. That table
// drives parsing and validation (config.cpp), the commented example file
// (ExampleConfig) and the chatd.toml(5) man page (ManPageToml5, committed as
// man/chatd.toml.5 and checked by a unit test).
//
// A Config is a plain value: load it on one thread, then copy or share it read-only.
// SIGHUP handling: load a new Config, apply the keys marked reloadable, and report the
// others with RestartRequired(). Nothing here throws: toml11's exceptions are caught
// inside the module and returned as a Status (Code::kBadRequest) whose message names the
// file, the line and the key, e.g.
//   /etc/chatd/chatd.toml:7: key 'listen.api': expected "HOST:PORT", got "8080"
// Unknown tables and keys are errors too, so a misspelt key never goes unnoticed.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/status.h"
#include "conf/hostport.h"

namespace chatd::conf {

// A pinned federation peer: one [[peers]] table in chatd.toml.
struct Peer {
  std::string name;  // the peer relay's name
  std::string url;   // "ws://HOST:PORT" of its federation listener; "" = key only (not dialed)
  std::string api_url;  // "http://HOST:PORT" of its REST API, to fetch file blobs from; "" = none
  std::string key;   // its Ed25519 public key, "ed25519:<base64url>" (chatctl keys show)
  bool operator==(const Peer&) const = default;
};

// Ranges and docs of these fields are in conf/keys.cpp and chatd.toml(5); a unit test
// checks that the defaults below equal the table's.
struct Config {
  std::string config_path;  // absolute path of the file loaded
  // [relay]
  std::string relay_name;      // relay.name (required)
  int node_id = -1;            // relay.node_id (required)
  std::string data_dir = ".";  // relay.data_dir; absolute after loading (relative to the file)
  // [listen]
  HostPort api{"127.0.0.1", 8080};         // listen.api: REST API, /livez, /readyz, /metrics
  HostPort gateway{"127.0.0.1", 8081};     // listen.gateway: client WebSocket /ws
  HostPort federation{"127.0.0.1", 8082};  // listen.federation: peer links
  HostPort admin{"127.0.0.1", 8083};       // listen.admin: admin API for chatctl
  // [public] "" = derive "ws://HOST:PORT/ws" / "http://HOST:PORT" from the bound
  // listen.gateway / listen.api address (the loader leaves them empty: port 0 is only
  // known after binding).
  std::string public_gateway_url;  // public.gateway_url
  std::string public_api_url;      // public.api_url
  // [auth]
  int access_token_ttl_s = 3600;       // auth.access_token_ttl
  int refresh_token_ttl_s = 2592000;   // auth.refresh_token_ttl
  int argon2_ops = 2;                  // auth.argon2_ops
  int argon2_mem_kib = 19456;          // auth.argon2_mem_kib
  int login_per_account_per_min = 10;  // auth.login_per_account_per_min
  int login_per_ip_per_min = 60;       // auth.login_per_ip_per_min
  int register_per_ip_per_min = 30;    // auth.register_per_ip_per_min
  // [limits]
  int max_group_members = 1000;       // limits.max_group_members
  int max_frame_bytes = 65536;        // limits.max_frame_bytes (WebSocket message)
  int max_body_bytes = 1048576;       // limits.max_body_bytes (REST JSON body)
  int max_content_bytes = 16384;      // limits.max_content_bytes (message text, bytes)
  int session_queue_bytes = 4194304;  // limits.session_queue_bytes (slow consumer cap)
  int history_page_max = 100;         // limits.history_page_max
  int max_connections = 19000;        // limits.max_connections
  int max_file_bytes = 104857600;     // limits.max_file_bytes (one uploaded file)
  int upload_chunk_bytes = 4194304;   // limits.upload_chunk_bytes (resumable upload chunk)
  int ephemeral_burst = 40;           // limits.ephemeral_burst (typing/presence/call frames at once)
  int ephemeral_per_second = 20;      // limits.ephemeral_per_second (... then per second)
  int prekey_claims_per_min = 60;     // limits.prekey_claims_per_min (per claimer and user)
  // [gateway]
  int ping_interval_s = 30;    // gateway.ping_interval
  int idle_timeout_s = 120;    // gateway.idle_timeout
  int auth_timeout_s = 10;     // gateway.auth_timeout
  int rx_buffer_bytes = 1024;  // gateway.rx_buffer_bytes
  int write_hold_ms = 20;      // gateway.write_hold_ms (write coalescing under load)
  int write_hold_above = 50000;  // gateway.write_hold_above (frames/s: "under load")
  int presence_interval_s = 60;  // gateway.presence_interval (online users re-announced to peers)
  // [store]
  int commit_max_batch = 4096;  // store.commit_max_batch
  int read_connections = 4;     // store.read_connections
  bool search = true;           // store.search (full-text index, GET /search)
  int wal_max_mb = 64;          // store.wal_max_mb
  // [api]
  int api_threads = 32;  // api.threads
  int file_url_ttl_s = 3600;  // api.file_url_ttl (signed download URLs)
  int upload_ttl_s = 86400;   // api.upload_ttl (abandoned resumable uploads)
  int unsent_file_ttl_s = 86400;  // api.unsent_file_ttl (a file no message ever showed)
  int file_gc_delay_s = 600;      // api.file_gc_delay (unused content stays on disk this long)
  // [federation]
  int restore_wait_s = 300;  // federation.restore_wait (a restored store waits for its peers)
  // [log]
  std::string log_level = "info";  // log.level: debug|info|warn|error (reloadable)
  // [[peers]] (array of tables; see Peer). Reloadable: SIGHUP or chatctl peers add/remove.
  std::vector<Peer> peers;

  bool operator==(const Config&) const = default;
};

// ---- The key table ------------------------------------------------------------------

enum class KeyType {
  kString,    // TOML string
  kInt,       // TOML integer within [min, max]
  kBool,      // TOML boolean
  kHostPort,  // TOML string "HOST:PORT" (see conf/hostport.h)
  kSeconds,   // duration in seconds within [min, max]: an integer, or "90s" "15m" "2h" "30d"
  kEnum,      // TOML string, one of choices
};

struct KeySpec {
  // Dotted name, "listen.api"; the part before the dot is the [table].
  std::string_view key = {};
  KeyType type = KeyType::kString;
  // The Config member the key sets.
  std::variant<std::string Config::*, int Config::*, bool Config::*, HostPort Config::*> field = {};
  bool required = false;
  // Default as plain text: "3600", "info", "127.0.0.1:8080" (unset if required).
  std::string_view def = {};
  // kInt, kSeconds: inclusive range.
  int64_t min = 0;
  int64_t max = 0;
  // kEnum: the accepted values.
  std::vector<std::string_view> choices = {};
  // kString: the accepted form, for docs and errors, and its check ("" / nullptr = any).
  std::string_view format = {};
  bool (*valid)(std::string_view) = nullptr;
  // Applied on SIGHUP without a restart.
  bool reloadable = false;
  // One to three sentences, '\n' between lines.
  std::string_view doc = {};

  std::string_view table() const { return key.substr(0, key.find('.')); }
  std::string_view name() const { return key.substr(key.find('.') + 1); }
};

// All keys, grouped by table in file order. Built once, never modified; safe to read
// from any thread.
const std::vector<KeySpec>& KeyTable();
const KeySpec* FindKey(std::string_view dotted_key);  // nullptr if unknown

// The key's current value in `config` as TOML literal text: "\"eu1\"", "3600",
// "\"127.0.0.1:8080\"". Round-trips through ParseConfigText.
std::string FormatValue(const KeySpec& spec, const Config& config);

// Dotted keys whose values differ between the running and the reloaded config but
// which are not reloadable (SIGHUP logs them as "restart required").
std::vector<std::string_view> RestartRequired(const Config& running, const Config& reloaded);

// ---- Loading ------------------------------------------------------------------------

// Reads and parses the file. An unreadable file is Code::kIo; everything else is
// Code::kBadRequest as described above.
Result<Config> LoadConfig(const std::string& path);

// The TOML text of one [[peers]] table (what `chatctl peers add` appends).
std::string PeerToml(const Peer& peer);
// Checks a peer's fields; the message names the field.
Status ValidatePeer(const Peer& peer);

// Parses `text` as if read from `path_for_errors`. No I/O except path resolution:
// config_path becomes the absolute form of path_for_errors and a relative
// relay.data_dir is resolved against that file's directory. The public URLs stay "" when
// not set.
Result<Config> ParseConfigText(std::string_view text, const std::string& path_for_errors);

// ---- Documentation generated from the table -----------------------------------------

// A complete, commented chatd.toml: every key appears with its doc above it. Keys in
// `overrides` (dotted key -> TOML literal text, e.g. {"relay.name", "\"eu1\""},
// {"relay.node_id", "1"}) are set; other optional keys are written commented out at
// their default; a required key without an override gets a placeholder that fails
// validation, so it cannot be forgotten. An override naming no known key is written at
// the top of the file, where loading rejects it. The output parses back to a Config
// equal to the defaults plus the overrides.
std::string ExampleConfig(const std::map<std::string, std::string>& overrides);

// The chatd.toml(5) man page in roff (man macros), generated from the table.
std::string ManPageToml5();

}  // namespace chatd::conf
