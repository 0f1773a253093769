// cli/cli.h — `chatctl` commands, one file per noun (cli/<noun>.cpp). Each Register*
// function adds its subcommands to the app. Commands print data on stdout and diagnostics
// on stderr and return an exit code (see chatctl(1)): 0 ok, 1 failure, 2 usage or config
// error, 3 the relay is unreachable.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace chatd::cli {

enum Exit { kOk = 0, kFail = 1, kUsage = 2, kUnreachable = 3 };

struct Globals {
  std::string config;  // --config or CHATD_CONFIG
  std::string output = "table";
  int exit_code = 0;
};

void RegisterInit(CLI::App& app, Globals& g);
void RegisterStatus(CLI::App& app, Globals& g);
void RegisterKeys(CLI::App& app, Globals& g);
void RegisterConfig(CLI::App& app, Globals& g);
void RegisterPeers(CLI::App& app, Globals& g);       // cli/peers.cpp
void RegisterFederation(CLI::App& app, Globals& g);  // cli/peers.cpp
void RegisterUsers(CLI::App& app, Globals& g);       // cli/users.cpp
void RegisterReports(CLI::App& app, Globals& g);     // cli/reports.cpp
void RegisterStore(CLI::App& app, Globals& g);       // cli/store.cpp
void RegisterBackup(CLI::App& app, Globals& g);      // cli/backup.cpp
void RegisterBench(CLI::App& app, Globals& g);

}  // namespace chatd::cli
