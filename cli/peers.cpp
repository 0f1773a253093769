// chatctl peers add|list|remove — pin federation peers' keys (the [[peers]] tables of
// chatd.toml). The file is edited either way; a running relay is then told to reload
// through the admin API, so no restart is needed. chatctl federation status,
// lift-quarantine and release-recovery talk to the running relay's admin API.
#include <cstdio>

#include "base/json.h"
#include "cli/common.h"
#include "crypto/envelope.h"
#include "crypto/keys.h"
#include "relay/relay.h"

namespace chatd::cli {

namespace {

// Writes the new config text if it parses, then asks a running relay to reload it.
void Commit(Globals& g, const conf::Config& cfg, const std::string& text, const char* what) {
  auto parsed = conf::ParseConfigText(text, cfg.config_path);
  if (!parsed.ok()) {
    PrintError(parsed.status());
    g.exit_code = kUsage;
    return;
  }
  if (Status s = WriteFileAtomic(cfg.config_path, text, 0600); !s.ok()) {
    PrintError(s);
    g.exit_code = kFail;
    return;
  }
  if (!RelayRunning(cfg)) {
    printf("%s (in %s; the relay is not running)\n", what, cfg.config_path.c_str());
    return;
  }
  auto r = AdminPost(cfg, "/admin/v1/reload");
  if (!r.ok()) {
    PrintError(Status(r.status().code(), "saved, but the running relay did not reload: " + r.status().message()));
    g.exit_code = r.status().code() == Code::kUnavailable ? kUnreachable : kFail;
    return;
  }
  printf("%s (the running relay reloaded its peers)\n", what);
}

// Removes the [[peers]] table whose name is `name`; false if there is none.
bool RemovePeerBlock(const std::string& text, const std::string& name, std::string* out) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) {
      if (start < text.size()) lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  auto trim = [](std::string s) {
    size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t\r");
    return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
  };
  bool found = false;
  std::vector<std::string> kept;
  for (size_t i = 0; i < lines.size();) {
    if (trim(lines[i]) == "[[peers]]") {
      size_t j = i + 1;
      bool match = false;
      while (j < lines.size() && (trim(lines[j]).empty() || trim(lines[j])[0] != '[')) {
        std::string t = trim(lines[j]);
        if (t.rfind("name", 0) == 0 && t.find("\"" + name + "\"") != std::string::npos) match = true;
        ++j;
      }
      if (match) {
        found = true;
        while (!kept.empty() && trim(kept.back()).empty()) kept.pop_back();
        i = j;
        continue;
      }
    }
    kept.push_back(lines[i]);
    ++i;
  }
  out->clear();
  for (const auto& l : kept) *out += l + "\n";
  return found;
}

}  // namespace

void RegisterPeers(CLI::App& app, Globals& g) {
  CLI::App* peers = app.add_subcommand("peers", "federation peers (pinned keys)");
  peers->require_subcommand(1);

  auto add_opts = std::make_shared<conf::Peer>();
  CLI::App* add = peers->add_subcommand("add", "pin a peer: its name, federation URL and public key");
  add->add_option("name", add_opts->name, "the peer relay's name")->required();
  add->add_option("--url", add_opts->url, "ws://HOST:PORT of its federation listener (omit: key only)");
  add->add_option("--api-url", add_opts->api_url, "http://HOST:PORT of its REST API (file blobs are fetched there)");
  add->add_option("--key", add_opts->key, "its public key, as `chatctl keys show` prints it")->required();
  add->callback([add_opts, &g] {
    auto cfg = LoadRelayConfig(g);
    if (!cfg.ok()) return;
    if (Status s = conf::ValidatePeer(*add_opts); !s.ok()) {
      PrintError(s);
      g.exit_code = kUsage;
      return;
    }
    if (add_opts->name == cfg->relay_name) {
      PrintError(BadRequest("a relay cannot peer with itself"));
      g.exit_code = kUsage;
      return;
    }
    auto own = crypto::KeyPair::LoadFile(cfg->data_dir + "/" + Relay::kKeyFile);
    if (own.ok() && own->public_key().ToString() == add_opts->key) {
      PrintError(BadRequest("that is this relay's own key; a peer has its own (chatctl keys show on the peer)"));
      g.exit_code = kUsage;
      return;
    }
    for (const auto& p : cfg->peers) {
      if (p.name == add_opts->name) {
        PrintError(Conflict("peer '" + p.name + "' is already pinned; remove it first to change it"));
        g.exit_code = kFail;
        return;
      }
    }
    auto text = ReadSmallFile(cfg->config_path, 1 << 20);
    if (!text.ok()) {
      PrintError(text.status());
      g.exit_code = kFail;
      return;
    }
    Commit(g, *cfg, *text + conf::PeerToml(*add_opts), ("pinned peer " + add_opts->name).c_str());
  });

  CLI::App* list = peers->add_subcommand("list", "list pinned peers");
  list->callback([&g] {
    auto cfg = LoadRelayConfig(g);
    if (!cfg.ok()) return;
    if (g.output == "json") {
      json::JsonWriter w;
      w.BeginArray();
      for (const auto& p : cfg->peers) {
        w.BeginObject().Key("name").Str(p.name).Key("url").StrOrNull(p.url).Key("api_url").StrOrNull(p.api_url);
        w.Key("key").Str(p.key).EndObject();
      }
      w.EndArray();
      printf("%s\n", std::string(w.View()).c_str());
      return;
    }
    printf("%-16s %-28s %s\n", "NAME", "URL", "KEY");
    for (const auto& p : cfg->peers) {
      printf("%-16s %-28s %s\n", p.name.c_str(), p.url.empty() ? "-" : p.url.c_str(), p.key.c_str());
    }
  });

  auto rm_name = std::make_shared<std::string>();
  CLI::App* rm = peers->add_subcommand("remove", "unpin a peer");
  rm->add_option("name", *rm_name, "the peer relay's name")->required();
  rm->callback([rm_name, &g] {
    auto cfg = LoadRelayConfig(g);
    if (!cfg.ok()) return;
    auto text = ReadSmallFile(cfg->config_path, 1 << 20);
    if (!text.ok()) {
      PrintError(text.status());
      g.exit_code = kFail;
      return;
    }
    std::string next;
    if (!RemovePeerBlock(*text, *rm_name, &next)) {
      PrintError(NotFound("no pinned peer named '" + *rm_name + "'"));
      g.exit_code = kFail;
      return;
    }
    Commit(g, *cfg, next, ("removed peer " + *rm_name).c_str());
  });
}

void RegisterFederation(CLI::App& app, Globals& g) {
  CLI::App* fed = app.add_subcommand("federation", "federation links");
  fed->require_subcommand(1);

  auto origin = std::make_shared<std::string>();
  CLI::App* lift =
      fed->add_subcommand("lift-quarantine", "accept a quarantined (equivocating) origin's envelopes again");
  lift->add_option("origin", *origin, "the quarantined relay's name")->required();
  lift->callback([origin, &g] {
    auto cfg = LoadRelayConfig(g);
    if (!cfg.ok()) return;
    if (!crypto::IsValidRelayName(*origin)) {
      PrintError(BadRequest("ORIGIN is a relay name: 1 to 32 of a-z, 0-9 and '-'"));
      g.exit_code = kUsage;
      return;
    }
    auto data = AdminDelete(*cfg, "/admin/v1/federation/quarantine/" + *origin);
    if (!data.ok()) return FailAdmin(g, data.status());
    if (g.output == "json") {
      printf("%s\n", data->c_str());
      return;
    }
    printf("lifted the quarantine of %s\n", origin->c_str());
  });
  CLI::App* release = fed->add_subcommand(
      "release-recovery", "end a restored relay's wait for its peers' vectors (it originates again if caught up)");
  release->callback([&g] {
    auto cfg = LoadRelayConfig(g);
    if (!cfg.ok()) return;
    auto data = AdminPost(*cfg, "/admin/v1/federation/recovery/release");
    if (!data.ok()) return FailAdmin(g, data.status());
    if (g.output == "json") {
      printf("%s\n", data->c_str());
      return;
    }
    json::Doc doc;
    if (!json::Parse(*data, &doc).ok() || !doc.IsObject()) {
      printf("%s\n", data->c_str());
      return;
    }
    const bool released = doc.HasMember("released") && doc["released"].IsTrue();
    auto rec = doc.FindMember("recovery");
    if (rec == doc.MemberEnd() || rec->value.IsNull()) {
      printf("%s; the relay originates envelopes\n", released ? "released" : "nothing to release");
      return;
    }
    const auto& r = rec->value;
    printf("%s; still recovering: %s\n", released ? "released the restored wait" : "nothing to release",
           r.HasMember("reason") && r["reason"].IsString() ? r["reason"].GetString() : "?");
  });
  CLI::App* status = fed->add_subcommand("status", "per peer: connected, since, vectors, lag, last error");
  status->callback([&g] {
    auto cfg = LoadRelayConfig(g);
    if (!cfg.ok()) return;
    json::Doc doc;
    if (!AdminAnswer(g, AdminGet(*cfg, "/admin/v1/federation"), &doc)) return;
    auto str = [](const json::Value& v) {
      if (v.IsString()) return std::string(v.GetString());
      rapidjson::StringBuffer b;
      rapidjson::Writer<rapidjson::StringBuffer> w(b);
      v.Accept(w);
      return std::string(b.GetString());
    };
    printf("relay %s  vector %s\n", str(doc["relay"]).c_str(), str(doc["vector"]).c_str());
    printf("%-12s %-9s %-25s %-8s %-8s %s\n", "PEER", "STATE", "SINCE", "LAG", "LAG_S", "LAST_ERROR");
    for (const auto& p : doc["peers"].GetArray()) {
      const char* state = p["connected"].GetBool() ? "up" : (p["down"].GetBool() ? "down" : "connecting");
      printf("%-12s %-9s %-25s %-8s %-8s %s\n", str(p["name"]).c_str(), state, str(p["since"]).c_str(),
             str(p["lag_envelopes"]).c_str(), str(p["lag_seconds"]).c_str(), str(p["last_error"]).c_str());
    }
  });
}

}  // namespace chatd::cli
