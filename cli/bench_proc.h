// cli/bench_proc.h — what `chatctl bench` reads about processes and the machine: a
// process' CPU time and RSS from /proc, its own CPU time, CPU affinity, the source
// addresses to connect from, and a one-line description of the machine.
// Stateless functions; thread-safe.
#pragma once

#include <netinet/in.h>

#include <map>
#include <string>
#include <vector>

#include "base/status.h"

namespace chatd::cli::bench {

struct ProcSample {
  bool ok = false;
  double cpu_s = 0;  // user + system CPU seconds, all threads (dead ones included)
  long rss_kb = 0;   // VmRSS
  long hwm_kb = 0;   // VmHWM (peak RSS)
  int threads = 0;
  // CPU seconds by thread name (threads sharing a name summed, e.g. a worker pool), for
  // the threads alive now.
  std::map<std::string, double> thread_cpu_s;
};

ProcSample SampleProc(int pid);
// This process' user + system CPU seconds (all threads).
double SelfCpuSeconds();
// CPU seconds every CPU of the machine spent busy (not idle, not waiting for I/O) since
// boot, from /proc/stat: minus the server's and the generator's, what other processes used.
double MachineBusySeconds();

// Pins every thread of `pid` (0 = this process) to the CPUs in `list` ("1", "0-1", "0,2").
Status PinProcess(int pid, const std::string& list);

// `count` loopback source addresses 127.0.0.1, 127.0.0.2, … (network order), count ≤ 250.
std::vector<in_addr_t> LoopbackSources(int count);

// Kernel memory in kB: slab caches (sockets, epoll items, dentries...) from /proc/meminfo
// and TCP buffer memory from /proc/net/sockstat.
struct KernelMemory {
  long slab_kb = 0;
  long tcp_buffers_kb = 0;
  long tcp_sockets = 0;  // TCP sockets in use
};
KernelMemory SampleKernelMemory();

struct MachineInfo {
  int nproc = 0;
  std::string cpu_model;
  std::string kernel;
  long open_files_limit = 0;
  std::string ephemeral_ports;  // net.ipv4.ip_local_port_range
};
MachineInfo Machine();

}  // namespace chatd::cli::bench
