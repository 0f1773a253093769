#include "tests/support/fixtures.h"

#include <cstring>

#include <sodium.h>

#include "tests/support/http.h"
#include "tests/support/sha1.h"

namespace chatd::test {

std::string DefaultPassword(const std::string& username) { return "pw-" + username + "-Correct.Horse.7"; }

Result<TestUser> RegisterUser(const HostPort& api, const std::string& username,
                              const std::string& password) {
  TestUser u;
  u.username = username;
  u.password = password.empty() ? DefaultPassword(username) : password;
  u.email = username + "@example.test";
  std::string body = JsonBuilder()
                         .Add("username", username)
                         .Add("email", u.email)
                         .Add("password", u.password)
                         .Add("first_name", "Test")
                         .Add("last_name", username)
                         .str();
  HttpResponse r = ApiPost(api, "/auth/register", body);
  if (r.status != 201 || !r.success()) {
    return Internal("register " + username + ": " + r.Describe());
  }
  const auto& d = r.data();
  u.user_id = StrOf(Get(d, "user_id"));
  u.handle = StrOf(Get(d, "handle"));
  u.access_token = StrOf(Get(d, "access_token"));
  u.refresh_token = StrOf(Get(d, "refresh_token"));
  u.response = r.json;
  if (u.user_id.empty() || u.access_token.empty()) {
    return Internal("register " + username + " answer lacks user_id/access_token: " + r.body);
  }
  return u;
}

Result<WsSession> ConnectWs(const HostPort& gateway, int timeout_ms, const std::string& bind_ip) {
  WsClient c;
  if (Status s = c.Connect(gateway.host, gateway.port, "/ws", timeout_ms, bind_ip); !s.ok()) {
    return Status(s.code(), s.message() + " [" + c.handshake_response().substr(0, 300) + "]");
  }
  return WsSession(std::move(c));
}

Result<WsSession> Auth(const HostPort& gateway, const std::string& token, int timeout_ms) {
  auto conn = ConnectWs(gateway, timeout_ms);
  if (!conn.ok()) return conn.status();
  WsSession s = std::move(conn).value();
  if (Status st = s.Send(JsonBuilder().Add("type", "auth").Add("token", token).str()); !st.ok()) {
    return st;
  }
  auto ev = s.WaitForAny({"auth_ok", "error"}, timeout_ms);
  if (!ev.ok()) return Status(ev.status().code(), "auth: " + ev.status().message());
  if (ev->type() != "auth_ok") return Unauthorized("auth answered " + ev->text());
  s.auth_ok = ev.value();
  s.user_id = ev->Str("user_id");
  const auto& cursor = (*ev)["cursor"];
  if (!cursor.IsNull()) s.set_last_cursor(Dump(cursor));
  return s;
}

Result<std::string> CreateChat(const HostPort& api, const std::string& token,
                               const std::string& chat_type,
                               const std::vector<std::string>& participants,
                               const std::string& chat_name) {
  JsonBuilder b;
  b.Add("chat_type", chat_type);
  if (!chat_name.empty()) b.Add("chat_name", chat_name);
  b.Raw("participants", JsonStringArray(participants));
  HttpResponse r = ApiPost(api, "/chats", b.str(), token);
  if ((r.status != 201 && r.status != 200) || !r.success()) {
    return Internal("create " + chat_type + " chat: " + r.Describe());
  }
  std::string id = StrOf(Get(r.data(), "chat_id"));
  if (id.empty()) return Internal("create chat answer lacks chat_id: " + r.body);
  return id;
}

Result<Json> PostText(const HostPort& api, const std::string& token, const std::string& chat_id,
                      const std::string& content, const std::string& client_msg_id) {
  JsonBuilder b;
  b.Add("message_type", "text").Add("content", content);
  if (!client_msg_id.empty()) b.Add("client_msg_id", client_msg_id);
  HttpResponse r = ApiPost(api, "/chats/" + chat_id + "/messages", b.str(), token);
  if ((r.status != 201 && r.status != 200) || !r.success()) {
    return Internal("post message: " + r.Describe());
  }
  return Json::FromValue(r.data());
}

Result<std::vector<Json>> History(const HostPort& api, const std::string& token,
                                  const std::string& chat_id, int page) {
  std::vector<Json> out;
  std::string before;
  for (int round = 0; round < 100000; ++round) {
    std::string path = "/chats/" + chat_id + "/messages?limit=" + std::to_string(page);
    if (!before.empty()) path += "&before_id=" + before;
    HttpResponse r = ApiGet(api, path, token);
    if (r.status != 200 || !r.success()) return Internal("history " + path + ": " + r.Describe());
    const auto& msgs = Get(r.data(), "messages");
    if (!msgs.IsArray()) return Internal("history without a messages array: " + r.body.substr(0, 300));
    for (const auto& m : msgs.GetArray()) out.push_back(Json::FromValue(m));
    const auto& more = Get(r.data(), "has_more");
    if (!more.IsBool()) return Internal("history without has_more: " + r.body.substr(0, 300));
    if (!more.GetBool()) return out;
    std::string next = StrOf(Get(r.data(), "next_before_id"));
    if (next.empty() || next == before) {
      return Internal("history: has_more but next_before_id is '" + next + "'");
    }
    before = next;
  }
  return Internal("history: paging did not end");
}

Result<std::vector<std::string>> SearchIds(const HostPort& api, const std::string& token, const std::string& q,
                                           const std::string& extra) {
  HttpResponse r = ApiGet(api, "/search?q=" + UrlEncode(q) + extra, token);
  if (r.status != 200 || !r.success()) return Internal("search " + q + ": " + r.Describe());
  const auto& results = Get(r.data(), "results");
  if (!results.IsArray()) return Internal("search without a results array: " + r.body.substr(0, 300));
  std::vector<std::string> ids;
  for (const auto& h : results.GetArray()) ids.push_back(StrOf(Get(h, "message_id")));
  return ids;
}

namespace {
void Le64(std::string* out, uint64_t n) {
  for (int i = 0; i < 8; ++i) {
    if (i == 7) n &= 0x7f;  // PAE clears the top bit
    out->push_back(static_cast<char>(n & 0xff));
    n >>= 8;
  }
}
std::string Pae(const std::vector<std::string>& pieces) {
  std::string out;
  Le64(&out, pieces.size());
  for (const auto& p : pieces) {
    Le64(&out, p.size());
    out += p;
  }
  return out;
}
}  // namespace

std::string ForgePaseto(const std::string& claims_json, const std::string& footer,
                        const std::string& secret_key64) {
  static const bool inited = [] { return sodium_init() >= 0; }();
  (void)inited;
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
  if (secret_key64.size() == crypto_sign_SECRETKEYBYTES) {
    std::memcpy(sk, secret_key64.data(), sizeof sk);
  } else {
    crypto_sign_keypair(pk, sk);
  }
  const std::string header = "v4.public.";
  std::string m2 = Pae({header, claims_json, footer, ""});
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(m2.data()), m2.size(), sk);
  sodium_memzero(sk, sizeof sk);
  std::string body = claims_json + std::string(reinterpret_cast<char*>(sig), sizeof sig);
  std::string token = header + Base64UrlNoPad(body);
  if (!footer.empty()) token += "." + Base64UrlNoPad(footer);
  return token;
}

Result<PasetoParts> SplitPaseto(const std::string& token) {
  const std::string header = "v4.public.";
  if (token.rfind(header, 0) != 0) return BadRequest("not a v4.public token");
  std::string rest = token.substr(header.size());
  std::string footer_b64;
  size_t dot = rest.find('.');
  if (dot != std::string::npos) {
    footer_b64 = rest.substr(dot + 1);
    rest = rest.substr(0, dot);
  }
  auto body = Base64UrlDecode(rest);
  if (!body || body->size() < crypto_sign_BYTES) return BadRequest("token body not base64url");
  PasetoParts p;
  p.payload = body->substr(0, body->size() - crypto_sign_BYTES);
  if (!footer_b64.empty()) {
    auto f = Base64UrlDecode(footer_b64);
    if (!f) return BadRequest("token footer not base64url");
    p.footer = *f;
  }
  return p;
}

Result<std::string> SignWithKeyFile(const std::string& key_file, const std::string& claims_json,
                                    const std::string& footer) {
  std::string text = ReadFile(key_file);
  const std::string prefix = "chatd-ed25519-seed-v1 ";
  if (text.rfind(prefix, 0) != 0) return BadRequest("unknown key file format in " + key_file);
  std::string b64 = text.substr(prefix.size());
  while (!b64.empty() && (b64.back() == '\n' || b64.back() == '\r')) b64.pop_back();
  auto seed = Base64UrlDecode(b64);
  if (!seed || seed->size() != crypto_sign_SEEDBYTES) return BadRequest("bad seed in " + key_file);
  static const bool inited = [] { return sodium_init() >= 0; }();
  (void)inited;
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_seed_keypair(pk, sk, reinterpret_cast<const unsigned char*>(seed->data()));
  std::string token = ForgePaseto(claims_json, footer, std::string(reinterpret_cast<char*>(sk), sizeof sk));
  sodium_memzero(sk, sizeof sk);
  return token;
}

}  // namespace chatd::test
