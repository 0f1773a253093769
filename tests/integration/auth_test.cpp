// Accounts: register, login (username, handle, `pass` alias), refresh, logout, conflicts,
// bad passwords and the per-account login rate limit (PROTOCOL.md "REST").
#include "tests/integration/harness.h"

namespace chatd::test {
namespace {

HttpResponse Login(const HostPort& api, const std::string& username, const std::string& password,
                   const char* password_field = "password") {
  return ApiPost(api, "/auth/login",
                 JsonBuilder().Add("username", username).Add(password_field, password).str());
}

HttpResponse Refresh(const HostPort& api, const std::string& refresh_token) {
  return ApiPost(api, "/auth/refresh", JsonBuilder().Add("refresh_token", refresh_token).str());
}

// The fields register and login share (PROTOCOL.md).
void CheckAccountShape(const HttpResponse& r, const TestUser& u, const std::string& relay) {
  INFO(r.Describe());
  REQUIRE(r.json_ok);
  CHECK(r.success());
  const auto& d = r.data();
  REQUIRE(d.IsObject());
  CHECK(IsDecimalId(Get(d, "user_id")));
  if (!u.user_id.empty()) CHECK(StrOf(Get(d, "user_id")) == u.user_id);
  CHECK(StrOf(Get(d, "username")) == u.username);
  CHECK(StrOf(Get(d, "handle")) == u.username + "@" + relay);
  CHECK(StrOf(Get(d, "email")) == u.email);
  CHECK_FALSE(StrOf(Get(d, "access_token")).empty());
  CHECK_FALSE(StrOf(Get(d, "refresh_token")).empty());
  CHECK(StrOf(Get(d, "access_token")) != StrOf(Get(d, "refresh_token")));
  REQUIRE(Get(d, "expires_in").IsInt());
  CHECK(Get(d, "expires_in").GetInt() == 3600);  // auth.access_token_ttl default
  // Secrets never come back.
  CHECK_FALSE(d.HasMember("password"));
  CHECK_FALSE(d.HasMember("password_hash"));
}

// An access token works iff GET /chats accepts it.
int ChatsStatus(const HostPort& api, const std::string& token) { return ApiGet(api, "/chats", token).status; }

}  // namespace

TEST_CASE("register answers 201 with the documented account shape", "[integration][auth]") {
  auto relay = StartRelay();
  TestUser u;
  u.username = "alice";
  u.email = "alice@example.test";
  std::string body = JsonBuilder()
                         .Add("username", "alice")
                         .Add("email", u.email)
                         .Add("password", DefaultPassword("alice"))
                         .Add("first_name", "Alice")
                         .Add("last_name", "Liddell")
                         .str();
  HttpResponse r = ApiPost(relay->api(), "/auth/register", body);
  INFO(r.Describe());
  CHECK(r.status == 201);
  CHECK(r.Header("Content-Type").find("application/json") == 0);
  CheckAccountShape(r, u, "eu1");
  std::string token = StrOf(Get(r.data(), "access_token"));
  CHECK(ChatsStatus(relay->api(), token) == 200);
}

TEST_CASE("login by username, by handle and with the pass alias", "[integration][auth]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));

  SECTION("username + password") {
    HttpResponse r = Login(relay->api(), "alice", alice.password);
    CHECK(r.status == 200);
    CheckAccountShape(r, alice, "eu1");
    // A login is a new device: new tokens, and they work.
    CHECK(StrOf(Get(r.data(), "refresh_token")) != alice.refresh_token);
    CHECK(ChatsStatus(relay->api(), StrOf(Get(r.data(), "access_token"))) == 200);
    // The register tokens keep working: logging in elsewhere does not log a device out.
    CHECK(ChatsStatus(relay->api(), alice.access_token) == 200);
  }
  SECTION("handle name@relay") {
    HttpResponse r = Login(relay->api(), "alice@eu1", alice.password);
    CHECK(r.status == 200);
    CheckAccountShape(r, alice, "eu1");
  }
  SECTION("`pass` alias of `password`") {
    HttpResponse r = Login(relay->api(), "alice", alice.password, "pass");
    CHECK(r.status == 200);
    CheckAccountShape(r, alice, "eu1");
  }
  SECTION("wrong password, unknown user, another relay's handle → 401") {
    CheckRestError(Login(relay->api(), "alice", alice.password + "x"), 401, "unauthorized");
    CheckRestError(Login(relay->api(), "nobody", alice.password), 401, "unauthorized");
    CheckRestError(Login(relay->api(), "alice@us2", alice.password), 401, "unauthorized");
  }
  SECTION("missing or mistyped fields → 400 naming the field") {
    HttpResponse r = ApiPost(relay->api(), "/auth/login", JsonBuilder().Add("username", "alice").str());
    CheckRestError(r, 400, "bad_request");
    CHECK(r.error_message().find("password") != std::string::npos);
    r = ApiPost(relay->api(), "/auth/login",
                JsonBuilder().Add("username", 42).Add("password", alice.password).str());
    CheckRestError(r, 400, "bad_request");
    CHECK(r.error_message().find("username") != std::string::npos);
  }
}

TEST_CASE("duplicate username or email is a 409 conflict and creates nothing", "[integration][auth]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));

  auto reg = [&](const std::string& name, const std::string& email, const std::string& pw) {
    return ApiPost(relay->api(), "/auth/register",
                   JsonBuilder().Add("username", name).Add("email", email).Add("password", pw).str());
  };
  // Same username, other email and password.
  HttpResponse r = reg("alice", "other@example.test", "another-Passw0rd!");
  CheckRestError(r, 409, "conflict");
  // Same email, other username.
  r = reg("alice2", alice.email, "another-Passw0rd!");
  CheckRestError(r, 409, "conflict");

  // Nothing changed: alice's password is hers, the refused accounts do not exist.
  CHECK(Login(relay->api(), "alice", alice.password).status == 200);
  CheckRestError(Login(relay->api(), "alice", "another-Passw0rd!"), 401, "unauthorized");
  CheckRestError(Login(relay->api(), "alice2", "another-Passw0rd!"), 401, "unauthorized");
  // The other address is still free.
  CHECK(reg("carol", "other@example.test", DefaultPassword("carol")).status == 201);
}

TEST_CASE("register refuses missing or mistyped fields, naming them", "[integration][auth]") {
  auto relay = StartRelay();
  HttpResponse r = ApiPost(relay->api(), "/auth/register",
                           JsonBuilder().Add("username", "dave").Add("email", "dave@example.test").str());
  CheckRestError(r, 400, "bad_request");
  CHECK(r.error_message().find("password") != std::string::npos);
  r = ApiPost(relay->api(), "/auth/register",
              JsonBuilder().Add("username", "dave").Add("password", DefaultPassword("dave")).str());
  CheckRestError(r, 400, "bad_request");
  CHECK(r.error_message().find("email") != std::string::npos);
  r = ApiPost(relay->api(), "/auth/register",
              JsonBuilder().Add("username", 7).Add("email", "dave@example.test")
                  .Add("password", DefaultPassword("dave")).str());
  CheckRestError(r, 400, "bad_request");
  CHECK(r.error_message().find("username") != std::string::npos);
  // None of these created dave.
  CheckRestError(Login(relay->api(), "dave", DefaultPassword("dave")), 401, "unauthorized");
  CHECK(ApiPost(relay->api(), "/auth/register",
                JsonBuilder().Add("username", "dave").Add("email", "dave@example.test")
                    .Add("password", DefaultPassword("dave")).str())
            .status == 201);
}

TEST_CASE("refresh rotates the refresh token and the old one stops working", "[integration][auth]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));

  HttpResponse r = Refresh(relay->api(), alice.refresh_token);
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  REQUIRE(r.success());
  const auto& d = r.data();
  std::string access2 = StrOf(Get(d, "access_token"));
  std::string refresh2 = StrOf(Get(d, "refresh_token"));
  CHECK_FALSE(access2.empty());
  CHECK_FALSE(refresh2.empty());
  CHECK(refresh2 != alice.refresh_token);
  REQUIRE(Get(d, "expires_in").IsInt());
  CHECK(Get(d, "expires_in").GetInt() == 3600);
  CHECK(ChatsStatus(relay->api(), access2) == 200);

  // The chain goes on with the new one.
  HttpResponse r3 = Refresh(relay->api(), refresh2);
  INFO(r3.Describe());
  CHECK(r3.status == 200);
  std::string refresh3 = StrOf(Get(r3.data(), "refresh_token"));
  CHECK_FALSE(refresh3.empty());
  CHECK(refresh3 != refresh2);
  CHECK(refresh3 != alice.refresh_token);

  // The rotated-out tokens are dead, even for a second try. (Replaying one may also end
  // the device's session family — reuse detection — so nothing is asserted after this
  // about refresh3.)
  CheckRestError(Refresh(relay->api(), alice.refresh_token), 401, "unauthorized");
  CheckRestError(Refresh(relay->api(), refresh2), 401, "unauthorized");
  CheckRestError(Refresh(relay->api(), alice.refresh_token), 401, "unauthorized");

  // Garbage, an access token in its place, a missing field.
  CheckRestError(Refresh(relay->api(), "not-a-refresh-token"), 401, "unauthorized");
  // An access token is not a refresh token: refused as such (not "too large").
  HttpResponse wrong_kind = Refresh(relay->api(), access2);
  INFO(wrong_kind.Describe());
  CHECK((wrong_kind.status == 401 || wrong_kind.status == 400));
  CHECK_FALSE(wrong_kind.success());
  CheckRestError(ApiPost(relay->api(), "/auth/refresh", "{}"), 400, "bad_request");
}

TEST_CASE("logout revokes that device's refresh token only", "[integration][auth]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  // A second device.
  HttpResponse login = Login(relay->api(), "alice", alice.password);
  REQUIRE(login.status == 200);
  std::string refresh_dev2 = StrOf(Get(login.data(), "refresh_token"));
  std::string access_dev2 = StrOf(Get(login.data(), "access_token"));
  // A WebSocket session on each device.
  WsSession ws1 = MUST(Auth(*relay, alice.access_token));
  WsSession ws2 = MUST(Auth(*relay, access_dev2));

  // Without a token: 401, nothing revoked.
  CheckRestError(ApiPost(relay->api(), "/auth/logout", ""), 401, "unauthorized");

  HttpResponse out = ApiPost(relay->api(), "/auth/logout", "", alice.access_token);
  INFO(out.Describe());
  CHECK(out.status == 204);
  CHECK(out.body.empty());

  CheckRestError(Refresh(relay->api(), alice.refresh_token), 401, "unauthorized");
  // The other device is still logged in.
  HttpResponse r2 = Refresh(relay->api(), refresh_dev2);
  CHECK(r2.status == 200);

  // The logged-out device's session is closed with 1008 "logged out"; the other stays.
  Result<Json> ev = Json();
  do {
    ev = ws1.Next(5000);
  } while (ev.ok());
  INFO(ev.status().message());
  CHECK(ws1.ws().last_error() == WsError::kClosed);
  CHECK(ws1.ws().last_close_code() == 1008);
  CHECK(ws1.ws().last_close_reason() == "logged out");
  CHECK(ws2.Barrier(5000).ok());
}

TEST_CASE("login attempts are rate limited per account", "[integration][auth]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));

  // auth.login_per_account_per_min defaults to 10.
  for (int i = 0; i < 10; ++i) {
    INFO("attempt " << i + 1);
    HttpResponse r = Login(relay->api(), "alice", "wrong-" + std::to_string(i));
    CheckRestError(r, 401, "unauthorized");
  }
  HttpResponse limited = Login(relay->api(), "alice", "wrong-again");
  CheckRestError(limited, 429, "rate_limited");
  // retry_after: seconds, in the error object (or next to it), and the Retry-After header.
  const rapidjson::Value* ra = &At(limited.json.root(), "error.retry_after");
  if (ra->IsNull()) ra = &limited.json["retry_after"];
  INFO(limited.Describe());
  REQUIRE(ra->IsInt());
  CHECK(ra->GetInt() >= 1);
  CHECK(ra->GetInt() <= 60);
  std::string header = limited.Header("Retry-After");
  REQUIRE_FALSE(header.empty());
  CHECK(std::stoi(header) >= 1);
  CHECK(std::stoi(header) <= 60);

  // The right password does not get through the limit either (no guessing past it).
  CheckRestError(Login(relay->api(), "alice", alice.password), 429, "rate_limited");
  // The limit is per account: bob logs in.
  CHECK(Login(relay->api(), "bob", bob.password).status == 200);
  // alice's existing tokens are unaffected.
  CHECK(ChatsStatus(relay->api(), alice.access_token) == 200);
}

}  // namespace chatd::test
