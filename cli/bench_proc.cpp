// /proc readers, affinity and machine facts for `chatctl bench`.
#include "cli/bench_proc.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace chatd::cli::bench {

namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

long StatusField(const std::string& status, const char* name) {
  size_t at = status.find(name);
  if (at == std::string::npos) return 0;
  return strtol(status.c_str() + at + strlen(name), nullptr, 10);
}

bool ParseCpuList(const std::string& list, cpu_set_t* set) {
  CPU_ZERO(set);
  std::stringstream ss(list);
  std::string part;
  bool any = false;
  while (std::getline(ss, part, ',')) {
    int a = -1, b = -1;
    if (sscanf(part.c_str(), "%d-%d", &a, &b) == 2) {
    } else if (sscanf(part.c_str(), "%d", &a) == 1) {
      b = a;
    } else {
      return false;
    }
    if (a < 0 || b < a || b >= CPU_SETSIZE) return false;
    for (int c = a; c <= b; ++c) CPU_SET(c, set);
    any = true;
  }
  return any;
}

// A /proc/…/stat line: the name in its parentheses and its user + system CPU seconds.
bool ParseStat(const std::string& stat, std::string* name, double* cpu_s) {
  const size_t lp = stat.find('('), rp = stat.rfind(')');
  if (lp == std::string::npos || rp == std::string::npos || rp < lp || rp + 2 > stat.size()) return false;
  // Fields after "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt
  // cmajflt utime stime … (utime is field 14 overall, the 12th after the comm).
  std::stringstream ss(stat.substr(rp + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  int i = 1;
  for (; i <= 13 && ss >> field; ++i) {
    if (i == 12) utime = strtoull(field.c_str(), nullptr, 10);
    if (i == 13) stime = strtoull(field.c_str(), nullptr, 10);
  }
  if (i <= 13) return false;
  static const long kTicks = sysconf(_SC_CLK_TCK);
  *name = stat.substr(lp + 1, rp - lp - 1);
  *cpu_s = static_cast<double>(utime + stime) / static_cast<double>(kTicks);
  return true;
}

}  // namespace

ProcSample SampleProc(int pid) {
  ProcSample s;
  if (pid <= 0) return s;
  const std::string dir = "/proc/" + std::to_string(pid);
  std::string name;
  if (!ParseStat(ReadAll(dir + "/stat"), &name, &s.cpu_s)) return s;
  if (DIR* d = opendir((dir + "/task").c_str())) {
    while (dirent* e = readdir(d)) {
      if (atoi(e->d_name) <= 0) continue;
      double cpu = 0;
      if (ParseStat(ReadAll(dir + "/task/" + e->d_name + "/stat"), &name, &cpu)) s.thread_cpu_s[name] += cpu;
    }
    closedir(d);
  }
  std::string status = ReadAll(dir + "/status");
  s.rss_kb = StatusField(status, "VmRSS:");
  s.hwm_kb = StatusField(status, "VmHWM:");
  s.threads = static_cast<int>(StatusField(status, "Threads:"));
  s.ok = true;
  return s;
}

double SelfCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

double MachineBusySeconds() {
  std::string stat = ReadAll("/proc/stat");
  unsigned long long v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  if (sscanf(stat.c_str(), "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
             &v[6], &v[7]) < 4) {
    return 0;
  }
  unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];  // all but idle and iowait
  static const long kTicks = sysconf(_SC_CLK_TCK);
  return static_cast<double>(busy) / static_cast<double>(kTicks);
}

Status PinProcess(int pid, const std::string& list) {
  cpu_set_t set;
  if (!ParseCpuList(list, &set)) return BadRequest("bad CPU list '" + list + "' (use 1, 0-1 or 0,2)");
  if (pid == 0) pid = getpid();
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (!d) return NotFound("no process " + std::to_string(pid));
  int pinned = 0;
  while (dirent* e = readdir(d)) {
    int tid = atoi(e->d_name);
    if (tid <= 0) continue;
    if (sched_setaffinity(tid, sizeof set, &set) == 0) pinned++;
  }
  closedir(d);
  if (pinned == 0) return Status(Code::kIo, "cannot set the CPU affinity of process " + std::to_string(pid));
  return Status::Ok();
}

std::vector<in_addr_t> LoopbackSources(int count) {
  std::vector<in_addr_t> out;
  for (int i = 1; i <= count && i <= 250; ++i) {
    out.push_back(htonl((127u << 24) | static_cast<uint32_t>(i)));
  }
  return out;
}

KernelMemory SampleKernelMemory() {
  KernelMemory k;
  k.slab_kb = StatusField(ReadAll("/proc/meminfo"), "Slab:");
  std::string sockstat = ReadAll("/proc/net/sockstat");
  size_t at = sockstat.find("TCP: inuse ");
  if (at != std::string::npos) {
    k.tcp_sockets = strtol(sockstat.c_str() + at + 11, nullptr, 10);
    size_t mem = sockstat.find(" mem ", at);
    if (mem != std::string::npos)
      k.tcp_buffers_kb = strtol(sockstat.c_str() + mem + 5, nullptr, 10) * (sysconf(_SC_PAGESIZE) / 1024);
  }
  return k;
}

MachineInfo Machine() {
  MachineInfo m;
  m.nproc = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  std::string cpuinfo = ReadAll("/proc/cpuinfo");
  size_t at = cpuinfo.find("model name");
  if (at != std::string::npos) {
    size_t colon = cpuinfo.find(':', at);
    size_t eol = cpuinfo.find('\n', at);
    if (colon != std::string::npos && colon < eol) m.cpu_model = cpuinfo.substr(colon + 2, eol - colon - 2);
  }
  utsname u{};
  if (uname(&u) == 0) m.kernel = std::string(u.sysname) + " " + u.release;
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) m.open_files_limit = static_cast<long>(rl.rlim_cur);
  m.ephemeral_ports = ReadAll("/proc/sys/net/ipv4/ip_local_port_range");
  for (char& c : m.ephemeral_ports) {
    if (c == '\t' || c == '\n') c = ' ';
  }
  while (!m.ephemeral_ports.empty() && m.ephemeral_ports.back() == ' ') m.ephemeral_ports.pop_back();
  return m;
}

}  // namespace chatd::cli::bench
