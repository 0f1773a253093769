// chatctl bench — the load generator: ingest, fanout, latency, idle, search, and the
// federation scenarios catchup and converge (bench_fed.h), against a
// relay (or the trivial sink, to measure the generator itself); and mqtt and xmpp, the
// fan-out workload against an MQTT broker or an XMPP server for comparison (bench_mqtt.h,
// bench_xmpp.h). See chatctl-bench in chatctl(1) and docs/BENCHMARKS.md.
#include <sys/stat.h>

#include <cstdio>
#include <functional>
#include <memory>

#include "cli/bench_fed.h"
#include "cli/bench_idle.h"
#include "cli/bench_mqtt.h"
#include "cli/bench_proc.h"
#include "cli/bench_report.h"
#include "cli/bench_search.h"
#include "cli/bench_setup.h"
#include "cli/bench_sink.h"
#include "cli/bench_traffic.h"
#include "cli/bench_xmpp.h"
#include "cli/common.h"

namespace chatd::cli {

namespace {

using namespace bench;  // NOLINT: this file only wires the bench modules together

struct BenchOpts {
  std::string relay_dir, api, gateway, sink, setup_file, relay_cpus, cpus;
  std::string receive_relay_dir, receive_gateway;  // receivers on another relay
  int pid = 0, sources = 4, threads = 1, max_connecting = 256, setup_threads = 8;
  bool setup_only = false, no_progress = false;
  // Traffic.
  int rooms = 10, members = 100, senders_per_room = 1, conns_per_user = 1, senders = 100, window = 1;
  std::string rates = "1000";
  double rate = 0, duration = 5, warmup = 1, drain = 10;
  size_t size = 100;
  bool all_steps = false;
  // Idle.
  int connections = 10000, users = 100;
  double hold = 10, settle = 2;
  // Search (also rooms, members, rate, duration, window).
  uint64_t messages = 100000;
  int clients = 8;
  double index_timeout = 300;
  // Sink.
  std::string listen = "127.0.0.1:0", port_file;
  // MQTT (also pid, cpus, rooms, members, rates and the traffic options).
  std::string broker = "127.0.0.1:1883";
  int qos = 1;
  // XMPP (also pid, cpus, rooms, members, rates and the traffic options).
  XmppConfig xmpp;
  double join_timeout = 600;
};

void AddCommon(CLI::App* cmd, BenchOpts& o) {
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("--relay-dir", o.relay_dir,
                  "the relay's data directory: addresses and pid from its chatd.ports.json");
  cmd->add_option("--api", o.api, "REST API HOST:PORT (overrides --relay-dir)");
  cmd->add_option("--gateway", o.gateway, "WebSocket gateway HOST:PORT (overrides --relay-dir)");
  cmd->add_option("--pid", o.pid, "the server's pid, for its CPU time and RSS (overrides --relay-dir)");
  cmd->add_option("--sink", o.sink, "run against `chatctl bench sink` at HOST:PORT instead of a relay");
  cmd->add_option("--sources", o.sources, "connect from 127.0.0.1 .. 127.0.0.N")->check(CLI::Range(1, 250));
  cmd->add_option("--threads", o.threads, "generator threads (rooms are split between them)")->check(CLI::Range(1, 64));
  cmd->add_option("--max-connecting", o.max_connecting, "connections opening at once")->check(CLI::Range(1, 100000));
  cmd->add_option("--setup-file", o.setup_file, "load users and rooms from FILE if it exists, else save them there");
  cmd->add_option("--setup-threads", o.setup_threads, "parallel registrations")->check(CLI::Range(1, 256));
  cmd->add_flag("--setup-only", o.setup_only, "register users and create rooms, save them (--setup-file), and stop");
  cmd->add_option("--relay-cpus", o.relay_cpus, "after setup, pin every server thread to these CPUs (\"0\")");
  cmd->add_option("--cpus", o.cpus, "pin the generator to these CPUs (\"1\")");
  cmd->add_flag("--no-progress", o.no_progress, "no progress line even on a terminal");
}

// Cross-relay delivery: receivers connect to another relay of the federation.
void AddReceiveRelay(CLI::App* cmd, BenchOpts& o) {
  cmd->add_option("--receive-relay-dir", o.receive_relay_dir,
                  "receivers connect to this relay (its data directory) instead: a peer of the sending relay");
  cmd->add_option("--receive-gateway", o.receive_gateway, "receivers connect to this gateway HOST:PORT instead");
}

void AddTraffic(CLI::App* cmd, BenchOpts& o) {
  cmd->add_option("--duration", o.duration, "measured seconds per step")->check(CLI::Range(0.1, 3600.0));
  cmd->add_option("--warmup", o.warmup, "unmeasured seconds before each step")->check(CLI::Range(0.0, 600.0));
  cmd->add_option("--drain", o.drain, "most seconds to wait for outstanding acks and deliveries after a step")
      ->check(CLI::Range(0.0, 600.0));
  cmd->add_option("--size", o.size, "message content bytes")->check(CLI::Range(24, 60000));
}

// A comparison engine's subcommand (mqtt, xmpp) with the traffic options; its own options
// follow, then AddComparisonOptions.
CLI::App* AddComparisonCommand(CLI::App* bench, const std::string& name, const std::string& about, BenchOpts& o) {
  o.rooms = 100;
  o.members = 10;
  o.sources = 1;
  o.max_connecting = 64;  // Mosquitto listens with a backlog of 100: more SYNs wait a second
  CLI::App* cmd = bench->add_subcommand(name, about);
  cmd->option_defaults()->always_capture_default();
  AddTraffic(cmd, o);
  return cmd;
}

// The options the comparison engines share; `peer` names the server ("broker").
void AddComparisonOptions(CLI::App* cmd, BenchOpts& o, const std::string& peer, const std::string& rooms_about,
                          const std::string& members_about, const std::string& connecting_about) {
  cmd->add_option("--pid", o.pid, "the " + peer + "'s pid, for its CPU time and RSS");
  cmd->add_option("--rooms", o.rooms, rooms_about)->check(CLI::Range(1, 100000));
  cmd->add_option("--members", o.members, members_about)->check(CLI::Range(1, 100000));
  cmd->add_option("--rates", o.rates, "offered messages/s per step: 1000,2000 or 1000:16000:x2 or 1000:5000:+1000");
  cmd->add_flag("--all-steps", o.all_steps, "run every step, even after the " + peer + " saturates");
  cmd->add_option("--sources", o.sources, "connect from 127.0.0.1 .. 127.0.0.N (1: the kernel picks)")
      ->check(CLI::Range(1, 250));
  cmd->add_option("--max-connecting", o.max_connecting, connecting_about)->check(CLI::Range(1, 100000));
  cmd->add_option("--cpus", o.cpus, "pin the generator to these CPUs (\"1\")");
  cmd->add_flag("--no-progress", o.no_progress, "no progress line even on a terminal");
}

bool FileExists(const std::string& p) {
  struct stat st {};
  return !p.empty() && ::stat(p.c_str(), &st) == 0;
}

// Resolves the target, runs or loads the setup, pins. Returns false (exit code set) on failure.
bool Prepare(const BenchOpts& o, Globals& g, const Plan& plan, Target* target, Setup* setup) {
  auto t = ResolveTarget(o.relay_dir, o.api, o.gateway, o.pid, o.sink);
  if (!t.ok()) {
    PrintError(t.status());
    g.exit_code = t.status().code() == Code::kBadRequest ? kUsage : kUnreachable;
    return false;
  }
  *target = *t;
  if (!o.receive_relay_dir.empty() || !o.receive_gateway.empty()) {
    auto rt = ResolveTarget(o.receive_relay_dir, target->api, o.receive_gateway, 0, "");
    if (!rt.ok()) {
      PrintError(rt.status());
      g.exit_code = rt.status().code() == Code::kBadRequest ? kUsage : kUnreachable;
      return false;
    }
    target->receive_gateway = rt->gateway;
    target->receive_pid = rt->pid;
  }
  if (target->sink) {
    *setup = SinkSetup(plan);
  } else if (FileExists(o.setup_file)) {
    auto s = LoadSetup(o.setup_file, plan);
    if (!s.ok()) {
      PrintError(s.status());
      g.exit_code = kUsage;
      return false;
    }
    *setup = std::move(*s);
  } else {
    bool progress = !o.no_progress && ProgressWanted();
    Plan p = plan;
    p.threads = o.setup_threads;
    auto s = RunSetup(*target, p, [&](int done, int total) {
      if (progress) ProgressLine("setup: " + std::to_string(done) + "/" + std::to_string(total) + " users registered");
    });
    if (progress) ProgressLine("");
    if (!s.ok()) {
      PrintError(s.status());
      g.exit_code = s.status().code() == Code::kUnavailable ? kUnreachable : kFail;
      return false;
    }
    *setup = std::move(*s);
    if (!o.setup_file.empty()) {
      if (Status st = SaveSetup(o.setup_file, plan, *setup); !st.ok()) {
        PrintError(st);
        g.exit_code = kFail;
        return false;
      }
    }
  }
  if (o.setup_only) {
    fprintf(stderr, "chatctl bench: setup ready (%zu rooms, %zu loose users)%s\n", setup->rooms.size(),
            setup->loose.size(), o.setup_file.empty() ? "" : (" in " + o.setup_file).c_str());
    return false;
  }
  if (!o.relay_cpus.empty()) {
    Status s = target->pid ? PinProcess(target->pid, o.relay_cpus)
                           : BadRequest("--relay-cpus needs the server's pid (--pid or --relay-dir)");
    if (!s.ok()) {
      PrintError(s);
      g.exit_code = kUsage;
      return false;
    }
  }
  if (!o.cpus.empty()) {
    if (Status s = PinProcess(0, o.cpus); !s.ok()) {
      PrintError(s);
      g.exit_code = kUsage;
      return false;
    }
  }
  return true;
}

Header MakeHeader(const BenchOpts& o, const Target& t, const std::string& scenario, const std::string& shape) {
  Header h;
  h.scenario = scenario;
  h.shape = shape;
  h.target = t;
  h.machine = Machine();
  h.sources = o.sources;
  h.size = o.size;
  h.threads = o.threads;
  return h;
}

// The options every traffic scenario shares (rates are set by the caller).
TrafficConfig TrafficOptions(const BenchOpts& o, const std::string& scenario) {
  TrafficConfig cfg;
  cfg.scenario = scenario;
  cfg.warmup_s = o.warmup;
  cfg.duration_s = o.duration;
  cfg.drain_s = o.drain;
  cfg.size = o.size;
  cfg.threads = o.threads;
  cfg.sources = o.sources;
  cfg.max_connecting = o.max_connecting;
  cfg.all_steps = o.all_steps;
  cfg.progress = !o.no_progress && ProgressWanted();
  return cfg;
}

bool RatesOk(const std::vector<double>& rates, Globals& g) {
  if (!rates.empty() && rates[0] > 0) return true;
  fprintf(stderr, "chatctl: --rates must be positive numbers: 1000,2000 or 1000:8000:x2 or 1000:5000:+1000\n");
  g.exit_code = kUsage;
  return false;
}

// A server that refuses messages, drops connections or fails to deliver at a rate it
// sustained fails the run; a saturated step's backlog does not.
bool TrafficFailed(const TrafficResult& r) {
  bool dropped = r.engine.closed_by_server > 0;
  for (const auto& s : r.steps) {
    if (s.errors || (s.undelivered && (s.sustained || dropped || !s.drain_timed_out))) return true;
  }
  return false;
}

void RunTrafficCommand(const BenchOpts& o, Globals& g, const std::string& scenario) {
  Plan plan;
  TrafficConfig cfg = TrafficOptions(o, scenario);
  if (scenario == "ingest") {
    plan.rooms = o.senders;
    plan.senders_per_room = 1;
    plan.receivers_per_room = 0;
    cfg.rates = {o.rate};
    cfg.window = o.window;
  } else {
    plan.rooms = o.rooms;
    plan.senders_per_room = o.senders_per_room;
    plan.receivers_per_room = o.members;
    plan.conns_per_user = o.conns_per_user;
    cfg.rates = scenario == "latency" ? std::vector<double>{o.rate} : ParseRates(o.rates);
    if (!RatesOk(cfg.rates, g)) return;
  }
  Target target;
  Setup setup;
  if (!Prepare(o, g, plan, &target, &setup)) return;
  auto r = RunTraffic(target, setup, cfg);
  if (cfg.progress) ProgressLine("");
  if (!r.ok()) {
    PrintError(r.status());
    g.exit_code = r.status().code() == Code::kUnavailable ? kUnreachable : kFail;
    return;
  }
  std::string shape = scenario == "ingest"
                          ? std::to_string(o.senders) + " senders, each in its own room, " +
                                (o.rate > 0 ? "at " + Si(o.rate) + " msg/s" : "window " + std::to_string(o.window))
                          : std::to_string(plan.rooms) + " rooms x " + std::to_string(plan.receivers_per_room) +
                                " receivers + " + std::to_string(plan.senders_per_room) + " sender(s)";
  PrintTraffic(MakeHeader(o, target, scenario, shape), cfg, *r, g.output == "json");
  if (TrafficFailed(*r)) g.exit_code = kFail;
}

// The comparison engines (mqtt, xmpp): fills cfg's rooms, members, pid and traffic options
// (one generator thread), pins with --cpus, runs `run` and prints the fan-out scenario's
// report, with `server` and `shape` in its header.
void RunComparison(const BenchOpts& o, Globals& g, const std::string& scenario, const std::string& server,
                   const std::string& shape, RoomTrafficConfig* cfg,
                   const std::function<Result<TrafficResult>()>& run) {
  cfg->pid = o.pid;
  cfg->rooms = o.rooms;
  cfg->members = o.members;
  cfg->traffic = TrafficOptions(o, scenario);
  cfg->traffic.threads = 1;
  cfg->traffic.rates = ParseRates(o.rates);
  if (!RatesOk(cfg->traffic.rates, g)) return;
  if (!o.cpus.empty()) {
    if (Status s = PinProcess(0, o.cpus); !s.ok()) {
      PrintError(s);
      g.exit_code = kUsage;
      return;
    }
  }
  auto r = run();
  if (!r.ok()) {
    PrintError(r.status());
    Code c = r.status().code();
    g.exit_code = c == Code::kUnavailable ? kUnreachable : c == Code::kBadRequest ? kUsage : kFail;
    return;
  }
  Target target;
  target.gateway = server;
  target.pid = o.pid;
  Header h = MakeHeader(o, target, scenario, shape);
  h.threads = 1;
  PrintTraffic(h, cfg->traffic, *r, g.output == "json");
  if (TrafficFailed(*r)) g.exit_code = kFail;
}

void RunMqttCommand(const BenchOpts& o, Globals& g) {
  MqttConfig cfg;
  cfg.broker = o.broker;
  cfg.qos = o.qos;
  RunComparison(o, g, "mqtt", o.broker,
                std::to_string(o.rooms) + " topics x " + std::to_string(o.members) +
                    " subscribers + 1 publisher, MQTT 3.1.1 QoS " + std::to_string(o.qos),
                &cfg, [&] { return RunMqtt(cfg); });
}

void RunXmppCommand(const BenchOpts& o, Globals& g) {
  XmppConfig cfg = o.xmpp;
  RunComparison(o, g, "xmpp", cfg.server,
                std::to_string(o.rooms) + " MUC rooms x " + std::to_string(o.members) +
                    " members + 1 publisher, XMPP over WebSocket",
                &cfg, [&] {
                  cfg.traffic.connect_timeout_s = o.join_timeout;
                  XmppJoin j;
                  auto r = RunXmpp(cfg, &j);
                  fprintf(stderr,
                          "chatctl bench xmpp: %d connections: %d bound (last at %.1fs), %d joined (all at %.1fs); "
                          "server RSS %ld kB before, %ld kB after the joins\n",
                          j.connections, j.bound, j.bound_s, j.joined, j.joined_s, j.rss_before_kb, j.rss_joined_kb);
                  return r;
                });
}

void RunIdleCommand(const BenchOpts& o, Globals& g) {
  Plan plan;
  plan.loose_users = o.users;
  Target target;
  Setup setup;
  if (!Prepare(o, g, plan, &target, &setup)) return;
  IdleConfig cfg;
  cfg.connections = o.connections;
  cfg.hold_s = o.hold;
  cfg.settle_s = o.settle;
  cfg.sources = o.sources;
  cfg.max_connecting = o.max_connecting;
  cfg.progress = !o.no_progress && ProgressWanted();
  auto r = RunIdle(target, setup, cfg);
  if (!r.ok()) {
    PrintError(r.status());
    g.exit_code = kFail;
    return;
  }
  std::string shape =
      std::to_string(o.connections) + " authenticated connections as " + std::to_string(o.users) + " users";
  Header h = MakeHeader(o, target, "idle", shape);
  h.size = 0;
  PrintIdle(h, *r, g.output == "json");
}

void RunSearchCommand(const BenchOpts& o, Globals& g) {
  if (o.messages < static_cast<uint64_t>(o.rooms)) {
    fprintf(stderr, "chatctl: --messages must be at least --rooms\n");
    g.exit_code = kUsage;
    return;
  }
  Plan plan;
  plan.rooms = o.rooms;
  plan.senders_per_room = 1;
  plan.receivers_per_room = o.members - 1;
  Target target;
  Setup setup;
  if (!Prepare(o, g, plan, &target, &setup)) return;
  SearchConfig cfg;
  cfg.messages = o.messages;
  cfg.rate = o.rate;
  cfg.duration_s = o.duration;
  cfg.clients = o.clients;
  cfg.window = o.window;
  cfg.sources = o.sources;
  cfg.max_connecting = o.max_connecting;
  cfg.index_timeout_s = o.index_timeout;
  cfg.progress = !o.no_progress && ProgressWanted();
  auto r = RunSearch(target, setup, cfg);
  if (!r.ok()) {
    PrintError(r.status());
    Code c = r.status().code();
    g.exit_code = c == Code::kUnavailable ? kUnreachable : c == Code::kBadRequest ? kUsage : kFail;
    return;
  }
  std::string shape = std::to_string(o.rooms) + " rooms x " + std::to_string(o.members) + " members, " +
                      std::to_string(o.messages) + " messages; " + Si(o.rate) + " queries/s over " +
                      std::to_string(o.clients) + " clients";
  Header h = MakeHeader(o, target, "search", shape);
  h.threads = o.clients;
  PrintSearch(h, cfg, *r, g.output == "json");
  if (r->errors || r->total_wrong()) g.exit_code = kFail;
}

}  // namespace

void RegisterBench(CLI::App& app, Globals& g) {
  CLI::App* bench = app.add_subcommand("bench", "load generator and benchmarks (see chatctl(1), BENCHMARKS.md)");
  bench->require_subcommand(1);

  auto oi = std::make_shared<BenchOpts>();
  CLI::App* ingest = bench->add_subcommand("ingest", "N senders, each alone in a room: acknowledged messages/s");
  AddCommon(ingest, *oi);
  AddTraffic(ingest, *oi);
  ingest->add_option("--senders", oi->senders, "concurrent senders")->check(CLI::Range(1, 100000));
  ingest->add_option("--window", oi->window, "unacknowledged messages per sender (closed loop)")
      ->check(CLI::Range(1, 10000));
  ingest->add_option("--rate", oi->rate, "offered messages/s for all senders (0: as fast as acks allow)");
  ingest->callback([oi, &g] { RunTrafficCommand(*oi, g, "ingest"); });

  auto of = std::make_shared<BenchOpts>();
  CLI::App* fanout = bench->add_subcommand("fanout", "rooms x members at rising rates: deliveries/s, latency, CPU");
  AddCommon(fanout, *of);
  AddTraffic(fanout, *of);
  fanout->add_option("--rooms", of->rooms, "rooms (group chats)")->check(CLI::Range(1, 100000));
  fanout->add_option("--members", of->members, "receiving connections per room")->check(CLI::Range(1, 100000));
  fanout->add_option("--senders-per-room", of->senders_per_room, "sending connections per room")
      ->check(CLI::Range(1, 1000));
  fanout->add_option("--conns-per-user", of->conns_per_user, "receiving connections per receiving user")
      ->check(CLI::Range(1, 1000));
  fanout->add_option("--rates", of->rates,
                     "offered messages/s per step: 1000,2000 or 1000:16000:x2 or 1000:5000:+1000");
  fanout->add_flag("--all-steps", of->all_steps, "run every step, even after the relay saturates");
  AddReceiveRelay(fanout, *of);
  fanout->callback([of, &g] { RunTrafficCommand(*of, g, "fanout"); });

  auto ol = std::make_shared<BenchOpts>();
  ol->rooms = 1;
  ol->members = 1;
  ol->rate = 1000;
  ol->duration = 10;
  ol->warmup = 2;
  CLI::App* latency = bench->add_subcommand("latency", "send-to-receive latency at a low fixed rate");
  AddCommon(latency, *ol);
  AddTraffic(latency, *ol);
  latency->add_option("--rooms", ol->rooms, "rooms")->check(CLI::Range(1, 100000));
  latency->add_option("--members", ol->members, "receiving connections per room")->check(CLI::Range(1, 100000));
  latency->add_option("--rate", ol->rate, "messages/s for all rooms")->check(CLI::Range(0.001, 1e9));
  AddReceiveRelay(latency, *ol);
  latency->callback([ol, &g] { RunTrafficCommand(*ol, g, "latency"); });

  auto od = std::make_shared<BenchOpts>();
  CLI::App* idle = bench->add_subcommand("idle", "hold N authenticated connections: server RSS per connection, CPU");
  AddCommon(idle, *od);
  idle->add_option("--connections", od->connections, "connections to hold")->check(CLI::Range(1, 1000000));
  idle->add_option("--users", od->users, "users they authenticate as (round-robin)")->check(CLI::Range(1, 100000));
  idle->add_option("--hold", od->hold, "seconds to hold them, measuring CPU")->check(CLI::Range(0.0, 86400.0));
  idle->add_option("--settle", od->settle, "seconds between the last auth_ok and the RSS sample")
      ->check(CLI::Range(0.0, 600.0));
  idle->callback([od, &g] { RunIdleCommand(*od, g); });

  auto oq = std::make_shared<BenchOpts>();
  oq->rooms = 10;
  oq->members = 10;
  oq->rate = 200;
  oq->duration = 10;
  oq->window = 64;
  CLI::App* search = bench->add_subcommand(
      "search", "populate rooms, then full-text searches over REST at a fixed rate: latency, CPU");
  AddCommon(search, *oq);
  // Search needs a relay's REST API (no sink) and runs --clients threads, not --threads.
  search->remove_option(search->get_option("--sink"));
  search->remove_option(search->get_option("--threads"));
  search->add_option("--rooms", oq->rooms, "rooms (group chats)")->check(CLI::Range(1, 100000));
  search->add_option("--members", oq->members, "members per room, each a user in that room only")
      ->check(CLI::Range(1, 1000));
  search->add_option("--messages", oq->messages, "messages to write first, spread over the rooms")
      ->check(CLI::Range(uint64_t{1}, uint64_t{10'000'000}));
  search->add_option("--window", oq->window, "while writing: unacknowledged messages per room")
      ->check(CLI::Range(1, 10000));
  search->add_option("--index-timeout", oq->index_timeout, "most seconds to wait for the search index")
      ->check(CLI::Range(1.0, 86400.0));
  search->add_option("--rate", oq->rate, "searches/s offered (open loop)")->check(CLI::Range(0.1, 1e6));
  search->add_option("--duration", oq->duration, "seconds of searches")->check(CLI::Range(0.1, 3600.0));
  search->add_option("--clients", oq->clients, "HTTP client threads, one keep-alive connection each")
      ->check(CLI::Range(1, 1024));
  search->callback([oq, &g] { RunSearchCommand(*oq, g); });

  auto os = std::make_shared<BenchOpts>();
  CLI::App* sink = bench->add_subcommand("sink", "a trivial gateway stand-in, to measure the generator's ceiling");
  sink->option_defaults()->always_capture_default();
  sink->add_option("--listen", os->listen, "HOST:PORT to listen on (port 0 picks one)");
  sink->add_option("--port-file", os->port_file, "write \"HOST:PORT\\nPID\\n\" to FILE once listening");
  sink->callback([os, &g] { g.exit_code = RunSink(os->listen, os->port_file); });

  auto om = std::make_shared<BenchOpts>();
  CLI::App* mqtt = AddComparisonCommand(
      bench, "mqtt",
      "the fanout workload against an MQTT 3.1.1 broker (Mosquitto), for comparison: deliveries/s, latency, CPU", *om);
  mqtt->add_option("--broker", om->broker, "the broker's HOST:PORT (IPv4)");
  mqtt->add_option("--qos", om->qos, "QoS of PUBLISH and SUBSCRIBE")->check(CLI::Range(0, 1));
  AddComparisonOptions(mqtt, *om, "broker", "rooms (topics room/<r>, one publisher each)", "subscribers per room",
                       "connections opening at once");
  mqtt->callback([om, &g] { RunMqttCommand(*om, g); });

  auto ox = std::make_shared<BenchOpts>();
  CLI::App* xmpp = AddComparisonCommand(
      bench, "xmpp",
      "the fanout workload against an XMPP server's MUC over WebSocket (ejabberd, Prosody), for comparison", *ox);
  xmpp->add_option("--server", ox->xmpp.server, "the server's WebSocket listener HOST:PORT (IPv4)");
  xmpp->add_option("--path", ox->xmpp.path, "the WebSocket path");
  xmpp->add_option("--domain", ox->xmpp.domain, "the XMPP domain (virtual host)");
  xmpp->add_option("--muc", ox->xmpp.muc, "the MUC service (default conference.DOMAIN)");
  xmpp->add_option("--user-prefix", ox->xmpp.user_prefix, "registered users PREFIX0, PREFIX1, ...");
  xmpp->add_option("--password", ox->xmpp.password, "their password");
  xmpp->add_option("--join-timeout", ox->join_timeout, "most seconds for every connection to join")
      ->check(CLI::Range(1.0, 86400.0));
  AddComparisonOptions(xmpp, *ox, "server", "rooms (r<N>@MUC, one publisher each)", "receiving members per room",
                       "connections logging in and joining at once");
  xmpp->callback([ox, &g] { RunXmppCommand(*ox, g); });

  RegisterFedBench(bench, g);  // catchup, converge (cli/bench_catchup.cpp)
}

}  // namespace chatd::cli
