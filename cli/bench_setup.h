// cli/bench_setup.h — what a benchmark runs against, and the users and rooms it needs.
//
// A Target names the relay: its REST and gateway addresses and, when it runs on this
// machine, its pid (for CPU and RSS). `--relay-dir DIR` reads all three from the relay's
// chatd.ports.json; `--api`, `--gateway` and `--pid` set or override them. Against the
// trivial sink (`chatctl bench sink`) there is no REST API: tokens and chat ids are made up
// and the sink accepts them.
//
// Setup registers users over REST (argon2id makes each registration cost the server tens
// of milliseconds, so it runs on several threads, and a relay under benchmark should raise
// auth.register_per_ip_per_min) and creates one group chat per room: the room's first
// sender creates it with every other member as a participant. A receiver user may hold
// several connections (`conns_per_user`), so a room of M receiving connections needs only
// ceil(M / conns_per_user) receiving users. The result can be saved to a file and loaded
// again, so repeated runs against copies of the same relay skip registration.
//
// Called from the main thread only; RunSetup starts and joins its own threads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"

namespace chatd::cli::bench {

struct Target {
  std::string api;      // "HOST:PORT" of the REST API (empty against the sink)
  std::string gateway;  // "HOST:PORT" of the WebSocket gateway
  int pid = 0;          // the server's pid when local, else 0
  bool sink = false;
  // Receivers connect here instead of `gateway` when set: another relay of the
  // federation (cross-relay delivery); its pid for its CPU time.
  std::string receive_gateway;
  int receive_pid = 0;
};

// Fills a Target from --relay-dir / --api / --gateway / --pid / --sink.
Result<Target> ResolveTarget(const std::string& relay_dir, const std::string& api, const std::string& gateway, int pid,
                             const std::string& sink);

struct Member {
  uint64_t user_id = 0;
  std::string token;
};

struct Room {
  uint64_t chat_id = 0;
  std::vector<Member> senders;    // one per sending connection
  std::vector<Member> receivers;  // one per receiving connection (users repeat with conns_per_user)
};

struct Plan {
  int rooms = 0;
  int senders_per_room = 1;
  int receivers_per_room = 0;
  int conns_per_user = 1;  // receiving connections per receiving user
  int loose_users = 0;     // users without rooms (idle)
  int threads = 8;         // registration threads
};

struct Setup {
  std::vector<Room> rooms;
  std::vector<Member> loose;
};

// Registers users and creates rooms. `progress(done, total)` is called from the main thread.
Result<Setup> RunSetup(const Target& t, const Plan& plan, const std::function<void(int, int)>& progress);
// The sink's made-up users: receivers "sink:<room>", senders and loose users "sink".
Setup SinkSetup(const Plan& plan);

Status SaveSetup(const std::string& path, const Plan& plan, const Setup& setup);
// Loads a saved setup; an error if it was made for a different plan.
Result<Setup> LoadSetup(const std::string& path, const Plan& plan);

// "127.0.0.1:8081" → address, port; false if not IPv4 HOST:PORT ("localhost" accepted).
bool ParseHostPort(const std::string& hp, std::string* host, int* port);

}  // namespace chatd::cli::bench
