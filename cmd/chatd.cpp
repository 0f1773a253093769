// chatd — the relay daemon. Parses flags, loads the config, builds the Relay, handles
// signals (SIGTERM/SIGINT drain, SIGHUP reload) on the main thread.
#include <signal.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "base/log.h"
#include "conf/config.h"
#include "relay/relay.h"

int main(int argc, char** argv) {
  CLI::App app{"chatd — federated real-time chat relay"};
  std::string config_path;
  app.add_option("-c,--config", config_path, "path of chatd.toml")->required()->envname("CHATD_CONFIG");
  app.set_version_flag("--version", "chatd 0.1.0");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // usage errors exit 2, like config errors
  }

  umask(077);  // the store, its WAL and every file we write are the operator's alone

  // Signals are handled here with sigwait; every other thread starts with them blocked.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto cfg = chatd::conf::LoadConfig(config_path);
  if (!cfg.ok()) {
    fprintf(stderr, "chatd: %s\n", cfg.status().message().c_str());
    return 2;
  }
  auto relay = chatd::Relay::Open(cfg.value());
  if (!relay.ok()) {
    fprintf(stderr, "chatd: %s\n", relay.status().message().c_str());
    return 1;
  }
  chatd::Status s = (*relay)->Start();
  if (!s.ok()) {
    chatd::log::Error("chatd failed to start", {{"error", s.message()}});
    fprintf(stderr, "chatd: %s\n", s.message().c_str());
    (*relay)->Drain();
    return 1;
  }
  printf("chatd %s is running\n  REST API:  %s/api/v1\n  WebSocket: %s\n  stop with Ctrl-C\n",
         cfg->relay_name.c_str(), (*relay)->api_url().c_str(), (*relay)->gateway_url().c_str());
  fflush(stdout);

  for (;;) {
    int sig = 0;
    if (sigwait(&sigs, &sig) != 0) continue;
    if (sig == SIGHUP) {
      auto next = chatd::conf::LoadConfig(config_path);
      if (!next.ok()) {
        chatd::log::Error("config reload failed; keeping the running config", {{"error", next.status().message()}});
        continue;
      }
      chatd::Status rs = (*relay)->Reload(next.value());
      if (!rs.ok()) chatd::log::Error("config reload failed", {{"error", rs.message()}});
      continue;
    }
    chatd::log::Info("signal received; draining", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    break;
  }
  (*relay)->Drain();
  return 0;
}
