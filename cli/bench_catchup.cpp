// `chatctl bench catchup` and `chatctl bench converge`: the federation benchmarks of
// issue 3. See bench_fed.h.
#include <arpa/inet.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>
#include <memory>
#include <thread>

#include "base/time.h"
#include "cli/bench_engine.h"
#include "cli/bench_fed.h"
#include "cli/bench_fed_relay.h"
#include "cli/bench_proc.h"
#include "cli/bench_report.h"
#include "cli/bench_setup.h"
#include "cli/common.h"

namespace chatd::cli {

namespace {

using namespace bench;  // NOLINT: this file drives the bench modules

// ---- filling the origin: N acknowledged messages, closed loop ----

class Filler final : public EngineHandler {
 public:
  Filler(const EngineOptions& eo, const Setup& setup, uint64_t total, int window, size_t size)
      : engine_(eo, this), total_(total), window_(window) {
    content_.assign(size, 'x');
    for (const Room& r : setup.rooms) {
      for (const Member& m : r.senders) {
        Conn* c = engine_.Add(m.token, static_cast<int32_t>(chats_.size()), 0, 0);
        (void)c;
        chats_.push_back(std::to_string(r.chat_id));
      }
    }
  }

  // Returns an error if connections fail or the relay refuses messages.
  Status Run(bool progress) {
    int64_t t0 = MonoNs();
    while (engine_.ready() + engine_.counters().connect_failures < engine_.total()) {
      engine_.Poll(MonoNs() + 50'000'000);
      if (MonoNs() - t0 > 120'000'000'000) return Status(Code::kUnavailable, "fill: connections timed out");
    }
    if (engine_.counters().connect_failures)
      return Status(Code::kUnavailable, "fill: connections failed: " + first_close_);
    for (const auto& c : engine_.conns()) {
      for (int w = 0; w < window_; ++w) SendOne(c.get());
    }
    int64_t last = MonoNs();
    while (acked_ + errors_ < sent_ || sent_ < total_) {
      engine_.Poll(MonoNs() + 20'000'000);
      if (engine_.counters().closed_by_server) return Internal("fill: the relay closed a connection: " + first_close_);
      if (errors_) return Internal("fill: the relay refused a message: " + first_error_);
      if (progress && MonoNs() - last > 500'000'000) {
        last = MonoNs();
        ProgressLine("fill: " + std::to_string(acked_) + "/" + std::to_string(total_) + " messages acknowledged");
      }
    }
    if (progress) ProgressLine("");
    seconds_ = static_cast<double>(MonoNs() - t0) / 1e9;
    return Status::Ok();
  }
  uint64_t acked() const { return acked_; }
  double seconds() const { return seconds_; }

  void OnReady(Conn*, int64_t) override {}
  void OnEvent(Conn* c, const ScannedEvent& ev, int64_t) override {
    if (ev.type == "message_sent") {
      acked_++;
      SendOne(c);
    } else if (ev.type == "error") {
      errors_++;
      std::string_view msg;
      FindStringField(ev.body, "message", &msg);
      if (first_error_.empty()) first_error_ = std::string(msg);
    }
  }
  void OnClosed(Conn*, std::string_view why) override {
    if (first_close_.empty()) first_close_ = std::string(why);
  }

 private:
  void SendOne(Conn* c) {
    if (sent_ >= total_ || c->state != Conn::State::kReady) return;
    buf_ = R"({"type":"send_message","chat_id":")" + chats_[static_cast<size_t>(c->room)] +
           R"(","message_type":"text","content":"fill )" + std::to_string(sent_) + " " + content_ + R"(","temp_id":")" +
           std::to_string(sent_) + "\"}";
    engine_.SendText(c, buf_);
    sent_++;
  }

  Engine engine_;
  uint64_t total_;
  int window_;
  std::vector<std::string> chats_;  // by connection (room index)
  std::string content_, buf_, first_error_, first_close_;
  uint64_t sent_ = 0, acked_ = 0, errors_ = 0;
  double seconds_ = 0;
};

Result<EngineOptions> GatewayOptions(const std::string& gateway, int sources) {
  EngineOptions eo;
  std::string host;
  int port = 0;
  if (!ParseHostPort(gateway, &host, &port)) return BadRequest("bad gateway address " + gateway);
  eo.gateway.sin_family = AF_INET;
  eo.gateway.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &eo.gateway.sin_addr) != 1) return BadRequest("the gateway must be IPv4");
  eo.host = gateway;
  eo.sources = LoopbackSources(sources);
  return eo;
}

// Fills `a` until its own origin has `envelopes` envelopes; returns the messages sent.
Result<uint64_t> Fill(FedRelay& a, uint64_t envelopes, int senders, int window, size_t size, bool progress,
                      double* seconds) {
  auto st = PollFederation(a);
  if (!st.ok()) return st.status();
  if (st->vector[a.name] >= envelopes) return uint64_t{0};
  Target t;
  t.api = a.api;
  t.gateway = a.gateway;
  t.pid = a.pid;
  Plan plan;
  plan.rooms = senders;
  plan.receivers_per_room = 0;
  auto setup = RunSetup(t, plan, [&](int done, int total) {
    if (progress) ProgressLine("fill setup: " + std::to_string(done) + "/" + std::to_string(total) + " users");
  });
  if (!setup.ok()) return setup.status();
  st = PollFederation(a);  // registration and chats are envelopes too
  if (!st.ok()) return st.status();
  uint64_t own = st->vector[a.name];
  if (own >= envelopes) return uint64_t{0};
  auto eo = GatewayOptions(a.gateway, 4);
  if (!eo.ok()) return eo.status();
  Filler f(*eo, *setup, envelopes - own, window, size);
  if (Status s = f.Run(progress); !s.ok()) return s;
  *seconds = f.seconds();
  return f.acked();
}

// ---- catch-up ----

struct CatchupOpts {
  std::string relay_dir, peer_dir, cpus;
  uint64_t envelopes = 0;
  int senders = 100, window = 8;
  size_t size = 100;
  bool fill_only = false, no_link = false, no_progress = false;
  double timeout = 600, poll_ms = 5;
};

struct Sample {
  ProcSample a, b;
  double self = 0, machine = 0;
};

Sample TakeSample(const FedRelay& a, const FedRelay& b) {
  return Sample{SampleProc(a.pid), SampleProc(b.pid), SelfCpuSeconds(), MachineBusySeconds()};
}

void RunCatchup(const CatchupOpts& o, Globals& g) {
  auto fail = [&](const Status& s, int code) {
    PrintError(s);
    g.exit_code = code;
  };
  if (!o.cpus.empty()) {
    if (Status s = PinProcess(0, o.cpus); !s.ok()) return fail(s, kUsage);
  }
  bool progress = !o.no_progress && ProgressWanted();
  auto a = OpenRelay(o.relay_dir);
  if (!a.ok()) return fail(a.status(), kUnreachable);
  uint64_t filled = 0;
  double fill_s = 0;
  if (o.envelopes > 0) {
    auto n = Fill(*a, o.envelopes, o.senders, o.window, o.size, progress, &fill_s);
    if (!n.ok()) return fail(n.status(), kFail);
    filled = *n;
    if (filled) {
      fprintf(stderr, "chatctl bench catchup: %s filled with %llu messages in %.1fs (%.0f/s)\n", a->name.c_str(),
              static_cast<unsigned long long>(filled), fill_s, static_cast<double>(filled) / fill_s);
    }
  }
  if (o.fill_only) return;
  if (o.peer_dir.empty()) return fail(BadRequest("--peer-dir is required (the relay that catches up)"), kUsage);
  auto b = OpenRelay(o.peer_dir);
  if (!b.ok()) return fail(b.status(), kUnreachable);
  auto sa = PollFederation(*a);
  auto sb = PollFederation(*b);
  if (!sa.ok()) return fail(sa.status(), kUnreachable);
  if (!sb.ok()) return fail(sb.status(), kUnreachable);
  const Vector target = sa->vector;
  const Vector start = sb->vector;
  const uint64_t missed = Missing(start, target, b->name);
  if (missed == 0) return fail(BadRequest(b->name + " lacks nothing " + a->name + " has: nothing to measure"), kUsage);

  Sample s0 = TakeSample(*a, *b);
  int64_t t_pin = MonoNs();
  if (!o.no_link) {
    // A must know B's key before B dials, or it refuses the link and B backs off.
    if (!sa->connected.count(b->name)) {
      if (Status s = PinPeer(*a, *b, false); !s.ok()) return fail(s, kFail);
    }
    if (!sb->connected.count(a->name)) {
      t_pin = MonoNs();
      if (Status s = PinPeer(*b, *a, true); !s.ok()) return fail(s, kFail);
    }
  }
  int64_t t_up = 0, t_first = 0, t_done = 0, last_print = MonoNs();
  uint64_t polls = 0, left = missed;
  Vector last;
  const int64_t poll_ns = static_cast<int64_t>(o.poll_ms * 1e6);
  const int64_t deadline = t_pin + static_cast<int64_t>(o.timeout * 1e9);
  for (;;) {
    auto st = PollFederation(*b);
    int64_t now = MonoNs();
    polls++;
    if (!st.ok()) return fail(st.status(), kUnreachable);
    if (!t_up && st->connected[a->name]) t_up = now;
    left = Missing(st->vector, target, b->name);
    if (!t_first && left < missed) t_first = now;
    last = st->vector;
    if (left == 0) {
      t_done = now;
      break;
    }
    if (now > deadline) break;
    if (progress && now - last_print > 500'000'000) {
      last_print = now;
      ProgressLine("catchup: " + std::to_string(missed - left) + "/" + std::to_string(missed) + " applied on " +
                   b->name + (t_up ? "" : " (link not up yet)"));
    }
    std::this_thread::sleep_for(std::chrono::nanoseconds(poll_ns));
  }
  if (progress) ProgressLine("");
  Sample s1 = TakeSample(*a, *b);
  if (!t_up) t_up = t_first ? t_first : t_pin;  // linked before we looked (--no-link)
  const bool done = t_done != 0;
  const int64_t t_end = done ? t_done : MonoNs();
  const double wall = static_cast<double>(t_end - t_pin) / 1e9;
  const double from_up = static_cast<double>(t_end - t_up) / 1e9;
  const double from_first = t_first ? static_cast<double>(t_end - t_first) / 1e9 : 0;
  const double applied = static_cast<double>(missed - left);
  const double b_cpu = s1.b.cpu_s - s0.b.cpu_s, a_cpu = s1.a.cpu_s - s0.a.cpu_s;
  const double self = s1.self - s0.self;
  const double other = std::max(0.0, (s1.machine - s0.machine) - a_cpu - b_cpu - self);
  if (!done) g.exit_code = kFail;

  if (g.output == "json") {
    rapidjson::StringBuffer buf;
    JsonOut w(buf);
    w.StartObject();
    Kv(w, "scenario", std::string("catchup"));
    Kv(w, "origin", a->name);
    Kv(w, "peer", b->name);
    Kv(w, "filled_messages", filled);
    Kv(w, "fill_s", fill_s);
    Kv(w, "missed_envelopes", missed);
    Kv(w, "applied_envelopes", static_cast<uint64_t>(applied));
    Kv(w, "caught_up", done);
    Kv(w, "origin_vector", VectorText(target));
    Kv(w, "peer_vector_before", VectorText(start));
    Kv(w, "peer_vector_after", VectorText(last));
    Kv(w, "link_up_s", static_cast<double>(t_up - t_pin) / 1e9);
    Kv(w, "first_applied_s", t_first ? static_cast<double>(t_first - t_pin) / 1e9 : 0.0);
    Kv(w, "catchup_s", from_up);
    Kv(w, "total_s", wall);
    Kv(w, "envelopes_per_s", from_up > 0 ? applied / from_up : 0);
    Kv(w, "envelopes_per_s_from_first_applied", from_first > 0 ? applied / from_first : 0);
    Kv(w, "envelopes_per_s_from_pin", wall > 0 ? applied / wall : 0);
    Kv(w, "peer_cpu_s", b_cpu);
    Kv(w, "peer_cpu_pct", wall > 0 ? 100 * b_cpu / wall : 0);
    Kv(w, "peer_us_per_envelope", applied > 0 ? b_cpu * 1e6 / applied : 0);
    Kv(w, "origin_cpu_s", a_cpu);
    Kv(w, "origin_us_per_envelope", applied > 0 ? a_cpu * 1e6 / applied : 0);
    Kv(w, "peer_rss_kb", static_cast<double>(s1.b.rss_kb));
    Kv(w, "generator_cpu_pct", wall > 0 ? 100 * self / wall : 0);
    Kv(w, "other_processes_cpu_pct", wall > 0 ? 100 * other / wall : 0);
    Kv(w, "polls", polls);
    Kv(w, "poll_ms", o.poll_ms);
    w.EndObject();
    printf("%s\n", buf.GetString());
    return;
  }
  printf("chatctl bench catchup: %s catches up with %s\n", b->name.c_str(), a->name.c_str());
  printf("  missed      %llu envelopes (%s had %s, %s had %s)\n", static_cast<unsigned long long>(missed),
         a->name.c_str(), VectorText(target).c_str(), b->name.c_str(), VectorText(start).c_str());
  printf("  link up     %s after pinning; first envelope applied after %s\n", Dur(t_up - t_pin).c_str(),
         t_first ? Dur(t_first - t_pin).c_str() : "-");
  printf("  %s   %.0f envelopes in %.2fs from link up: %s envelopes/s (%s/s from the first applied)\n",
         done ? "caught up" : "TIMED OUT", applied, from_up, Si(from_up > 0 ? applied / from_up : 0).c_str(),
         Si(from_first > 0 ? applied / from_first : 0).c_str());
  printf("  CPU         %s: %.2fs (%.1f us/envelope, %.0f%%); %s: %.2fs (%.1f us/envelope); others %.0f%%\n",
         b->name.c_str(), b_cpu, applied > 0 ? b_cpu * 1e6 / applied : 0, wall > 0 ? 100 * b_cpu / wall : 0,
         a->name.c_str(), a_cpu, applied > 0 ? a_cpu * 1e6 / applied : 0, wall > 0 ? 100 * other / wall : 0);
}

// ---- convergence of several relays ----

struct ConvergeOpts {
  std::vector<std::string> dirs;
  int64_t since_ns = 0;
  bool no_progress = false;
  double timeout = 120, poll_ms = 5;
};

void RunConverge(const ConvergeOpts& o, Globals& g) {
  auto fail = [&](const Status& s, int code) {
    PrintError(s);
    g.exit_code = code;
  };
  if (o.dirs.size() < 2) return fail(BadRequest("name at least two relays (--relay-dir, repeated)"), kUsage);
  bool progress = !o.no_progress && ProgressWanted();
  std::vector<FedRelay> relays;
  for (const auto& d : o.dirs) {
    auto r = OpenRelay(d);
    if (!r.ok()) return fail(r.status(), kUnreachable);
    relays.push_back(std::move(*r));
  }
  const int64_t t0_real = RealNs(), t0 = MonoNs();
  const int64_t since = o.since_ns ? o.since_ns : t0_real;
  const double offset_s = static_cast<double>(t0_real - since) / 1e9;  // from --since-ns to our start
  Vector target;
  std::vector<Vector> first(relays.size());
  for (size_t i = 0; i < relays.size(); ++i) {
    auto st = PollFederation(relays[i]);
    if (!st.ok()) return fail(st.status(), kUnreachable);
    first[i] = st->vector;
    Merge(&target, st->vector);
  }
  std::vector<uint64_t> missing0(relays.size());
  uint64_t total_missing = 0;
  for (size_t i = 0; i < relays.size(); ++i) {
    missing0[i] = Missing(first[i], target);
    total_missing += missing0[i];
  }
  std::vector<int64_t> done_at(relays.size(), 0);
  std::vector<ProcSample> cpu0, cpu1;
  for (const auto& r : relays) cpu0.push_back(SampleProc(r.pid));
  const double machine0 = MachineBusySeconds(), self0 = SelfCpuSeconds();
  int64_t t_identical = 0, last_print = t0;
  const int64_t deadline = t0 + static_cast<int64_t>(o.timeout * 1e9);
  std::vector<Vector> last(relays.size());
  for (;;) {
    size_t n_done = 0;
    bool identical = true;
    for (size_t i = 0; i < relays.size(); ++i) {
      auto st = PollFederation(relays[i]);
      if (!st.ok()) return fail(st.status(), kUnreachable);
      int64_t now = MonoNs();
      last[i] = st->vector;
      if (!done_at[i] && Missing(st->vector, target) == 0) done_at[i] = now;
      if (done_at[i]) n_done++;
      if (i > 0 && last[i] != last[0]) identical = false;
    }
    int64_t now = MonoNs();
    if (identical && !t_identical) t_identical = now;
    if (n_done == relays.size() && t_identical) break;
    if (now > deadline) break;
    if (progress && now - last_print > 500'000'000) {
      last_print = now;
      uint64_t left = 0;
      for (size_t i = 0; i < relays.size(); ++i) left += Missing(last[i], target);
      ProgressLine("converge: " + std::to_string(left) + " envelopes still missing");
    }
    std::this_thread::sleep_for(std::chrono::nanoseconds(static_cast<int64_t>(o.poll_ms * 1e6)));
  }
  if (progress) ProgressLine("");
  for (const auto& r : relays) cpu1.push_back(SampleProc(r.pid));
  const double window = static_cast<double>(MonoNs() - t0) / 1e9;
  double relays_cpu = 0;
  for (size_t i = 0; i < relays.size(); ++i) relays_cpu += cpu1[i].cpu_s - cpu0[i].cpu_s;
  const double self_cpu = SelfCpuSeconds() - self0;
  const double other = std::max(0.0, MachineBusySeconds() - machine0 - relays_cpu - self_cpu);
  int64_t all_done = 0;
  bool ok = true;
  for (int64_t d : done_at) {
    ok = ok && d;
    all_done = std::max(all_done, d);
  }
  auto secs = [&](int64_t t) { return t ? offset_s + static_cast<double>(t - t0) / 1e9 : -1.0; };
  if (!ok || !t_identical) g.exit_code = kFail;
  if (g.output == "json") {
    rapidjson::StringBuffer buf;
    JsonOut w(buf);
    w.StartObject();
    Kv(w, "scenario", std::string("converge"));
    Kv(w, "converged", ok);
    Kv(w, "start_offset_s", offset_s);
    Kv(w, "target_vector", VectorText(target));
    Kv(w, "missing_envelopes", total_missing);
    Kv(w, "converged_s", ok ? secs(all_done) : -1.0);
    Kv(w, "identical_s", secs(t_identical));
    Kv(w, "relays_cpu_s", relays_cpu);
    Kv(w, "relays_us_per_missing_envelope", total_missing ? relays_cpu * 1e6 / static_cast<double>(total_missing) : 0);
    Kv(w, "other_processes_cpu_pct", window > 0 ? 100 * other / window : 0);
    w.Key("relays");
    w.StartArray();
    for (size_t i = 0; i < relays.size(); ++i) {
      w.StartObject();
      Kv(w, "name", relays[i].name);
      Kv(w, "missing_envelopes", missing0[i]);
      Kv(w, "covered_s", secs(done_at[i]));
      Kv(w, "cpu_s", cpu1[i].cpu_s - cpu0[i].cpu_s);
      Kv(w, "vector_before", VectorText(first[i]));
      Kv(w, "vector_after", VectorText(last[i]));
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    printf("%s\n", buf.GetString());
    return;
  }
  printf("chatctl bench converge: %zu relays, %llu envelopes missing at the start (%.3fs after --since-ns)\n",
         relays.size(), static_cast<unsigned long long>(total_missing), offset_s);
  for (size_t i = 0; i < relays.size(); ++i) {
    printf("  %-10s lacked %8llu   has everything %7.3fs   CPU %.2fs\n", relays[i].name.c_str(),
           static_cast<unsigned long long>(missing0[i]), secs(done_at[i]), cpu1[i].cpu_s - cpu0[i].cpu_s);
  }
  printf("  %s: %.3fs; identical vectors %.3fs; other processes %.0f%% CPU\n", ok ? "converged" : "NOT CONVERGED",
         secs(all_done), secs(t_identical), window > 0 ? 100 * other / window : 0);
}

}  // namespace

void RegisterFedBench(CLI::App* bench, Globals& g) {
  auto oc = std::make_shared<CatchupOpts>();
  CLI::App* c = bench->add_subcommand("catchup", "federation: a peer catches up with what it missed (envelopes/s)");
  c->option_defaults()->always_capture_default();
  c->add_option("--relay-dir", oc->relay_dir, "the origin relay's data directory (running)")->required();
  c->add_option("--peer-dir", oc->peer_dir, "the data directory of the running relay that catches up");
  c->add_option("--envelopes", oc->envelopes,
                "first fill the origin until its own log has N envelopes (acknowledged messages)");
  c->add_option("--senders", oc->senders, "fill: sending connections, each in its own room")
      ->check(CLI::Range(1, 10000));
  c->add_option("--window", oc->window, "fill: unacknowledged messages per sender")->check(CLI::Range(1, 1000));
  c->add_option("--size", oc->size, "fill: message content bytes")->check(CLI::Range(1, 60000));
  c->add_flag("--fill-only", oc->fill_only, "fill the origin and stop");
  c->add_flag("--no-link", oc->no_link, "do not pin the relays to each other (they are already peers)");
  c->add_option("--timeout", oc->timeout, "most seconds to wait for the peer")->check(CLI::Range(1.0, 86400.0));
  c->add_option("--poll-ms", oc->poll_ms, "admin API poll interval")->check(CLI::Range(1.0, 1000.0));
  c->add_option("--cpus", oc->cpus, "pin this process to these CPUs");
  c->add_flag("--no-progress", oc->no_progress, "no progress line even on a terminal");
  c->callback([oc, &g] { RunCatchup(*oc, g); });

  auto ov = std::make_shared<ConvergeOpts>();
  CLI::App* v = bench->add_subcommand("converge", "federation: time until running relays hold the same envelopes");
  v->option_defaults()->always_capture_default();
  v->add_option("--relay-dir", ov->dirs, "a relay's data directory (repeat for each relay)")->required();
  v->add_option("--since-ns", ov->since_ns, "measure from this CLOCK_REALTIME time in ns (date +%s%N)");
  v->add_option("--timeout", ov->timeout, "most seconds to wait")->check(CLI::Range(1.0, 86400.0));
  v->add_option("--poll-ms", ov->poll_ms, "admin API poll interval")->check(CLI::Range(1.0, 1000.0));
  v->add_flag("--no-progress", ov->no_progress, "no progress line even on a terminal");
  v->callback([ov, &g] { RunConverge(*ov, g); });
}

}  // namespace chatd::cli
