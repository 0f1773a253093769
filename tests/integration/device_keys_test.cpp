// Device keys for end-to-end encryption (docs/API.md "End-to-end encryption"): publishing a device's
// bundle (the signed prekey's signature checked), the directory, claims that hand out each
// one-time prekey at most once, removal and logout, device_keys_changed to chat partners,
// encrypted messages (flagged, never searchable), and the directory across a federation
// (one-time prekeys only at the user's home relay), where a peer's device_keys envelope is
// checked on apply (a pinned fake peer sends bad ones).
#include <sodium.h>

#include <mutex>
#include <thread>

#include "crypto/envelope.h"
#include "crypto/keys.h"
#include "tests/integration/harness.h"
#include "tests/support/fed_chain.h"
#include "tests/support/fed_checks.h"
#include "tests/support/fed_cluster.h"
#include "tests/support/fed_peer.h"

namespace chatd::test {
namespace {

std::string B64(const uint8_t* data, size_t n) {
  std::string out(sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), data, n, sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);
  return out;
}

// A device's key material, as a client would create it.
struct DeviceKeys {
  uint8_t ik_pk[32], ik_sk[64], spk[32], sig[64];
  std::vector<std::array<uint8_t, 32>> otpks;
  explicit DeviceKeys(size_t n_otpk = 0) {
    REQUIRE(sodium_init() >= 0);
    crypto_sign_keypair(ik_pk, ik_sk);
    uint8_t sk[32];
    crypto_box_keypair(spk, sk);
    crypto_sign_detached(sig, nullptr, spk, sizeof spk, ik_sk);
    for (size_t i = 0; i < n_otpk; ++i) otpks.push_back(NewPublicKey());
  }
  static std::array<uint8_t, 32> NewPublicKey() {
    std::array<uint8_t, 32> pk;
    uint8_t sk[32];
    crypto_box_keypair(pk.data(), sk);
    return pk;
  }
  std::string identity() const { return B64(ik_pk, 32); }
  // The PUT body; one-time prekeys key_id first_id.. for otpks[from, to).
  std::string Body(uint32_t first_id = 1, size_t from = 0, size_t to = SIZE_MAX,
                   const std::string& sig_b64 = "") const {
    std::string otp;
    to = std::min(to, otpks.size());
    for (size_t i = from; i < to; ++i) {
      otp += std::string(otp.empty() ? "" : ",") + R"({"key_id":)" + std::to_string(first_id + (i - from)) +
             R"(,"public_key":")" + B64(otpks[i].data(), 32) + R"("})";
    }
    return JsonBuilder()
        .Add("identity_key", identity())
        .Raw("signed_prekey", JsonBuilder()
                                  .Add("key_id", 1)
                                  .Add("public_key", B64(spk, 32))
                                  .Add("signature", sig_b64.empty() ? B64(sig, 64) : sig_b64)
                                  .str())
        .Raw("one_time_prekeys", "[" + otp + "]")
        .str();
  }
};

HttpResponse PutKeys(const HostPort& api, const std::string& body, const std::string& token) {
  HttpRequest r;
  r.method = "PUT";
  r.path = "/api/v1/devices/me/keys";
  r.body = body;
  r.bearer = token;
  return HttpCall(api, r);
}

HttpResponse Claim(const HostPort& api, const std::string& user, const std::string& device, const std::string& token) {
  return ApiPost(api, "/users/" + user + "/devices/" + device + "/claim", "{}", token);
}

// The devices listed by GET /users/{id}/devices (REQUIREs a 200).
std::vector<Json> Devices(const HostPort& api, const std::string& user, const std::string& token) {
  HttpResponse r = ApiGet(api, "/users/" + user + "/devices", token);
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  std::vector<Json> out;
  for (const auto& d : Get(r.data(), "devices").GetArray()) out.push_back(Json::FromValue(d));
  return out;
}

void CheckBadRequestNaming(const HttpResponse& r, const std::string& field) {
  CheckRestError(r, 400, "bad_request");
  INFO(r.Describe());
  CHECK(r.error_message().find("'" + field) != std::string::npos);
}

}  // namespace

TEST_CASE("device keys: publish, fetch, claim each one-time prekey once, bad input refused naming the field",
          "[integration][keys]") {
  auto relay = StartRelay();
  const HostPort& api = relay->api();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  DeviceKeys keys(3);

  // Not authenticated; bad input: nothing is stored.
  CheckRestError(PutKeys(api, keys.Body(), ""), 401, "unauthorized");
  CheckRestError(ApiGet(api, "/users/" + alice.user_id + "/devices"), 401, "unauthorized");
  CheckRestError(Claim(api, alice.user_id, "1", ""), 401, "unauthorized");
  CheckRestError(ApiDelete(api, "/devices/me/keys"), 401, "unauthorized");
  DeviceKeys other;
  CheckBadRequestNaming(PutKeys(api, keys.Body(1, 0, SIZE_MAX, B64(other.sig, 64)), alice.access_token),
                        "signed_prekey.signature");
  std::string body = keys.Body();
  auto with = [&](const std::string& from, const std::string& to) {
    std::string t = body;
    t.replace(t.find(from), from.size(), to);
    return t;
  };
  CheckBadRequestNaming(PutKeys(api, with(keys.identity(), "%%not-base64%%"), alice.access_token), "identity_key");
  CheckBadRequestNaming(PutKeys(api, with(keys.identity(), keys.identity().substr(0, 40)), alice.access_token),
                        "identity_key");
  uint8_t short_key[31] = {1};
  CheckBadRequestNaming(PutKeys(api, with(keys.identity(), B64(short_key, 31)), alice.access_token), "identity_key");
  CheckBadRequestNaming(PutKeys(api, with(B64(keys.spk, 32), B64(short_key, 31)), alice.access_token),
                        "signed_prekey.public_key");
  CheckBadRequestNaming(PutKeys(api, with(R"("key_id":1,)", R"("key_id":4294967296,)"), alice.access_token),
                        "signed_prekey.key_id");
  DeviceKeys many(101);
  CheckBadRequestNaming(PutKeys(api, many.Body(), alice.access_token), "one_time_prekeys");
  std::string dup = keys.Body();
  dup.replace(dup.find(R"({"key_id":2,)"), 12, R"({"key_id":1,)");
  CheckBadRequestNaming(PutKeys(api, dup, alice.access_token), "one_time_prekeys[1].key_id");
  CHECK(Devices(api, alice.user_id, bob.access_token).empty());

  // Publish: the device of the token, with three one-time prekeys.
  HttpResponse put = PutKeys(api, keys.Body(), alice.access_token);
  INFO(put.Describe());
  REQUIRE(put.status == 200);
  std::string device = StrOf(Get(put.data(), "device_id"));
  CHECK(IsDecimalId(Get(put.data(), "device_id")));
  CHECK(Get(put.data(), "one_time_prekeys_left").GetInt64() == 3);

  std::vector<Json> devs = Devices(api, alice.user_id, bob.access_token);
  REQUIRE(devs.size() == 1);
  CHECK(devs[0].Str("device_id") == device);
  CHECK(devs[0].Str("identity_key") == keys.identity());
  CHECK(StrOf(At(devs[0].root(), "signed_prekey.public_key")) == B64(keys.spk, 32));
  CHECK(StrOf(At(devs[0].root(), "signed_prekey.signature")) == B64(keys.sig, 64));
  CHECK(At(devs[0].root(), "signed_prekey.key_id").GetInt64() == 1);
  CHECK(devs[0]["one_time_prekeys_left"].GetInt64() == 3);
  CHECK(IsRfc3339Ms(devs[0]["updated_at"]));
  CHECK(Devices(api, "me", alice.access_token).size() == 1);

  // Unknown user, unknown device.
  CheckRestError(ApiGet(api, "/users/123456789/devices", bob.access_token), 404, "not_found");
  CheckRestError(Claim(api, "123456789", device, bob.access_token), 404, "not_found");
  CheckRestError(Claim(api, alice.user_id, "987654321", bob.access_token), 404, "not_found");
  CheckRestError(Claim(api, alice.user_id, "not-an-id", bob.access_token), 400, "bad_request");

  // Claims: each one-time prekey once, then the bundle without one.
  std::set<std::string> handed;
  for (int i = 0; i < 3; ++i) {
    HttpResponse c = Claim(api, alice.user_id, device, bob.access_token);
    INFO(c.Describe());
    REQUIRE(c.status == 200);
    CHECK(StrOf(Get(c.data(), "identity_key")) == keys.identity());
    CHECK(StrOf(Get(c.data(), "one_time_prekey_status")) == "claimed");
    const auto& k = Get(c.data(), "one_time_prekey");
    REQUIRE(k.IsObject());
    uint32_t id = static_cast<uint32_t>(Get(k, "key_id").GetInt64());
    REQUIRE(id >= 1);
    REQUIRE(id <= 3);
    CHECK(StrOf(Get(k, "public_key")) == B64(keys.otpks[id - 1].data(), 32));
    CHECK(handed.insert(StrOf(Get(k, "public_key"))).second);
  }
  HttpResponse dry = Claim(api, alice.user_id, device, bob.access_token);
  INFO(dry.Describe());
  REQUIRE(dry.status == 200);
  CHECK(Get(dry.data(), "one_time_prekey").IsNull());
  CHECK(StrOf(Get(dry.data(), "one_time_prekey_status")) == "exhausted");
  CHECK(StrOf(At(dry.data(), "signed_prekey.public_key")) == B64(keys.spk, 32));
  CHECK(Devices(api, alice.user_id, bob.access_token)[0]["one_time_prekeys_left"].GetInt64() == 0);

  // A claimed key id stays taken; the same upload again is a no-op (a retried request).
  DeviceKeys more(40);              // only its one-time prekeys are used: the identity stays the first one
  std::string reuse = keys.Body();  // ids 1..3 again, with the same keys: already held, not re-added
  REQUIRE(PutKeys(api, reuse, alice.access_token).status == 200);
  CHECK(Devices(api, alice.user_id, bob.access_token)[0]["one_time_prekeys_left"].GetInt64() == 0);
  keys.otpks = more.otpks;
  CheckRestError(PutKeys(api, keys.Body(1, 0, 2), alice.access_token), 409, "prekey_id_taken");

  // Concurrent claims from four clients never get the same key: 40 keys, 48 claims.
  REQUIRE(PutKeys(api, keys.Body(100, 0, 40), alice.access_token).status == 200);
  std::mutex mu;
  std::vector<std::string> got;
  int empty = 0, failed = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 12; ++i) {
        HttpResponse c = Claim(api, alice.user_id, device, bob.access_token);
        std::lock_guard<std::mutex> lock(mu);
        if (c.status != 200) {
          ++failed;
        } else if (Get(c.data(), "one_time_prekey").IsNull()) {
          ++empty;
        } else {
          got.push_back(StrOf(Get(Get(c.data(), "one_time_prekey"), "public_key")));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failed == 0);
  CHECK(got.size() == 40);
  CHECK(empty == 8);
  CHECK(std::set<std::string>(got.begin(), got.end()).size() == got.size());

  // At most 200 unclaimed per device.
  keys.otpks = DeviceKeys(201).otpks;
  REQUIRE(PutKeys(api, keys.Body(1000, 0, 100), alice.access_token).status == 200);
  REQUIRE(PutKeys(api, keys.Body(1100, 100, 200), alice.access_token).status == 200);
  CheckRestError(PutKeys(api, keys.Body(1200, 200, 201), alice.access_token), 409, "too_many_prekeys");

  // A second device of alice's, logged out: its keys leave the directory.
  HttpResponse login =
      ApiPost(api, "/auth/login", JsonBuilder().Add("username", "alice").Add("password", alice.password).str());
  INFO(login.Describe());
  REQUIRE(login.status == 200);
  std::string laptop = StrOf(Get(login.data(), "access_token"));
  DeviceKeys laptop_keys(1);
  HttpResponse put2 = PutKeys(api, laptop_keys.Body(), laptop);
  REQUIRE(put2.status == 200);
  CHECK(StrOf(Get(put2.data(), "device_id")) != device);
  CHECK(Devices(api, alice.user_id, bob.access_token).size() == 2);
  CHECK(Devices(api, bob.user_id, bob.access_token).empty());
  REQUIRE(ApiPost(api, "/auth/logout", "{}", laptop).status == 204);
  devs = Devices(api, alice.user_id, bob.access_token);
  REQUIRE(devs.size() == 1);
  CHECK(devs[0].Str("device_id") == device);
  CheckRestError(Claim(api, alice.user_id, StrOf(Get(put2.data(), "device_id")), bob.access_token), 404, "not_found");

  // DELETE: the device's keys are withdrawn.
  HttpResponse del = ApiDelete(api, "/devices/me/keys", alice.access_token);
  INFO(del.Describe());
  CHECK(del.status == 204);
  CHECK(Devices(api, alice.user_id, bob.access_token).empty());
  CheckRestError(Claim(api, alice.user_id, device, bob.access_token), 404, "not_found");
  CheckRestError(ApiDelete(api, "/devices/me/keys", bob.access_token), 404, "not_found");

  // The views still follow from the log.
  CommandResult verify = Chatctl(CHATCTL_BIN, *relay, {"store", "verify"});
  INFO(verify.out << verify.err);
  CHECK(verify.exit_code == 0);
  CHECK(verify.out.find("log and views OK") != std::string::npos);

  // One user claims another's prekeys only so fast: bob reaches 60 a minute (he made
  // about 55 claims above); another user still may claim.
  HttpResponse limited;
  for (int i = 0; i < 70 && limited.status != 429; ++i) limited = Claim(api, alice.user_id, device, bob.access_token);
  CheckRestError(limited, 429, "rate_limited");
  CHECK(!limited.Header("Retry-After").empty());
  TestUser dave = MUST(RegisterUser(*relay, "dave"));
  HttpResponse by_dave = Claim(api, alice.user_id, device, dave.access_token);
  INFO(by_dave.Describe());
  CHECK(by_dave.status != 429);
}

TEST_CASE("device keys: a new device and an identity change reach chat partners as device_keys_changed",
          "[integration][keys]") {
  auto relay = StartRelay();
  const HostPort& api = relay->api();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  TestUser carol = MUST(RegisterUser(*relay, "carol"));  // shares nothing with alice
  MUST(CreateChat(api, alice.access_token, "direct", {bob.user_id}));
  WsSession bob_ws = MUST(Auth(*relay, bob.access_token));
  WsSession carol_ws = MUST(Auth(*relay, carol.access_token));

  DeviceKeys first;
  HttpResponse put = PutKeys(api, first.Body(), alice.access_token);
  REQUIRE(put.status == 200);
  std::string device = StrOf(Get(put.data(), "device_id"));
  auto added = bob_ws.WaitFor([&](const Json& e) { return e.type() == "device_keys_changed"; }, kEventMs);
  REQUIRE_MSG(added.ok(), "no device_keys_changed: " << added.status().message());
  CHECK(added->Str("user_id") == alice.user_id);
  CHECK(added->Str("device_id") == device);
  CHECK(added->Str("change") == "added");
  CHECK(added->Str("identity_key") == first.identity());
  CHECK(added->Has("cursor"));

  // Re-installed: a new identity key on the same device.
  DeviceKeys second;
  REQUIRE(PutKeys(api, second.Body(), alice.access_token).status == 200);
  auto changed = bob_ws.WaitFor([&](const Json& e) { return e.type() == "device_keys_changed"; }, kEventMs);
  REQUIRE_MSG(changed.ok(), "no device_keys_changed: " << changed.status().message());
  CHECK(changed->Str("change") == "identity_changed");
  CHECK(changed->Str("identity_key") == second.identity());
  CHECK(Devices(api, alice.user_id, bob.access_token)[0].Str("identity_key") == second.identity());

  // Publishing the same bundle again changes nothing and tells no one.
  REQUIRE(PutKeys(api, second.Body(), alice.access_token).status == 200);
  REQUIRE(ApiDelete(api, "/devices/me/keys", alice.access_token).status == 204);
  auto removed = bob_ws.WaitFor([&](const Json& e) { return e.type() == "device_keys_changed"; }, kEventMs);
  REQUIRE(removed.ok());
  CHECK(removed->Str("change") == "removed");  // the next event: nothing in between
  CHECK(removed->root()["identity_key"].IsNull());
  // carol shares no chat and is no contact of alice's: she heard nothing.
  auto none = carol_ws.WaitFor([&](const Json& e) { return e.type() == "device_keys_changed"; }, 300);
  CHECK_FALSE(none.ok());
}

TEST_CASE("device keys: logging a device out, and disabling the account, tell chat partners it is gone",
          "[integration][keys]") {
  auto relay = StartRelay();
  const HostPort& api = relay->api();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  MUST(CreateChat(api, alice.access_token, "direct", {bob.user_id}));
  // alice's second device: a second login.
  HttpResponse login =
      ApiPost(api, "/auth/login", JsonBuilder().Add("username", "alice").Add("password", alice.password).str());
  REQUIRE(login.status == 200);
  std::string phone_token = StrOf(Get(login.data(), "access_token"));
  DeviceKeys laptop, phone;
  HttpResponse put = PutKeys(api, laptop.Body(), alice.access_token);
  REQUIRE(put.status == 200);
  std::string laptop_id = StrOf(Get(put.data(), "device_id"));
  put = PutKeys(api, phone.Body(), phone_token);
  REQUIRE(put.status == 200);
  std::string phone_id = StrOf(Get(put.data(), "device_id"));
  REQUIRE(Devices(api, alice.user_id, bob.access_token).size() == 2);
  WsSession bob_ws = MUST(Auth(*relay, bob.access_token));

  auto next_removed = [&] {
    auto ev = bob_ws.WaitFor(
        [&](const Json& e) { return e.type() == "device_keys_changed" && e.Str("change") == "removed"; }, kEventMs);
    REQUIRE_MSG(ev.ok(), "no device_keys_changed removed: " << ev.status().message());
    CHECK(ev->Str("user_id") == alice.user_id);
    CHECK((*ev)["identity_key"].IsNull());
    CHECK(ev->Has("cursor"));
    return ev->Str("device_id");
  };
  // The laptop logs out: it leaves the directory and bob is told, once.
  REQUIRE(ApiPost(api, "/auth/logout", "{}", alice.access_token).status == 204);
  CHECK(next_removed() == laptop_id);
  auto left = Devices(api, alice.user_id, bob.access_token);
  REQUIRE(left.size() == 1);
  CHECK(left[0].Str("device_id") == phone_id);
  // The operator disables the account: the phone goes too.
  CommandResult disable = Chatctl(CHATCTL_BIN, *relay, {"users", "disable", "alice"});
  INFO(disable.out << disable.err);
  REQUIRE(disable.exit_code == 0);
  CHECK(next_removed() == phone_id);
  CHECK(Devices(api, alice.user_id, bob.access_token).empty());
  MUST(bob_ws.Barrier());
  CHECK(bob_ws.CountPending("device_keys_changed") == 0);
}

TEST_CASE("encrypted messages: flagged in history and events, never found by search, no server-side forward",
          "[integration][keys][search]") {
  auto relay = StartRelay();
  const HostPort& api = relay->api();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  std::string chat = MUST(CreateChat(api, alice.access_token, "group", {bob.user_id}, "e2ee"));
  std::string other = MUST(CreateChat(api, alice.access_token, "group", {bob.user_id}, "plain"));
  WsSession bob_ws = MUST(Auth(*relay, bob.access_token));
  WsSession alice_ws = MUST(Auth(*relay, alice.access_token));

  const std::string path = "/chats/" + chat + "/messages";
  CheckRestError(
      ApiPost(api, path, JsonBuilder().Add("content", "x").Add("encrypted", "yes").str(), alice.access_token), 400,
      "bad_request");
  HttpResponse enc = ApiPost(api, path, JsonBuilder().Add("content", "zebracipher AAAA").Add("encrypted", true).str(),
                             alice.access_token);
  INFO(enc.Describe());
  REQUIRE(enc.status == 201);
  CHECK(Get(enc.data(), "encrypted").IsTrue());
  std::string enc_id = StrOf(Get(enc.data(), "message_id"));
  auto ev = bob_ws.WaitFor(
      [&](const Json& e) { return e.type() == "new_message" && StrOf(At(e.root(), "message.message_id")) == enc_id; },
      kEventMs);
  REQUIRE(ev.ok());
  CHECK(At(ev->root(), "message.encrypted").IsTrue());
  CHECK(StrOf(At(ev->root(), "message.content")) == "zebracipher AAAA");

  // Over the WebSocket too.
  SEND(alice_ws, JsonBuilder()
                     .Add("type", "send_message")
                     .Add("chat_id", chat)
                     .Add("content", "zebracipher BBBB")
                     .Add("temp_id", "e-1")
                     .Add("encrypted", true)
                     .str());
  auto sent = alice_ws.WaitForAny({"message_sent", "error"}, kEventMs);
  REQUIRE(sent.ok());
  REQUIRE(sent->type() == "message_sent");
  std::string ws_id = sent->Str("message_id");
  Json plain = MUST(PostText(api, alice.access_token, chat, "zebracipher in the clear"));

  std::vector<Json> hist = MUST(History(api, bob.access_token, chat));
  REQUIRE(hist.size() == 3);
  for (const Json& m : hist) {
    INFO(m.text());
    CHECK(m["encrypted"].IsBool());
    CHECK(m["encrypted"].IsTrue() == (m.Str("message_id") != plain.Str("message_id")));
  }

  // An edit of an encrypted message stays encrypted and unsearchable.
  HttpResponse edit =
      ApiPatch(api, path + "/" + enc_id, JsonBuilder().Add("content", "zebracipher CCCC").str(), alice.access_token);
  INFO(edit.Describe());
  REQUIRE(edit.status == 200);
  auto edited = bob_ws.WaitFor([&](const Json& e) { return e.type() == "message_edited"; }, kEventMs);
  REQUIRE(edited.ok());
  CHECK(edited->root()["encrypted"].IsTrue());

  // Search: the plain message is found; then nothing encrypted ever is.
  Json later = MUST(PostText(api, alice.access_token, chat, "sentinel after the edit"));
  REQUIRE(WaitFor([&] { return MUST(SearchIds(api, bob.access_token, "sentinel")).size() == 1; }, 10000));
  std::vector<std::string> found = MUST(SearchIds(api, bob.access_token, "zebracipher"));
  CHECK(found == std::vector<std::string>{plain.Str("message_id")});
  CHECK(MUST(SearchIds(api, bob.access_token, "CCCC")).empty());
  CHECK(MUST(SearchIds(api, bob.access_token, "AAAA")).empty());

  // The relay cannot re-encrypt: forwarding an encrypted message is refused.
  CheckRestError(
      ApiPost(
          api, "/chats/" + other + "/messages",
          JsonBuilder().Raw("forward_from", JsonBuilder().Add("chat_id", chat).Add("message_id", ws_id).str()).str(),
          alice.access_token),
      400, "bad_request");
  CheckRestError(ApiPost(api, "/chats/" + other + "/messages",
                         JsonBuilder()
                             .Raw("forward_from",
                                  JsonBuilder().Add("chat_id", chat).Add("message_id", plain.Str("message_id")).str())
                             .Add("encrypted", true)
                             .str(),
                         alice.access_token),
                 400, "bad_request");
  CHECK(MUST(History(api, bob.access_token, other)).empty());
}

TEST_CASE("device keys across federation: bundles replicate, one-time prekeys are claimed at the home relay only",
          "[integration][keys][federation]") {
  FedChain chain;
  MUST(chain.Start(Options()));
  RelayProcess& A = *chain.a;
  RelayProcess& C = *chain.c;
  TestUser alice = MUST(RegisterUser(A, "alice"));
  TestUser carol = MUST(RegisterUser(C, "carol"));
  RequireConverged(chain.all(), 15000);

  DeviceKeys keys(2);
  HttpResponse put = PutKeys(A.api(), keys.Body(), alice.access_token);
  INFO(put.Describe());
  REQUIRE(put.status == 200);
  std::string device = StrOf(Get(put.data(), "device_id"));

  // carol on C fetches alice@A's bundle once it has replicated.
  REQUIRE(WaitFor([&] { return Devices(C.api(), alice.user_id, carol.access_token).size() == 1; }, kFedEventMs));
  Json d = Devices(C.api(), alice.user_id, carol.access_token)[0];
  CHECK(d.Str("device_id") == device);
  CHECK(d.Str("identity_key") == keys.identity());
  CHECK(StrOf(At(d.root(), "signed_prekey.signature")) == B64(keys.sig, 64));
  CHECK(d["one_time_prekeys_left"].IsNull());  // not known here
  HttpResponse list = ApiGet(C.api(), "/users/" + alice.user_id + "/devices", carol.access_token);
  CHECK(StrOf(Get(list.data(), "home_relay")) == A.name());
  CHECK_FALSE(Get(list.data(), "one_time_prekeys_here").GetBool());

  // A claim on C: the bundle without a one-time prekey, and where to get one.
  HttpResponse away = Claim(C.api(), alice.user_id, device, carol.access_token);
  INFO(away.Describe());
  REQUIRE(away.status == 200);
  CHECK(Get(away.data(), "one_time_prekey").IsNull());
  CHECK(StrOf(Get(away.data(), "one_time_prekey_status")) == "not_home_relay");
  CHECK(StrOf(Get(away.data(), "home_relay")) == A.name());
  CHECK(StrOf(Get(away.data(), "identity_key")) == keys.identity());
  // At alice's home relay, with carol's token: one is handed out.
  HttpResponse home = Claim(A.api(), alice.user_id, device, carol.access_token);
  INFO(home.Describe());
  REQUIRE(home.status == 200);
  CHECK(StrOf(Get(home.data(), "one_time_prekey_status")) == "claimed");

  // alice on C: one-time prekeys are refused there (nothing changes); a re-install's new
  // identity key published there replaces the bundle everywhere and voids the old
  // identity's one-time prekeys at home.
  DeviceKeys reinstall(1);
  CheckRestError(PutKeys(C.api(), reinstall.Body(), alice.access_token), 409, "home_relay_only");
  reinstall.otpks.clear();
  WsSession alice_home = MUST(Auth(A, alice.access_token));
  REQUIRE(PutKeys(C.api(), reinstall.Body(), alice.access_token).status == 200);
  auto ev = alice_home.WaitFor([&](const Json& e) { return e.type() == "device_keys_changed"; }, kFedEventMs);
  REQUIRE_MSG(ev.ok(), "no device_keys_changed on A: " << ev.status().message());
  CHECK(ev->Str("change") == "identity_changed");
  REQUIRE(WaitFor(
      [&] {
        return Devices(A.api(), alice.user_id, carol.access_token)[0].Str("identity_key") == reinstall.identity();
      },
      kFedEventMs));
  HttpResponse after = Claim(A.api(), alice.user_id, device, carol.access_token);
  REQUIRE(after.status == 200);
  CHECK(StrOf(Get(after.data(), "one_time_prekey_status")) == "exhausted");
  CHECK(StrOf(Get(after.data(), "identity_key")) == reinstall.identity());

  RequireConverged(chain.all(), 15000);
  RequireIdenticalLogs(chain.all());
  for (const RelayProcess* r : chain.all()) {
    INFO("relay " << r->name());
    std::vector<Json> devs = Devices(r->api(), alice.user_id, carol.access_token);
    REQUIRE(devs.size() == 1);
    CHECK(devs[0].Str("identity_key") == reinstall.identity());
  }
}

TEST_CASE("device keys from a peer: checked on apply, bad ones kept in the log only, the newest id wins",
          "[integration][keys][federation]") {
  // A pinned fake peer "evil" streams its own user and device_keys envelopes to relay A.
  const std::string chatctl = CHATCTL_BIN;
  auto a = StartRelay(FedOptions(Options("eu1", 21)));
  crypto::KeyPair evil = crypto::KeyPair::Generate();
  MUST(PeerAdd(chatctl, *a, "evil", "", evil.public_key().ToString()));
  crypto::PublicKey a_key = MUST(crypto::ParsePublicKey(MUST(PublicKeyOf(chatctl, *a))));
  FedPeer link;
  MUST(link.Connect("127.0.0.1", a->federation().port));
  MUST(link.Handshake("evil", evil, a->name(), a_key));
  REQUIRE(WaitLinked(chatctl, *a, "evil", 5000));
  TestUser bob = MUST(RegisterUser(*a, "bob"));

  uint64_t seq = 0;
  uint32_t counter = 0;
  const int64_t now = NowMs();
  auto seal = [&](crypto::Kind kind, uint64_t author, const std::string& device, const std::string& body,
                  int64_t at_ms) {
    crypto::Envelope e;
    e.origin = "evil";
    e.seq = ++seq;
    e.id = SnowflakeAt(at_ms, ++counter, 900);
    e.kind = kind;
    e.author = kind == crypto::Kind::kUserCreate ? e.id : author;
    e.device = device;
    e.created_at = NowMs();
    e.body = body;
    MUST(crypto::Seal(e, evil));
    return e;
  };
  auto bundle = [](const std::string& device_id, const DeviceKeys& k, const std::string& sig) {
    return JsonBuilder()
        .Add("device_id", device_id)
        .Add("identity_key", k.identity())
        .Raw("signed_prekey",
             JsonBuilder().Add("key_id", 1).Add("public_key", B64(k.spk, 32)).Add("signature", sig).str())
        .str();
  };
  crypto::Envelope user =
      seal(crypto::Kind::kUserCreate, 0, "",
           JsonBuilder().Add("username", "mallory").Add("first_name", "M").Add("last_name", "E").str(), now);
  const uint64_t uid = user.id;
  DeviceKeys k1, k2, k3;
  std::vector<crypto::Envelope> batch = {
      user,
      // Invalid: a signature that is not k1's over its prekey; a body naming another
      // device than the envelope's; an author no relay knows.
      seal(crypto::Kind::kDeviceKeys, uid, "7", bundle("7", k1, B64(k2.sig, 64)), now + 10),
      seal(crypto::Kind::kDeviceKeys, uid, "7", bundle("8", k1, B64(k1.sig, 64)), now + 20),
      seal(crypto::Kind::kDeviceKeys, 123456789, "9", bundle("9", k1, B64(k1.sig, 64)), now + 30),
      // Valid, device 8: the newer id first, then an older one arriving later.
      seal(crypto::Kind::kDeviceKeys, uid, "8", bundle("8", k2, B64(k2.sig, 64)), now + 2000),
      seal(crypto::Kind::kDeviceKeys, uid, "8", bundle("8", k3, B64(k3.sig, 64)), now + 1000),
  };
  MUST(link.SendBatch(batch));
  bool applied = WaitFor(
      [&] {
        auto st = GetAdminStatus(*a);
        return st.ok() && st->vector.count("evil") && st->vector.at("evil") >= batch.size();
      },
      5000);
  INFO(a->LogTail(20));
  REQUIRE(applied);

  // Every one is in the log; only the valid ones made the directory, newest id winning.
  size_t logged = 0;
  for (const LogRow& r : MUST(ReadEnvelopeLog(a->dir() + "/chatd.db"))) logged += r.origin == "evil";
  CHECK(logged == batch.size());
  std::vector<Json> devs = Devices(a->api(), std::to_string(uid), bob.access_token);
  REQUIRE(devs.size() == 1);
  CHECK(devs[0].Str("device_id") == "8");
  CHECK(devs[0].Str("identity_key") == k2.identity());
  HttpRequest m;
  m.path = "/metrics";
  HttpResponse metrics = HttpCall(a->api(), m);
  CHECK(metrics.body.find("chatd_federation_invalid_total 3\n") != std::string::npos);

  // A rebuild from the log skips the same ones: the views still follow from it.
  CommandResult verify = Chatctl(CHATCTL_BIN, *a, {"store", "verify"});
  INFO(verify.out << verify.err);
  CHECK(verify.exit_code == 0);
}

}  // namespace chatd::test
