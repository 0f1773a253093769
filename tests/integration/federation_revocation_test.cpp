// Revocation across relays (issue 3: "revocations (logout everywhere, user disabled) take
// effect on every relay"), on a chain A – B – C of real relays (tests/support/fed_chain.h).
// Logout, logout everywhere and an operator's `chatctl users disable` are signed envelopes:
// every relay closes the affected WebSocket sessions (1008 "logged out") and refuses the
// affected access tokens (401), the home relay revokes the refresh tokens, and the state
// survives a restart. Every wait has a deadline; nothing sleeps and hopes.
#include "tests/integration/harness.h"
#include "tests/support/fed_chain.h"
#include "tests/support/fed_checks.h"

namespace chatd::test {
namespace {

HttpResponse Login(const HostPort& api, const std::string& username, const std::string& password) {
  return ApiPost(api, "/auth/login", JsonBuilder().Add("username", username).Add("password", password).str());
}

HttpResponse Refresh(const HostPort& api, const std::string& refresh_token) {
  return ApiPost(api, "/auth/refresh", JsonBuilder().Add("refresh_token", refresh_token).str());
}

// Waits until GET /users/me with `token` on `relay` answers `status`; the last answer.
HttpResponse WaitMe(const RelayProcess& relay, const std::string& token, int status, int timeout_ms = kFedEventMs) {
  HttpResponse last;
  WaitFor(
      [&] {
        last = ApiGet(relay.api(), "/users/me", token);
        return last.status == status;
      },
      timeout_ms, 20);
  return last;
}

// `token` is refused on `relay`: REST 401 with `message` (within the deadline), and by
// the WebSocket (error unauthorized, then close 1008).
void RequireRefusedOn(const RelayProcess& relay, const std::string& token, const std::string& message) {
  INFO("on " << relay.name());
  HttpResponse r = WaitMe(relay, token, 401);
  INFO(r.Describe());
  CHECK(r.error_message() == message);
  RequireTokenRefused(relay, token, message);
}

// Reads until the server closes the session (or the deadline passes); then checks the close.
void RequireClosedLoggedOut(WsSession& ws, int timeout_ms = kFedEventMs) {
  int64_t deadline = MonoMs() + timeout_ms;
  while (MonoMs() < deadline) {
    auto ev = ws.Next(static_cast<int>(std::max<int64_t>(1, deadline - MonoMs())));
    if (!ev.ok() && ws.ws().last_error() == WsError::kClosed) break;
  }
  INFO("last error " << static_cast<int>(ws.ws().last_error()));
  CHECK(ws.ws().last_error() == WsError::kClosed);
  CHECK(ws.ws().last_close_code() == 1008);
  CHECK(ws.ws().last_close_reason() == "logged out");
}

// The session is still open: it answers a ping.
void RequireOpen(WsSession& ws) { MUST(ws.Barrier(kEventMs)); }

// Registers `name` on `home` and waits until every relay of the chain accepts its token.
TestUser RegisterEverywhere(const FedChain& chain, const RelayProcess& home, const std::string& name) {
  TestUser u = MUST(RegisterUser(home, name));
  for (const RelayProcess* r : chain.all()) {
    INFO(name << "'s token on " << r->name());
    REQUIRE(WaitMe(*r, u.access_token, 200).status == 200);
  }
  return u;
}

struct Device {
  std::string access_token, refresh_token;
};
// Another login of `u` on its home relay: a second device.
Device SecondDevice(const RelayProcess& home, const TestUser& u) {
  HttpResponse r = Login(home.api(), u.username, u.password);
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  return {StrOf(Get(r.data(), "access_token")), StrOf(Get(r.data(), "refresh_token"))};
}

}  // namespace

TEST_CASE("federation revocation: logout everywhere on A closes B's session, old tokens refused on A, B, C",
          "[integration][federation][auth]") {
  FedChain chain;
  MUST(chain.Start(Options()));
  RelayProcess& A = *chain.a;
  RelayProcess& B = *chain.b;
  RelayProcess& C = *chain.c;

  TestUser alice = RegisterEverywhere(chain, A, "alice");
  TestUser carol = RegisterEverywhere(chain, C, "carol");
  auto [token2, refresh2] = SecondDevice(A, alice);
  WsSession on_b = MUST(Auth(B, alice.access_token));
  WsSession on_c = MUST(Auth(C, token2));
  WsSession carol_b = MUST(Auth(B, carol.access_token));

  HttpResponse out = ApiPost(A.api(), "/auth/logout_all", "", alice.access_token);
  INFO(out.Describe());
  REQUIRE(out.status == 204);

  // On A at once (answered after the commit): both devices' tokens are refused.
  {
    HttpResponse r = ApiGet(A.api(), "/users/me", alice.access_token);
    CheckRestError(r, 401, "unauthorized");
    CHECK(r.error_message() == "token revoked");
    CheckRestError(ApiGet(A.api(), "/users/me", token2), 401, "unauthorized");
  }
  // Sessions on B (A's neighbour) and C (through B) close.
  RequireClosedLoggedOut(on_b);
  RequireClosedLoggedOut(on_c);
  RequireOpen(carol_b);  // other users' sessions stay
  // The old tokens are refused everywhere, REST and WebSocket.
  for (const RelayProcess* r : chain.all()) {
    RequireRefusedOn(*r, alice.access_token, "token revoked");
    RequireRefusedOn(*r, token2, "token revoked");
  }
  // The home relay revoked every device's refresh token.
  CheckRestError(Refresh(A.api(), alice.refresh_token), 401, "unauthorized");
  CheckRestError(Refresh(A.api(), refresh2), 401, "unauthorized");
  CHECK(WaitMe(C, carol.access_token, 200).status == 200);

  // Logging in again works, and the new token works on every relay.
  HttpResponse again = Login(A.api(), "alice", alice.password);
  REQUIRE(again.status == 200);
  std::string fresh = StrOf(Get(again.data(), "access_token"));
  for (const RelayProcess* r : chain.all()) {
    INFO("new token on " << r->name());
    CHECK(WaitMe(*r, fresh, 200).status == 200);
  }
  WsSession back = MUST(Auth(B, fresh));
  RequireOpen(back);

  // The revocation is one envelope in every log.
  RequireConverged(chain.all(), 15000);
  RequireIdenticalLogs(chain.all());

  // It is kept: after a restart, C still refuses the old token at once.
  CHECK(MUST(C.Stop()) == 0);
  MUST(C.Start());
  CheckRestError(ApiGet(C.api(), "/users/me", alice.access_token), 401, "unauthorized");
  CHECK(ApiGet(C.api(), "/users/me", fresh).status == 200);
}

TEST_CASE("federation revocation: logout on B with A's token ends that device on every relay",
          "[integration][federation][auth]") {
  FedChain chain;
  MUST(chain.Start(Options()));
  RelayProcess& A = *chain.a;
  RelayProcess& B = *chain.b;
  RelayProcess& C = *chain.c;

  TestUser alice = RegisterEverywhere(chain, A, "alice");
  auto [token2, refresh2] = SecondDevice(A, alice);
  WsSession dev1_c = MUST(Auth(C, alice.access_token));
  WsSession dev2_c = MUST(Auth(C, token2));

  // Logout through B (not alice's home).
  HttpResponse out = ApiPost(B.api(), "/auth/logout", "", alice.access_token);
  INFO(out.Describe());
  REQUIRE(out.status == 204);
  CheckRestError(ApiGet(B.api(), "/users/me", alice.access_token), 401, "unauthorized");

  RequireClosedLoggedOut(dev1_c);
  RequireOpen(dev2_c);
  for (const RelayProcess* r : chain.all()) RequireRefusedOn(*r, alice.access_token, "token revoked (logged out)");
  // Home (A) revoked that device's refresh token once the envelope arrived; the other
  // device is untouched everywhere.
  HttpResponse refused;
  WaitFor(
      [&] {
        refused = Refresh(A.api(), alice.refresh_token);
        return refused.status == 401;
      },
      kFedEventMs, 20);
  CheckRestError(refused, 401, "unauthorized");
  for (const RelayProcess* r : chain.all()) CHECK(ApiGet(r->api(), "/users/me", token2).status == 200);
  CHECK(Refresh(A.api(), refresh2).status == 200);
}

TEST_CASE("federation revocation: an operator disables a user on A, B and C refuse the user, enable restores login",
          "[integration][federation][auth]") {
  FedChain chain;
  MUST(chain.Start(Options()));
  RelayProcess& A = *chain.a;
  RelayProcess& B = *chain.b;
  RelayProcess& C = *chain.c;
  const std::string& chatctl = chain.chatctl;

  TestUser alice = RegisterEverywhere(chain, A, "alice");
  TestUser bob = RegisterEverywhere(chain, A, "bob");
  WsSession on_b = MUST(Auth(B, alice.access_token));
  WsSession on_a = MUST(Auth(A, alice.access_token));
  WsSession bob_b = MUST(Auth(B, bob.access_token));

  // A user of another relay is disabled at home only.
  {
    CommandResult r = Chatctl(chatctl, B, {"users", "disable", "alice@" + A.name()});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("homed on " + A.name()) != std::string::npos);
  }
  // --dry-run changes nothing.
  {
    CommandResult r = Chatctl(chatctl, A, {"users", "disable", "alice", "--dry-run"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("would disable alice@" + A.name()) != std::string::npos);
    CHECK(ApiGet(A.api(), "/users/me", alice.access_token).status == 200);
  }
  {
    CommandResult r = Chatctl(chatctl, A, {"users", "disable", "alice"});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("alice@" + A.name() + " disabled") != std::string::npos);
  }
  RequireClosedLoggedOut(on_a);
  RequireClosedLoggedOut(on_b);
  RequireOpen(bob_b);
  for (const RelayProcess* r : chain.all()) RequireRefusedOn(*r, alice.access_token, "account disabled");
  CHECK(ApiGet(C.api(), "/users/me", bob.access_token).status == 200);

  // Login: the right password gets 403 account_disabled, a wrong one the usual 401; the
  // name stays taken; the refresh token is dead.
  CheckRestError(Login(A.api(), "alice", alice.password), 403, "account_disabled");
  CheckRestError(Login(A.api(), "alice", "wrong-password-1"), 401, "unauthorized");
  CheckRestError(Login(B.api(), "alice@" + A.name(), alice.password), 401, "unauthorized");
  CheckRestError(ApiPost(A.api(), "/auth/register",
                         JsonBuilder()
                             .Add("username", "alice")
                             .Add("email", "other@example.org")
                             .Add("password", "another-password")
                             .str()),
                 409, "conflict");
  CheckRestError(Refresh(A.api(), alice.refresh_token), 401, "unauthorized");

  // Every relay's directory shows it (chatctl users show on C, through C's admin API).
  {
    bool shown = WaitFor(
        [&] {
          CommandResult r = Chatctl(chatctl, C, {"-o", "json", "users", "show", "alice@" + A.name()});
          return r.exit_code == 0 && r.out.find("\"disabled\":true") != std::string::npos;
        },
        kFedEventMs, 50);
    CHECK(shown);
    CommandResult list = Chatctl(chatctl, A, {"users", "list"});
    INFO(list.out << list.err);
    CHECK(list.exit_code == 0);
    CHECK(list.out.find("alice@" + A.name()) != std::string::npos);
    CHECK(list.out.find("disabled") != std::string::npos);
    CommandResult show = Chatctl(chatctl, A, {"users", "show", "alice"});
    INFO(show.out << show.err);
    CHECK(show.out.find("active_devices  0") != std::string::npos);
    CHECK(Chatctl(chatctl, A, {"users", "show", "nobody"}).exit_code == 1);
  }

  // B keeps refusing after a restart (loaded from its store).
  CHECK(MUST(B.Stop()) == 0);
  MUST(B.Start());
  CheckRestError(ApiGet(B.api(), "/users/me", alice.access_token), 401, "unauthorized");
  REQUIRE(chain.WaitLinks(15000));

  // Enable: login works again; the new token works everywhere; the old one stays refused.
  {
    CommandResult r = Chatctl(chatctl, A, {"users", "enable", "alice"});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("alice@" + A.name() + " enabled") != std::string::npos);
  }
  HttpResponse login = Login(A.api(), "alice", alice.password);
  INFO(login.Describe());
  REQUIRE(login.status == 200);
  std::string fresh = StrOf(Get(login.data(), "access_token"));
  for (const RelayProcess* r : chain.all()) {
    INFO("new token on " << r->name());
    CHECK(WaitMe(*r, fresh, 200).status == 200);
    CheckRestError(ApiGet(r->api(), "/users/me", alice.access_token), 401, "unauthorized");
  }
  WsSession again = MUST(Auth(C, fresh));
  RequireOpen(again);
  RequireConverged(chain.all(), 15000);
  RequireIdenticalLogs(chain.all());
}

}  // namespace chatd::test
