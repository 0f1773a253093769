// cli/common.h — shared helpers for chatctl commands (main thread only).
#pragma once

#include <functional>
#include <string>

#include "base/json.h"
#include "base/status.h"
#include "cli/cli.h"
#include "conf/config.h"

namespace chatd::cli {

// Loads the relay config named by --config / CHATD_CONFIG; prints the error and sets the
// exit code on failure.
Result<conf::Config> LoadRelayConfig(Globals& g);
// The admin API's base URL ("http://127.0.0.1:PORT"): the running relay's ports file,
// else the configured address.
std::string AdminBase(const conf::Config& cfg);
// Performs an admin API GET; returns the parsed "data" JSON text.
Result<std::string> AdminGet(const conf::Config& cfg, const std::string& path);
// Performs an admin API POST (a JSON body, or none); returns the "data" JSON text.
Result<std::string> AdminPost(const conf::Config& cfg, const std::string& path, const std::string& body = {});
// Performs an admin API DELETE; returns the "data" JSON text.
Result<std::string> AdminDelete(const conf::Config& cfg, const std::string& path);
// Prints an admin call's error and sets the exit code (3 when the relay is unreachable).
void FailAdmin(Globals& g, const Status& s);
// Shows an admin call's result the common way: on error, FailAdmin and false; with -o json,
// prints the answer as it came and returns false (done); otherwise parses it into *doc for
// the caller's table and returns true (a malformed answer: error, exit 1, false).
bool AdminAnswer(Globals& g, Result<std::string> data, json::Doc* doc);
// Pages through an admin list (`path` plus limit/after; the answer's `key` array,
// has_more, next_after) up to `limit` rows: each row to print_row, or with -o json one
// JSON array of them all.
void AdminPagedList(Globals& g, const conf::Config& cfg, const std::string& path, const char* key, int limit,
                    const std::function<void(const json::Value&)>& print_row);
// A field of an admin answer as table text: a string as is, "-" for null or absent,
// anything else as JSON.
std::string Field(const json::Value& v, const char* key);
// True when the relay's ports file names a live process (the relay is running).
bool RelayRunning(const conf::Config& cfg);
// Prints an error on stderr.
void PrintError(const Status& s);

}  // namespace chatd::cli
