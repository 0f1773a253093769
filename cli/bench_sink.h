// cli/bench_sink.h — `chatctl bench sink`: a trivial stand-in for the relay's gateway,
// against which the load generator measures its own ceiling (see bench_sink.cpp for what
// it answers). RunSink blocks the calling thread until SIGINT or SIGTERM.
#pragma once

#include <string>

namespace chatd::cli::bench {

// Listens on `listen_addr` ("127.0.0.1:0" picks a port); writes "HOST:PORT\nPID\n" to
// `port_file` when not empty. Returns the process exit code.
int RunSink(const std::string& listen_addr, const std::string& port_file);

}  // namespace chatd::cli::bench
