// tests/support/relay_process.h — a real chatd process in a temp dir, for tests.
//
// RelayProcess makes a temp dir (mkdtemp under /tmp), runs `chatctl init` there, can edit
// the generated chatd.toml, starts `chatd --config DIR/chatd.toml` (fork/exec, stderr →
// DIR/chatd.log, stdout → DIR/chatd.stdout) and waits, with a deadline, until DIR/chatd.ports.json names
// every listener and GET /readyz answers 200. Stop() sends SIGTERM and returns the exit
// status; Kill9() sends SIGKILL; Start() again reuses the data dir (listeners on port 0
// move, so ports are re-read; a stale ports file is deleted first). It only ever signals
// the PID it started. The destructor kills a still-running chatd and removes the temp dir
// unless CHATD_KEEP_TEST_DIRS is set; if the current test failed (see
// NoteTestFailure()), it prints the tail of chatd.log first.
//
// chatd is started with PR_SET_PDEATHSIG=SIGKILL: it dies with the thread that started
// it, so call Start() from the test's main thread (not from a short-lived worker).
// Not thread-safe: one test thread drives a RelayProcess; the accessors for ports are
// safe to read from worker threads while the process is not being (re)started.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "tests/support/http.h"

namespace chatd::test {

// Polls `pred` every poll_ms until it is true or timeout_ms passes; true if it became
// true. The bounded wait the tests use instead of sleeping and hoping.
bool WaitFor(const std::function<bool()>& pred, int timeout_ms, int poll_ms = 10);

struct CommandResult {
  int exit_code = -1;      // exit status; 128+N if killed by signal N; -1 if it timed out
  bool timed_out = false;
  std::string out;         // stdout
  std::string err;         // stderr
};
// Runs argv[0] with argv (no shell), bounded by timeout_ms (then SIGKILLed).
CommandResult RunCommand(const std::vector<std::string>& argv, int timeout_ms = 30000);

// Sets `key = value_literal` in the [table] of a TOML file by a plain text edit: replaces
// an existing (possibly commented-out) line for the key inside that table, else inserts
// it right after the table header, else appends the table. Returns the 1-based line
// number of the key's line.
Result<int> SetTomlKey(const std::string& path, const std::string& table, const std::string& key,
                       const std::string& value_literal);

struct ConfigEdit {
  std::string table;          // "limits"
  std::string key;            // "max_group_members"
  std::string value_literal;  // "5", "\"info\"", "true"
};

struct RelayOptions {
  std::string chatd_bin;
  std::string chatctl_bin;
  std::string relay_name = "eu1";
  int node_id = 1;
  std::vector<std::string> extra_init_args;
  std::vector<ConfigEdit> config;  // applied to chatd.toml after init, before first start
  int start_timeout_ms = 20000;
};

class RelayProcess {
 public:
  explicit RelayProcess(RelayOptions opts);
  ~RelayProcess();
  RelayProcess(const RelayProcess&) = delete;
  RelayProcess& operator=(const RelayProcess&) = delete;

  // mkdtemp + `chatctl init` (+ config edits). Idempotent for the temp dir.
  Status Init();
  // Init() if needed, then starts chatd and waits until ready.
  Status Start();
  // Starts chatd without waiting for readiness (for processes expected to fail).
  Status Spawn();
  // Spawn(), then waits until the ports file names every listener, but not for /readyz
  // (a relay that is up but not ready, e.g. recovering its own log after a restore).
  Status StartListening();
  // SIGTERM, then waits up to timeout_ms; the exit status (128+N if killed by signal N).
  // On timeout chatd is SIGKILLed and an error returned.
  Result<int> Stop(int timeout_ms = 15000);
  // Waits up to timeout_ms for chatd to exit by itself; its exit status.
  Result<int> WaitExit(int timeout_ms);
  // SIGKILL and reap.
  void Kill9();
  // Sends a signal to the running chatd (e.g. SIGHUP).
  bool Signal(int sig);
  bool running();

  const std::string& dir() const { return dir_; }
  std::string config_path() const { return dir_ + "/chatd.toml"; }
  std::string ports_path() const { return dir_ + "/chatd.ports.json"; }
  std::string log_path() const { return dir_ + "/chatd.log"; }
  const std::string& name() const { return opts_.relay_name; }
  pid_t pid() const { return pid_; }
  int reported_pid() const { return reported_pid_; }  // "pid" from the ports file

  const HostPort& api() const { return api_; }
  const HostPort& gateway() const { return gateway_; }
  const HostPort& federation() const { return federation_; }
  const HostPort& admin() const { return admin_; }
  std::string AdminToken() const;  // contents of DIR/admin.token, trimmed

  // Edits chatd.toml (see SetTomlKey); the running process is not told.
  Result<int> SetConfig(const std::string& table, const std::string& key, const std::string& value_literal);
  // Last `lines` lines of chatd.log.
  std::string LogTail(size_t lines = 40) const;
  // Output of the last `chatctl init`.
  const CommandResult& init_result() const { return init_result_; }

 private:
  Status ReadPorts();
  Status WaitReady(bool need_ready = true);

  RelayOptions opts_;
  std::string dir_;
  bool initialized_ = false;
  pid_t pid_ = -1;
  int reported_pid_ = 0;
  HostPort api_, gateway_, federation_, admin_;
  CommandResult init_result_;
};

// Test-failure flag the destructor consults (set by a Catch listener in the test binary).
void NoteTestFailure();
void ResetTestFailure();
bool TestFailureNoted();

// Reads a whole file ("" if unreadable).
std::string ReadFile(const std::string& path);
bool FileExists(const std::string& path);

}  // namespace chatd::test
