// Tests for conf/: the key table, chatd.toml parsing and its errors, HOST:PORT, and the
// generated example config and man page.
//
// man/chatd.toml.5 is generated: after changing the key table, regenerate it with
//   CHATD_UPDATE_GOLDEN=1 build/bin/unit_tests "[conf]"
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "conf/config.h"
#include "conf/hostport.h"

namespace chatd::conf {
namespace {

const std::map<std::string, std::string> kRequired = {{"relay.name", "\"eu1\""},
                                                      {"relay.node_id", "1"}};
const char* kPath = "/etc/chatd/chatd.toml";

Config MustParse(const std::string& text, const std::string& path = kPath) {
  Result<Config> r = ParseConfigText(text, path);
  INFO(r.status().message());
  REQUIRE(r.ok());
  return r.value();
}

// The error message for `text`, which must fail with kBadRequest.
std::string ErrorOf(const std::string& text) {
  Result<Config> r = ParseConfigText(text, kPath);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kBadRequest);
  return r.status().message();
}

const std::string kMinimal = "[relay]\nname = \"eu1\"\nnode_id = 1\n";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST_CASE("conf: the key table is complete and agrees with Config's defaults", "[conf]") {
  const Config defaults;
  std::set<std::string_view> keys;
  for (const KeySpec& k : KeyTable()) {
    INFO(k.key);
    CHECK(keys.insert(k.key).second);
    CHECK(FindKey(k.key) == &k);
    CHECK(k.key.find('.') != std::string_view::npos);
    CHECK(!k.doc.empty());
    CHECK(std::count(k.doc.begin(), k.doc.end(), '\n') < 3);
    if (k.type == KeyType::kInt || k.type == KeyType::kSeconds) CHECK(k.min <= k.max);
    if (k.required) continue;
    const bool quoted =
        k.type == KeyType::kString || k.type == KeyType::kEnum || k.type == KeyType::kHostPort;
    CHECK(FormatValue(k, defaults) ==
          (quoted ? "\"" + std::string(k.def) + "\"" : std::string(k.def)));
  }
  CHECK(keys.size() == 46);
  CHECK(FindKey("relay.nope") == nullptr);
  CHECK(FindKey("log.level")->reloadable);
  CHECK_FALSE(FindKey("listen.api")->reloadable);
}

TEST_CASE("conf: the example config parses back with overrides applied", "[conf]") {
  SECTION("only the required keys: everything else is the default") {
    Config c = MustParse(ExampleConfig(kRequired));
    Config expected;
    expected.relay_name = "eu1";
    expected.node_id = 1;
    expected.config_path = kPath;
    expected.data_dir = "/etc/chatd";
    CHECK(c == expected);
  }
  SECTION("every key appears, with its doc above it") {
    const std::string example = ExampleConfig(kRequired);
    for (const KeySpec& k : KeyTable()) {
      INFO(k.key);
      const std::string first_doc_line(k.doc.substr(0, k.doc.find('\n')));
      const size_t doc = example.find("# " + first_doc_line + "\n");
      const size_t line = example.find("\n" + std::string(k.name()) + " = ", doc);
      const size_t commented = example.find("\n#" + std::string(k.name()) + " = ", doc);
      REQUIRE(doc != std::string::npos);
      CHECK(std::min(line, commented) != std::string::npos);
    }
  }
  SECTION("overrides of each type") {
    Config c = MustParse(ExampleConfig({{"relay.name", "\"us-west2\""},
                                        {"relay.node_id", "1023"},
                                        {"relay.data_dir", "\"/var/lib/chatd\""},
                                        {"listen.api", "\"[::1]:0\""},
                                        {"listen.gateway", "\"0.0.0.0:443\""},
                                        {"auth.access_token_ttl", "\"2h\""},
                                        {"limits.max_connections", "50000"},
                                        {"log.level", "\"debug\""}}));
    CHECK(c.relay_name == "us-west2");
    CHECK(c.node_id == 1023);
    CHECK(c.data_dir == "/var/lib/chatd");
    CHECK(c.api == HostPort{"::1", 0});
    CHECK(c.gateway == HostPort{"0.0.0.0", 443});
    CHECK(c.access_token_ttl_s == 7200);
    CHECK(c.max_connections == 50000);
    CHECK(c.log_level == "debug");
    CHECK(c.admin == HostPort{"127.0.0.1", 8083});
  }
  SECTION("a config with every key changed round-trips through FormatValue") {
    Config c = MustParse(kMinimal);
    c.relay_name = "x1";
    c.data_dir = "/srv/chat \"q\"";
    c.api = {"::1", 1};
    c.gateway = {"gw.example", 2};
    c.federation = {"10.0.0.1", 3};
    c.admin = {"localhost", 4};
    c.public_gateway_url = "wss://a.example/ws";
    c.public_api_url = "https://a.example";
    int n = 0;
    for (const KeySpec& k : KeyTable()) {  // every int key to a distinct in-range value
      if (const auto* m = std::get_if<int Config::*>(&k.field)) {
        int Config::*member = *m;
        c.*member = static_cast<int>(k.min) + ++n;
      }
    }
    c.max_frame_bytes = 2048;  // above max_content_bytes
    c.log_level = "error";
    std::map<std::string, std::string> all;
    for (const KeySpec& k : KeyTable()) all[std::string(k.key)] = FormatValue(k, c);
    CHECK(MustParse(ExampleConfig(all)) == c);
  }
  SECTION("a required key without an override is a placeholder that fails") {
    const std::string m = ErrorOf(ExampleConfig({{"relay.node_id", "1"}}));
    CHECK_THAT(m, Catch::Contains("key 'relay.name': expected 1..32 chars"));
  }
  SECTION("an override naming no key makes loading fail") {
    std::map<std::string, std::string> o = kRequired;
    o["relay.nmae"] = "\"x\"";
    CHECK_FALSE(ParseConfigText(ExampleConfig(o), kPath).ok());
  }
}

TEST_CASE("conf: errors name the file, the line and the key", "[conf]") {
  SECTION("bad HOST:PORT") {
    const std::string text = kMinimal + "\n[listen]\nadmin = \"127.0.0.1:9000\"\napi = \"8080\"\n";
    CHECK(ErrorOf(text) ==
          "/etc/chatd/chatd.toml:7: key 'listen.api': expected \"HOST:PORT\", got \"8080\"");
  }
  SECTION("wrong type") {
    const std::string m = ErrorOf("[relay]\nname = \"eu1\"\nnode_id = \"1\"\n");
    CHECK_THAT(m, Catch::StartsWith("/etc/chatd/chatd.toml:3: key 'relay.node_id': "));
    CHECK_THAT(m, Catch::EndsWith("got string \"1\""));
    CHECK_THAT(ErrorOf(kMinimal + "[listen]\napi = 8080\n"),
               Catch::Contains(":5: key 'listen.api': expected \"HOST:PORT\", got integer 8080"));
    CHECK_THAT(
        ErrorOf(kMinimal + "[api]\nthreads = 1.5\n"),
        Catch::Contains(":5: key 'api.threads': expected an integer in 1..1024, got float 1.5"));
  }
  SECTION("out of range") {
    CHECK_THAT(
        ErrorOf(kMinimal + "[auth]\nargon2_ops = 1\n"),
        Catch::Contains(":5: key 'auth.argon2_ops': expected an integer in 2..10, got integer 1"));
    CHECK_THAT(ErrorOf("[relay]\nname = \"eu1\"\nnode_id = 1024\n"),
               Catch::Contains(":3: key 'relay.node_id'"));
    CHECK_THAT(ErrorOf(kMinimal + "[gateway]\nidle_timeout = \"5s\"\n"),
               Catch::Contains(":5: key 'gateway.idle_timeout': expected seconds in 10..86400"));
    CHECK_THAT(ErrorOf(kMinimal + "[auth]\nargon2_mem_kib = 99999999999999999999\n"),
               Catch::Contains(":5: key 'auth.argon2_mem_kib'"));
  }
  SECTION("bad strings and enums") {
    CHECK_THAT(ErrorOf("[relay]\nname = \"EU_1\"\nnode_id = 1\n"),
               Catch::Contains(":2: key 'relay.name': expected 1..32 chars of [a-z0-9-], starting "
                               "with a letter, got string \"EU_1\""));
    CHECK_THAT(ErrorOf(kMinimal + "[log]\nlevel = \"verbose\"\n"),
               Catch::Contains(":5: key 'log.level': expected one of debug|info|warn|error, got "
                               "string \"verbose\""));
    CHECK_THAT(ErrorOf(kMinimal + "[public]\napi_url = \"ftp://x\"\n"),
               Catch::Contains(":5: key 'public.api_url'"));
  }
  SECTION("unknown keys and tables") {
    CHECK(ErrorOf(kMinimal + "nmae = \"x\"\n") ==
          "/etc/chatd/chatd.toml:4: unknown key 'relay.nmae' (did you mean 'relay.name'?)");
    CHECK(ErrorOf(kMinimal + "\n[relya]\nx = 1\n") ==
          "/etc/chatd/chatd.toml:5: unknown table [relya] (did you mean 'relay'?)");
    CHECK_THAT(ErrorOf("level = \"info\"\n" + kMinimal),
               Catch::Contains(":1: unknown key 'level' outside any table (did you mean "
                               "'log.level' in [log]?)"));
    CHECK_THAT(
        ErrorOf(kMinimal + "[log]\nlevel.x = 1\n"),
        Catch::Contains(":5: key 'log.level': expected one of debug|info|warn|error, got a table"));
    CHECK_THAT(ErrorOf("log = 1\n" + kMinimal), Catch::Contains(":1: 'log' must be a table"));
  }
  SECTION("missing required keys") {
    CHECK(ErrorOf("# chatd\n[relay]\nname = \"eu1\"\n") ==
          "/etc/chatd/chatd.toml:2: key 'relay.node_id' is required but missing from [relay]");
    const std::string m = ErrorOf("[log]\nlevel = \"warn\"\n");
    CHECK_THAT(m, Catch::Contains("/etc/chatd/chatd.toml: key 'relay.name' is required"));
    CHECK_THAT(m, Catch::Contains("/etc/chatd/chatd.toml: key 'relay.node_id' is required"));
  }
  SECTION("TOML syntax errors, converted to one short line") {
    const std::string m = ErrorOf(kMinimal + "[auth]\nargon2_ops = 3 4\n");
    CHECK_THAT(m, Catch::StartsWith("/etc/chatd/chatd.toml:5: TOML syntax error: "));
    CHECK(m.find('\n') == std::string::npos);
    CHECK(m.size() < 200);
    CHECK_THAT(ErrorOf(kMinimal + "name = \"eu2\"\n"),
               Catch::StartsWith("/etc/chatd/chatd.toml:4: TOML syntax error: "));  // duplicate
    CHECK_THAT(ErrorOf("[relay]\nname = \"eu1\nnode_id = 1\n"),
               Catch::StartsWith("/etc/chatd/chatd.toml:2: TOML syntax error: "));
    CHECK_THAT(ErrorOf(kMinimal + "[listen\n"),
               Catch::StartsWith("/etc/chatd/chatd.toml:4: TOML syntax error: "));
  }
  SECTION("rules across keys") {
    CHECK_THAT(ErrorOf(kMinimal + "[gateway]\nidle_timeout = 30\n"),
               Catch::Contains(":5: key 'gateway.idle_timeout': gateway.idle_timeout (30) must "
                               "exceed gateway.ping_interval (30)"));
    CHECK_THAT(ErrorOf(kMinimal + "[limits]\nmax_content_bytes = 65536\n"),
               Catch::Contains(":5: key 'limits.max_content_bytes'"));
    CHECK_THAT(ErrorOf(kMinimal + "[listen]\nadmin = \"127.0.0.1:8080\"\n"),
               Catch::Contains(":5: key 'listen.admin': 127.0.0.1:8080 is used by both listen.api "
                               "and listen.admin"));
    MustParse(kMinimal + "[listen]\napi = \"127.0.0.1:0\"\ngateway = \"127.0.0.1:0\"\n");
  }
  SECTION("several errors are all reported, in line order") {
    const std::string m =
        ErrorOf("[relay]\nname = \"eu1\"\nnode_id = -1\n[auth]\nargon2_ops = 1\n");
    CHECK_THAT(m, Catch::Contains("chatd.toml:3: key 'relay.node_id'"));
    CHECK(m.find(":3:") < m.find(":5:"));
  }
  SECTION("input that would make the TOML parser recurse deeply is refused") {
    CHECK_THAT(ErrorOf("x = " + std::string(100000, '[')),
               Catch::Contains(":1: arrays or tables nested"));
    std::string dotted = "a";
    for (int i = 0; i < 10000; ++i) dotted += ".a";
    CHECK_THAT(ErrorOf(dotted + " = 1\n"), Catch::Contains("dotted key too long"));
    // Invalid UTF-8 (toml11 3.7.1 reads out of bounds on it in a multi-line string).
    CHECK_THAT(ErrorOf(kMinimal + "[public]\napi_url = '''\n\xff'''\n"),
               Catch::Contains(":6: invalid UTF-8"));
    CHECK_THAT(ErrorOf("# \xed\xa0\x80 is a surrogate\n"), Catch::Contains(":1: invalid UTF-8"));
    MustParse(kMinimal + "# caf\xc3\xa9 \xf0\x9f\x92\xac\n");
    // Brackets in strings and comments do not count.
    MustParse(kMinimal +
              "# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n"
              "[public]\napi_url = \"https://x/[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"\n");
  }
}

TEST_CASE("conf: durations take units", "[conf]") {
  Config c = MustParse(kMinimal +
                       "[auth]\naccess_token_ttl = \"15m\"\nrefresh_token_ttl = \"30d\"\n"
                       "[gateway]\nping_interval = \"45s\"\nidle_timeout = \"1h\"\n");
  CHECK(c.access_token_ttl_s == 900);
  CHECK(c.refresh_token_ttl_s == 2592000);
  CHECK(c.ping_interval_s == 45);
  CHECK(c.idle_timeout_s == 3600);
  CHECK_THAT(ErrorOf(kMinimal + "[auth]\naccess_token_ttl = \"1 h\"\n"),
             Catch::Contains(":5: key 'auth.access_token_ttl'"));
}

TEST_CASE("conf: paths resolve against the config file's directory", "[conf]") {
  CHECK(MustParse(kMinimal, "/etc/chatd/chatd.toml").data_dir == "/etc/chatd");
  CHECK(MustParse(kMinimal + "data_dir = \"data\"\n", "/etc/chatd/chatd.toml").data_dir ==
        "/etc/chatd/data");
  CHECK(MustParse(kMinimal + "data_dir = \"../lib/chatd/\"\n", "/etc/chatd/chatd.toml").data_dir ==
        "/etc/lib/chatd");
  CHECK(MustParse(kMinimal + "data_dir = \"/var/lib/chatd\"\n", "/etc/chatd/chatd.toml").data_dir ==
        "/var/lib/chatd");
  const std::string cwd = std::filesystem::current_path().string();
  Config rel = MustParse(kMinimal + "data_dir = \"d\"\n", "conf/chatd.toml");
  CHECK(rel.config_path == cwd + "/conf/chatd.toml");
  CHECK(rel.data_dir == cwd + "/conf/d");
  CHECK_THAT(ErrorOf(kMinimal + "data_dir = \"\"\n"), Catch::Contains(":4: key 'relay.data_dir'"));
}

TEST_CASE("conf: LoadConfig reads the file", "[conf]") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("chatd_conf_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "chatd.toml").string();
  std::ofstream(path) << ExampleConfig(kRequired);
  Result<Config> c = LoadConfig(path);
  REQUIRE(c.ok());
  CHECK(c->config_path == path);
  CHECK(c->data_dir == dir.string());
  Result<Config> missing = LoadConfig((dir / "nope.toml").string());
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == Code::kIo);
  CHECK_THAT(missing.status().message(), Catch::Contains("nope.toml"));
  CHECK(LoadConfig(dir.string()).status().code() == Code::kIo);  // a directory
  std::filesystem::remove_all(dir);
}

TEST_CASE("conf: RestartRequired lists changed keys that are not reloadable", "[conf]") {
  Config a = MustParse(kMinimal);
  Config b = a;
  b.log_level = "debug";  // the one reloadable key today
  CHECK(RestartRequired(a, b).empty());
  b.api.port = 9000;
  b.node_id = 2;
  b.argon2_ops = 3;
  CHECK(RestartRequired(a, b) ==
        std::vector<std::string_view>{"relay.node_id", "listen.api", "auth.argon2_ops"});
}

TEST_CASE("conf: HOST:PORT parsing", "[conf]") {
  struct Good {
    const char* text;
    const char* host;
    uint16_t port;
  };
  for (const Good& g :
       {Good{"127.0.0.1:8080", "127.0.0.1", 8080}, Good{"[::1]:8080", "::1", 8080},
        Good{"localhost:0", "localhost", 0}, Good{"0.0.0.0:65535", "0.0.0.0", 65535},
        Good{"[::]:443", "::", 443}, Good{"relay-1.example.org:1", "relay-1.example.org", 1}}) {
    INFO(g.text);
    Result<HostPort> r = ParseHostPort(g.text);
    REQUIRE(r.ok());
    CHECK(r->host == g.host);
    CHECK(r->port == g.port);
    CHECK(r->ToString() == g.text);
  }
  for (const char* bad : {"8080",
                          "",
                          ":8080",
                          "localhost",
                          "localhost:",
                          "localhost:65536",
                          "localhost:-1",
                          "localhost:+80",
                          "localhost:80x",
                          "::1:8080",
                          "[::1]",
                          "[::1]8080",
                          "[::1:8080",
                          "[not-ip]:80",
                          "256.0.0.1:80",
                          "1.2.3:80",
                          "bad_host:80",
                          "-x:80",
                          "a..b:80",
                          "host :80",
                          "localhost:123456"}) {
    INFO(bad);
    Result<HostPort> r = ParseHostPort(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kBadRequest);
    CHECK_THAT(r.status().message(), Catch::StartsWith("expected \"HOST:PORT\", got \""));
  }
  CHECK(ParseHostPort("8080").status().message() == "expected \"HOST:PORT\", got \"8080\"");
}

TEST_CASE("conf: man/chatd.toml.5 is generated from the key table", "[conf]") {
  const std::string path = std::string(CHATD_SOURCE_DIR) + "/man/chatd.toml.5";
  const std::string page = ManPageToml5();
  if (std::getenv("CHATD_UPDATE_GOLDEN") != nullptr) std::ofstream(path, std::ios::binary) << page;
  const std::string committed = ReadFile(path);
  size_t diff = 0;  // first differing byte, to keep the failure message short
  while (diff < committed.size() && diff < page.size() && committed[diff] == page[diff]) ++diff;
  INFO("man/chatd.toml.5 differs from ManPageToml5() at byte "
       << diff
       << ": regenerate it with "
          "CHATD_UPDATE_GOLDEN=1 unit_tests \"[conf]\"");
  const bool same = committed == page;
  CHECK(same);
  for (const KeySpec& k : KeyTable()) {
    std::string roff_key;
    for (char c : k.key) roff_key += c == '-' ? std::string("\\-") : std::string(1, c);
    CHECK_THAT(page, Catch::Contains(".TP\n.B " + roff_key + "\n"));
  }
  // The EXAMPLE section is a valid config.
  const size_t ex = page.find(".SH EXAMPLE");
  const size_t begin = page.find(".EX\n", ex) + 4;
  std::string example = page.substr(begin, page.find(".EE\n", begin) - begin);
  for (const auto& [from, to] :
       {std::pair{"\\-", "-"}, std::pair{"\\e", "\\"}, std::pair{"\\&", ""}}) {
    for (size_t p; (p = example.find(from)) != std::string::npos;) example.replace(p, 2, to);
  }
  Config c = MustParse(example);
  CHECK(c.relay_name == "eu1");
}

TEST_CASE("conf: a peer's api_url is optional, checked, and round-trips through PeerToml", "[conf]") {
  const std::string key = "ed25519:" + std::string(43, 'A');
  Peer p{"us1", "ws://10.0.0.2:8082", "http://10.0.0.2:8080", key};
  CHECK(ValidatePeer(p).ok());
  Config c = MustParse(ExampleConfig(kRequired) + PeerToml(p));
  REQUIRE(c.peers.size() == 1);
  CHECK(c.peers[0] == p);
  p.api_url = "";
  CHECK(ValidatePeer(p).ok());
  CHECK(PeerToml(p).find("api_url") == std::string::npos);
  for (const char* bad : {"https://10.0.0.2:8080", "http://10.0.0.2", "10.0.0.2:8080", "http://:0"}) {
    p.api_url = bad;
    INFO(bad);
    CHECK(ValidatePeer(p).message().find("peers.api_url") != std::string::npos);
  }
  CHECK(ErrorOf(ExampleConfig(kRequired) + "\n[[peers]]\nname = \"us1\"\nkey = \"" + key + "\"\nweb = \"x\"\n")
            .find("a peer has name, url, api_url and key") != std::string::npos);
}

}  // namespace
}  // namespace chatd::conf
