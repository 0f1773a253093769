// The documentation cannot drift from the code: these tests read the sources and the docs
// and fail when they disagree.
//
// - Every REST route registered in relay/api*.cpp (s.Get/Post/Put/Patch/Delete with a
//   path literal) is an operation of docs/openapi.yaml with the same method and path, and
//   every operation there is registered. Regex groups such as ([^/]+) stand for path
//   parameters: they are compared with the {name} segments in order, whatever the name.
// - Every WebSocket client frame type handled in relay/session.cpp (type == "...") has a
//   "### `type`" heading under "## Client frames" in docs/WEBSOCKET.md, and every heading
//   there is handled; every event type the server writes to clients (peer-link code in
//   relay/*federation*, *peer*, *remote* is skipped) and every close reason is
//   mentioned in docs/WEBSOCKET.md.
// - Every metric exported by /metrics is listed in man/chatd.8, and every config key the
//   docs and man pages mention exists in the key table.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "conf/config.h"

namespace chatd {
namespace {

namespace fs = std::filesystem;

const fs::path kRoot = CHATD_SOURCE_DIR;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  INFO("reading " << p.string());
  REQUIRE(in.good());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "/api/v1/chats/([^/]+)/messages" → "/api/v1/chats/{}/messages": each regex group, in
// order, becomes one parameter slot.
std::string NormalizeCodePath(const std::string& raw) {
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\\' && i + 1 < raw.size()) {
      out += raw[++i];
    } else if (raw[i] == '(') {
      int depth = 1;
      size_t j = i + 1;
      for (; j < raw.size() && depth > 0; ++j) {
        if (raw[j] == '\\') ++j;
        else if (raw[j] == '(') ++depth;
        else if (raw[j] == ')') --depth;
      }
      out += "{}";
      i = j - 1;
    } else {
      out += raw[i];
    }
  }
  return out;
}

// "/api/v1/chats/{chat_id}/messages" → "/api/v1/chats/{}/messages".
std::string NormalizeDocPath(const std::string& p) { return std::regex_replace(p, std::regex(R"(\{[^}/]*\})"), "{}"); }

// "METHOD /path" for every route registered in relay/api*.cpp.
std::map<std::string, std::string> CodeRoutes() {
  std::map<std::string, std::string> routes;  // "get /x/{}" → "relay/api.cpp: <raw path>"
  const std::regex route(
      R"re(\b\w+\s*(?:\.|->)\s*(Get|Post|Put|Patch|Delete)\(\s*(?:R"\((/[^"]*?)\)"|"(/[^"]*)"))re");
  int files = 0;
  for (const auto& entry : fs::directory_iterator(kRoot / "relay")) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("api", 0) != 0 || entry.path().extension() != ".cpp") continue;
    ++files;
    const std::string text = ReadFile(entry.path());
    for (std::sregex_iterator it(text.begin(), text.end(), route), end; it != end; ++it) {
      const std::string raw = (*it)[2].matched ? (*it)[2].str() : (*it)[3].str();
      routes[Lower((*it)[1].str()) + " " + NormalizeCodePath(raw)] = "relay/" + name + ": " + raw;
    }
  }
  CHECK(files >= 3);  // api.cpp, api_auth.cpp, api_chats.cpp
  return routes;
}

size_t Indent(const std::string& line) { return line.find_first_not_of(' '); }

// "METHOD /path" for every operation under `paths:` in docs/openapi.yaml. The file is
// block-style YAML: path keys one level under `paths:`, methods one level below them.
std::map<std::string, std::string> DocRoutes() {
  std::istringstream in(ReadFile(kRoot / "docs/openapi.yaml"));
  const std::set<std::string> kMethods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"};
  std::map<std::string, std::string> routes;
  bool in_paths = false;
  size_t path_indent = std::string::npos, method_indent = std::string::npos;
  std::string path;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t ind = Indent(line);
    if (ind == std::string::npos || line[ind] == '#') continue;
    if (ind == 0) {
      in_paths = line.rfind("paths:", 0) == 0;
      continue;
    }
    if (!in_paths) continue;
    const std::string key = line.substr(ind, line.find(':', ind) - ind);
    if (path_indent == std::string::npos) path_indent = ind;
    if (ind == path_indent) {
      path = key;
      if (path.size() >= 2 && (path.front() == '\'' || path.front() == '"')) path = path.substr(1, path.size() - 2);
      method_indent = std::string::npos;
      continue;
    }
    if (ind < path_indent || path.empty()) continue;
    if (method_indent == std::string::npos) method_indent = ind;
    if (ind == method_indent && kMethods.count(key)) routes[key + " " + NormalizeDocPath(path)] = path;
  }
  return routes;
}

// The lines of `md` from the heading line `heading` to the next heading of the same level.
std::string Section(const std::string& md, const std::string& heading) {
  const size_t start = md.find("\n" + heading + "\n");
  INFO("docs/WEBSOCKET.md has no line '" << heading << "'");
  REQUIRE(start != std::string::npos);
  const std::string level = heading.substr(0, heading.find(' ') + 1);  // "## "
  const size_t end = md.find("\n" + level, start + heading.size() + 1);
  return md.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// The text without // comments (good enough for our sources: no "//" inside the string
// literals these tests look at).
std::string StripLineComments(const std::string& text) {
  std::string out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const size_t c = line.find("//");
    out += (c == std::string::npos ? line : line.substr(0, c)) + "\n";
  }
  return out;
}

std::set<std::string> Matches(const std::string& text, const std::regex& re, int group = 1) {
  std::set<std::string> out;
  for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it) out.insert((*it)[group].str());
  return out;
}

TEST_CASE("every REST route in relay/api*.cpp is in docs/openapi.yaml, and only those", "[docs]") {
  const auto code = CodeRoutes();
  const auto docs = DocRoutes();
  REQUIRE(code.size() >= 20);  // the route pattern still finds the routes
  REQUIRE(docs.size() >= 20);  // the YAML walk still finds the operations
  for (const auto& [route, where] : code) {
    INFO(where << " is registered as " << route << " but docs/openapi.yaml has no such operation "
               << "(add it under paths:, regex groups become {param} segments in order)");
    CHECK(docs.count(route) == 1);
  }
  for (const auto& [route, path] : docs) {
    INFO("docs/openapi.yaml documents " << route << " (" << path << ") but relay/api*.cpp registers no such route");
    CHECK(code.count(route) == 1);
  }
}

TEST_CASE("path templates normalise as the docs test expects", "[docs]") {
  CHECK(NormalizeCodePath("/api/v1/chats/([^/]+)/messages/([^/]+)") == "/api/v1/chats/{}/messages/{}");
  CHECK(NormalizeCodePath("/api/v1/users/(\\d+)") == "/api/v1/users/{}");
  CHECK(NormalizeCodePath("/livez") == "/livez");
  CHECK(NormalizeDocPath("/api/v1/chats/{chat_id}/messages/{message_id}") == "/api/v1/chats/{}/messages/{}");
}

TEST_CASE("every WebSocket frame type handled in relay/session.cpp is in docs/WEBSOCKET.md", "[docs]") {
  const std::string code = ReadFile(kRoot / "relay/session.cpp");
  const std::string md = "\n" + ReadFile(kRoot / "docs/WEBSOCKET.md");
  const auto handled = Matches(code, std::regex(R"re(\btype\s*==\s*"([A-Za-z0-9_]+)")re"));
  REQUIRE(handled.count("auth") == 1);  // the pattern still finds the dispatch
  REQUIRE(handled.count("send_message") == 1);
  const std::string client = Section(md, "## Client frames");
  const auto documented = Matches(client, std::regex(R"re(\n### `([A-Za-z0-9_]+)`)re"));
  for (const auto& t : handled) {
    INFO("relay/session.cpp handles client frame '" << t << "' but docs/WEBSOCKET.md has no \"### `" << t
                                                     << "`\" under \"## Client frames\"");
    CHECK(documented.count(t) == 1);
  }
  for (const auto& t : documented) {
    INFO("docs/WEBSOCKET.md documents client frame '" << t << "' that relay/session.cpp does not handle");
    CHECK(handled.count(t) == 1);
  }
}

TEST_CASE("every server event type and close reason is in docs/WEBSOCKET.md", "[docs]") {
  const std::string md = ReadFile(kRoot / "docs/WEBSOCKET.md");
  std::set<std::string> types, reasons;
  for (const auto& entry : fs::directory_iterator(kRoot / "relay")) {
    const auto ext = entry.path().extension();
    if (ext != ".cpp" && ext != ".h") continue;
    // Peer links speak their own frames (hello, vector, ...): not the client protocol.
    const std::string name = entry.path().filename().string();
    if (name.find("federation") != std::string::npos || name.find("peer") != std::string::npos ||
        name.find("remote") != std::string::npos) {
      continue;
    }
    const std::string text = StripLineComments(ReadFile(entry.path()));
    for (const auto& t : Matches(text, std::regex(R"re(Key\("type"\)\s*\.Str\("([A-Za-z0-9_]+)"\))re"))) types.insert(t);
    for (const auto& t : Matches(text, std::regex(R"re(SimpleEvent\("([A-Za-z0-9_]+)")re"))) types.insert(t);
    for (const auto& t : Matches(text, std::regex(R"re(\{"type":"([A-Za-z0-9_]+)")re"))) types.insert(t);
    const std::regex ternary(R"re(Key\("type"\)\s*\.Str\([^;]*?\?\s*"([A-Za-z0-9_]+)"\s*:\s*"([A-Za-z0-9_]+)")re");
    for (const auto& t : Matches(text, ternary, 1)) types.insert(t);
    for (const auto& t : Matches(text, ternary, 2)) types.insert(t);
    for (const auto& r : Matches(text, std::regex(R"re(CloseSession\(\s*\w+\s*,\s*\d+\s*,\s*"([^"]+)"\))re"))) {
      reasons.insert(r);
    }
  }
  REQUIRE(types.count("new_message") == 1);  // the patterns still find the writers
  REQUIRE(types.count("message_read") == 1);
  REQUIRE(reasons.count("server shutting down") == 1);
  for (const auto& t : types) {
    INFO("the server sends events of type '" << t << "' but docs/WEBSOCKET.md never mentions `" << t << "`");
    CHECK(md.find("`" + t + "`") != std::string::npos);
  }
  for (const auto& r : reasons) {
    INFO("the gateway closes sessions with reason \"" << r << "\" but docs/WEBSOCKET.md does not list it");
    CHECK(md.find(r) != std::string::npos);
  }
}

TEST_CASE("every /metrics metric is in man/chatd.8", "[docs]") {
  const std::string code = ReadFile(kRoot / "relay/api.cpp");
  const std::string man = ReadFile(kRoot / "man/chatd.8");
  const auto metrics = Matches(code, std::regex(R"re((?:metric|histogram)\("(chatd_[a-z0-9_]+)")re"));
  REQUIRE(metrics.size() >= 10);
  for (const auto& m : metrics) {
    // roff may escape the underscores' neighbours but not the name itself.
    INFO("relay/api.cpp exports " << m << " but man/chatd.8 does not list it");
    CHECK(man.find(m) != std::string::npos);
  }
}

TEST_CASE("config keys named in the docs and man pages exist", "[docs]") {
  // table.key, where table is a chatd.toml table; file names such as relay.key or api.cpp
  // are not keys.
  const std::regex key(R"re(\b(relay|listen|public|auth|limits|gateway|store|api|log)\.([a-z][a-z0-9_]*)\b)re");
  const std::set<std::string> kNotKeys = {"cpp", "h", "md", "yaml", "json", "toml", "db", "key", "token", "txt"};
  for (const char* doc : {"docs/openapi.yaml", "docs/WEBSOCKET.md", "docs/API.md", "man/chatd.8", "man/chatctl.1"}) {
    std::string text = ReadFile(kRoot / doc);
    text = std::regex_replace(text, std::regex(R"(\\-)"), "-");
    int found = 0;
    for (std::sregex_iterator it(text.begin(), text.end(), key), end; it != end; ++it) {
      if (kNotKeys.count((*it)[2].str())) continue;
      // "relay/api.cpp" and "store/..." paths: the table name right after a slash is a path.
      const auto pos = static_cast<size_t>(it->position(0));
      if (pos > 0 && (text[pos - 1] == '/' || text[pos - 1] == '.')) continue;
      const std::string dotted = (*it)[0].str();
      ++found;
      INFO(doc << " mentions config key " << dotted << ", which conf/keys.cpp does not define");
      CHECK(conf::FindKey(dotted) != nullptr);
    }
    if (std::string(doc) != "man/chatctl.1") CHECK(found > 0);
  }
}

}  // namespace
}  // namespace chatd
