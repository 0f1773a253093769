#include "tests/support/relay_process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "base/time.h"

namespace chatd::test {
namespace {

std::atomic<bool> g_test_failed{false};

int DecodeStatus(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return -1;
}

std::string TrimWs(std::string s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Child side of fork(): only async-signal-safe calls until exec. The child dies with the
// thread that forked it (PR_SET_PDEATHSIG), so a killed test run leaves no chatd behind.
[[noreturn]] void ExecChild(const std::vector<char*>& argv, int out_fd, int err_fd, pid_t parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(126);  // the parent died before prctl
  int devnull = ::open("/dev/null", O_RDONLY);
  if (devnull >= 0) ::dup2(devnull, 0);
  if (out_fd >= 0) ::dup2(out_fd, 1);
  if (err_fd >= 0) ::dup2(err_fd, 2);
  ::close_range(3, ~0U, 0);
  ::execv(argv[0], argv.data());
  const char msg[] = "exec failed\n";
  ssize_t ignored = ::write(2, msg, sizeof msg - 1);
  (void)ignored;
  ::_exit(127);
}

std::vector<char*> CArgv(const std::vector<std::string>& args) {
  std::vector<char*> out;
  for (const auto& a : args) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

void NoteTestFailure() { g_test_failed = true; }
void ResetTestFailure() { g_test_failed = false; }
bool TestFailureNoted() { return g_test_failed; }

bool WaitFor(const std::function<bool()>& pred, int timeout_ms, int poll_ms) {
  int64_t deadline = MonoMs() + timeout_ms;
  for (;;) {
    if (pred()) return true;
    if (MonoMs() >= deadline) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool FileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

CommandResult RunCommand(const std::vector<std::string>& args, int timeout_ms) {
  CommandResult r;
  char out_tmpl[] = "/tmp/chatd-test-out-XXXXXX";
  char err_tmpl[] = "/tmp/chatd-test-err-XXXXXX";
  int out_fd = ::mkstemp(out_tmpl);
  int err_fd = ::mkstemp(err_tmpl);
  std::vector<char*> argv = CArgv(args);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) ExecChild(argv, out_fd, err_fd, parent);
  int wstatus = 0;
  if (pid < 0) {
    r.err = std::string("fork: ") + strerror(errno);
  } else {
    int64_t deadline = MonoMs() + timeout_ms;
    for (;;) {
      pid_t w = ::waitpid(pid, &wstatus, WNOHANG);
      if (w == pid) {
        r.exit_code = DecodeStatus(wstatus);
        break;
      }
      if (w < 0 && errno != EINTR) break;
      if (MonoMs() >= deadline) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &wstatus, 0);
        r.timed_out = true;
        r.exit_code = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  if (out_fd >= 0) ::close(out_fd);
  if (err_fd >= 0) ::close(err_fd);
  r.out = ReadFile(out_tmpl);
  r.err += ReadFile(err_tmpl);
  ::unlink(out_tmpl);
  ::unlink(err_tmpl);
  return r;
}

Result<int> SetTomlKey(const std::string& path, const std::string& table, const std::string& key,
                       const std::string& value_literal) {
  std::ifstream in(path);
  if (!in) return IoError("cannot read " + path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  in.close();

  auto is_header = [](const std::string& l) {
    std::string t = TrimWs(l);
    return !t.empty() && t[0] == '[';
  };
  auto header_name = [](const std::string& l) {
    std::string t = TrimWs(l);
    size_t hash = t.find('#');
    if (hash != std::string::npos) t = TrimWs(t.substr(0, hash));
    if (t.size() >= 2 && t.front() == '[' && t.back() == ']') return TrimWs(t.substr(1, t.size() - 2));
    return std::string();
  };
  // Does `l` set `key` (maybe commented out)? Sets *commented.
  auto sets_key = [&](const std::string& l, bool* commented) {
    std::string t = TrimWs(l);
    *commented = false;
    if (!t.empty() && t[0] == '#') {
      *commented = true;
      t = TrimWs(t.substr(1));
    }
    if (t.rfind(key, 0) != 0) return false;
    std::string rest = TrimWs(t.substr(key.size()));
    return !rest.empty() && rest[0] == '=';
  };

  size_t begin = 0, end = lines.size();
  bool found_table = table.empty();
  if (!table.empty()) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (header_name(lines[i]) == table) {
        found_table = true;
        begin = i + 1;
        end = lines.size();
        for (size_t j = begin; j < lines.size(); ++j) {
          if (is_header(lines[j])) {
            end = j;
            break;
          }
        }
        break;
      }
    }
  } else {
    for (size_t j = 0; j < lines.size(); ++j) {
      if (is_header(lines[j])) {
        end = j;
        break;
      }
    }
  }
  std::string new_line = key + " = " + value_literal;
  int line_no = 0;
  if (found_table) {
    long live = -1, commented_at = -1;
    for (size_t i = begin; i < end; ++i) {
      bool commented = false;
      if (sets_key(lines[i], &commented)) {
        if (!commented && live < 0) live = static_cast<long>(i);
        if (commented && commented_at < 0) commented_at = static_cast<long>(i);
      }
    }
    long at = live >= 0 ? live : commented_at;
    if (at >= 0) {
      lines[static_cast<size_t>(at)] = new_line;
      line_no = static_cast<int>(at) + 1;
    } else {
      lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(begin), new_line);
      line_no = static_cast<int>(begin) + 1;
    }
  } else {
    lines.push_back("");
    lines.push_back("[" + table + "]");
    lines.push_back(new_line);
    line_no = static_cast<int>(lines.size());
  }
  std::string tmp = path + ".tmp-edit";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return IoError("cannot write " + tmp);
    for (const auto& l : lines) out << l << '\n';
    if (!out) return IoError("write failed: " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return IoError("rename to " + path + " failed");
  return line_no;
}

RelayProcess::RelayProcess(RelayOptions opts) : opts_(std::move(opts)) {}

RelayProcess::~RelayProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int st;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
  }
  if (dir_.empty()) return;
  bool failed = TestFailureNoted() || std::uncaught_exceptions() > 0;
  bool keep = ::getenv("CHATD_KEEP_TEST_DIRS") != nullptr;
  if (failed) {
    std::cerr << "---- " << opts_.relay_name << " chatd.log tail (" << log_path() << ") ----\n"
              << LogTail(60) << "---- end of log ----\n";
  }
  if (keep) {
    std::cerr << "keeping test dir " << dir_ << "\n";
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

Status RelayProcess::Init() {
  if (initialized_) return Status::Ok();
  if (opts_.chatd_bin.empty() || opts_.chatctl_bin.empty()) {
    return Internal("RelayOptions needs chatd_bin and chatctl_bin");
  }
  if (dir_.empty()) {
    char tmpl[] = "/tmp/chatd-test-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return IoError(std::string("mkdtemp: ") + strerror(errno));
    dir_ = tmpl;
  }
  std::vector<std::string> argv = {opts_.chatctl_bin, "init",
                                    "--data-dir", dir_,
                                    "--relay", opts_.relay_name,
                                    "--node-id", std::to_string(opts_.node_id),
                                    "--api", "127.0.0.1:0",
                                    "--gateway", "127.0.0.1:0",
                                    "--federation", "127.0.0.1:0",
                                    "--admin", "127.0.0.1:0"};
  argv.insert(argv.end(), opts_.extra_init_args.begin(), opts_.extra_init_args.end());
  init_result_ = RunCommand(argv, 60000);
  if (init_result_.exit_code != 0) {
    return Internal("chatctl init exited " + std::to_string(init_result_.exit_code) +
                    "; stderr: " + init_result_.err + " stdout: " + init_result_.out);
  }
  if (!FileExists(config_path())) return Internal("chatctl init wrote no " + config_path());
  // CHATD_TEST_CONFIG="table.key=value ...": settings for every relay of the run (to run
  // the whole suite under a non-default config), before the test's own, which win.
  std::vector<ConfigEdit> edits;
  if (const char* extra = std::getenv("CHATD_TEST_CONFIG")) {
    std::istringstream in(extra);
    for (std::string kv; in >> kv;) {
      const size_t dot = kv.find('.'), eq = kv.find('=');
      if (dot == std::string::npos || eq == std::string::npos || dot > eq) {
        return BadRequest("CHATD_TEST_CONFIG: expected table.key=value, got " + kv);
      }
      edits.push_back({kv.substr(0, dot), kv.substr(dot + 1, eq - dot - 1), kv.substr(eq + 1)});
    }
  }
  edits.insert(edits.end(), opts_.config.begin(), opts_.config.end());
  for (const auto& e : edits) {
    auto r = SetTomlKey(config_path(), e.table, e.key, e.value_literal);
    if (!r.ok()) return r.status();
  }
  initialized_ = true;
  return Status::Ok();
}

Status RelayProcess::Spawn() {
  if (Status s = Init(); !s.ok()) return s;
  if (pid_ > 0) return Internal("chatd already running (pid " + std::to_string(pid_) + ")");
  ::unlink(ports_path().c_str());  // a stale file from a killed run must not be trusted
  api_ = gateway_ = federation_ = admin_ = HostPort{};
  reported_pid_ = 0;
  int log_fd = ::open(log_path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return IoError("open " + log_path() + ": " + strerror(errno));
  std::string out_path = dir_ + "/chatd.stdout";
  int out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out_fd < 0) {
    ::close(log_fd);
    return IoError("open " + out_path + ": " + strerror(errno));
  }
  std::vector<std::string> args = {opts_.chatd_bin, "--config", config_path()};
  std::vector<char*> argv = CArgv(args);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) ExecChild(argv, out_fd, log_fd, parent);
  ::close(log_fd);
  ::close(out_fd);
  if (pid < 0) return IoError(std::string("fork: ") + strerror(errno));
  pid_ = pid;
  return Status::Ok();
}

Status RelayProcess::Start() {
  if (Status s = Spawn(); !s.ok()) return s;
  return WaitReady();
}

Status RelayProcess::StartListening() {
  if (Status s = Spawn(); !s.ok()) return s;
  return WaitReady(/*need_ready=*/false);
}

Status RelayProcess::ReadPorts() {
  std::string text = ReadFile(ports_path());
  if (text.empty()) return NotFound("no ports file yet");
  auto doc = Json::Parse(text);
  if (!doc.ok()) return BadRequest("ports file not JSON: " + text);
  HostPort api = ParseHostPort(doc->Str("api"));
  HostPort gw = ParseHostPort(doc->Str("gateway"));
  HostPort fed = ParseHostPort(doc->Str("federation"));
  HostPort adm = ParseHostPort(doc->Str("admin"));
  // The client listeners must be there; the federation and admin ports are checked by
  // the tests that use them (a relay without peers may not listen for them yet).
  if (api.port == 0 || gw.port == 0) return BadRequest("ports file lacks a listener: " + text);
  api_ = api;
  gateway_ = gw;
  federation_ = fed;
  admin_ = adm;
  const auto& pid = (*doc)["pid"];
  reported_pid_ = pid.IsInt() ? pid.GetInt() : 0;
  return Status::Ok();
}

Status RelayProcess::WaitReady(bool need_ready) {
  int64_t deadline = MonoMs() + opts_.start_timeout_ms;
  std::string last;
  bool have_ports = false;
  for (;;) {
    int st = 0;
    pid_t w = ::waitpid(pid_, &st, WNOHANG);
    if (w == pid_) {
      pid_ = -1;
      return Internal("chatd exited with status " + std::to_string(DecodeStatus(st)) +
                      " before it was ready; log tail:\n" + LogTail(30));
    }
    if (!have_ports) {
      Status s = ReadPorts();
      have_ports = s.ok();
      if (!s.ok()) last = s.message();
    }
    if (have_ports && !need_ready) return Status::Ok();
    if (have_ports) {
      HttpRequest r;
      r.path = "/readyz";
      r.timeout_ms = 2000;
      HttpResponse resp = HttpCall(api_, r);
      if (resp.status == 200) return Status::Ok();
      last = "/readyz: " + resp.Describe();
    }
    if (MonoMs() >= deadline) {
      return Internal("chatd not ready after " + std::to_string(opts_.start_timeout_ms) +
                      " ms (" + last + "); log tail:\n" + LogTail(30));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Result<int> RelayProcess::WaitExit(int timeout_ms) {
  if (pid_ <= 0) return Internal("chatd not running");
  int64_t deadline = MonoMs() + timeout_ms;
  for (;;) {
    int st = 0;
    pid_t w = ::waitpid(pid_, &st, WNOHANG);
    if (w == pid_) {
      pid_ = -1;
      return DecodeStatus(st);
    }
    if (w < 0 && errno != EINTR) {
      pid_ = -1;
      return Internal(std::string("waitpid: ") + strerror(errno));
    }
    if (MonoMs() >= deadline) return Status(Code::kUnavailable, "chatd still running");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Result<int> RelayProcess::Stop(int timeout_ms) {
  if (pid_ <= 0) return Internal("chatd not running");
  ::kill(pid_, SIGTERM);
  auto r = WaitExit(timeout_ms);
  if (!r.ok() && pid_ > 0) {
    Kill9();
    return Status(Code::kUnavailable, "chatd did not exit within " + std::to_string(timeout_ms) +
                                          " ms of SIGTERM (SIGKILLed); log tail:\n" + LogTail(20));
  }
  return r;
}

void RelayProcess::Kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int st;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

bool RelayProcess::Signal(int sig) { return pid_ > 0 && ::kill(pid_, sig) == 0; }

bool RelayProcess::running() {
  if (pid_ <= 0) return false;
  int st;
  if (::waitpid(pid_, &st, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

std::string RelayProcess::AdminToken() const { return TrimWs(ReadFile(dir_ + "/admin.token")); }

Result<int> RelayProcess::SetConfig(const std::string& table, const std::string& key,
                                    const std::string& value_literal) {
  return SetTomlKey(config_path(), table, key, value_literal);
}

std::string RelayProcess::LogTail(size_t lines) const {
  std::string text = ReadFile(log_path());
  if (text.empty()) return "(chatd.log is empty)\n";
  if (text.back() != '\n') text += '\n';
  size_t pos = text.size() - 1;  // the final newline
  for (size_t n = 0; n < lines; ++n) {
    size_t nl = pos == 0 ? std::string::npos : text.rfind('\n', pos - 1);
    if (nl == std::string::npos) return text;
    pos = nl;
  }
  return text.substr(pos + 1);
}

}  // namespace chatd::test
