// tests/support/fixtures.h — the few client steps almost every test takes.
//
// RegisterUser() and Auth() speak the contract of PROTOCOL.md to a running RelayProcess
// and return errors as values that carry the server's answer, so a test's failure message
// says what the server did. History() pages a chat's history to the end. ForgePaseto()
// signs a PASETO v4.public token with a key of the caller's choice (a random one by
// default) to prove the relay refuses tokens it did not issue. All functions are
// thread-safe (they share nothing).
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "tests/support/json.h"
#include "tests/support/relay_process.h"
#include "tests/support/ws_session.h"

namespace chatd::test {

struct TestUser {
  std::string user_id;
  std::string username;
  std::string handle;
  std::string email;
  std::string password;
  std::string access_token;
  std::string refresh_token;
  Json response;  // the whole register answer
};

// The password RegisterUser uses for `username` unless told otherwise.
std::string DefaultPassword(const std::string& username);

// POST /auth/register; expects 201 with the user's tokens.
Result<TestUser> RegisterUser(const HostPort& api, const std::string& username,
                              const std::string& password = "");
inline Result<TestUser> RegisterUser(const RelayProcess& relay, const std::string& username) {
  return RegisterUser(relay.api(), username);
}

// Connects to ws://GATEWAY/ws (no auth).
Result<WsSession> ConnectWs(const HostPort& gateway, int timeout_ms = 5000,
                            const std::string& bind_ip = "");
// Connects and authenticates; expects auth_ok (kept in session.auth_ok, user_id and
// last_cursor() set from it).
Result<WsSession> Auth(const HostPort& gateway, const std::string& token, int timeout_ms = 5000);
inline Result<WsSession> Auth(const RelayProcess& relay, const std::string& token) {
  return Auth(relay.gateway(), token);
}

// POST /chats; the new (or existing direct) chat's id.
Result<std::string> CreateChat(const HostPort& api, const std::string& token,
                               const std::string& chat_type,
                               const std::vector<std::string>& participants,
                               const std::string& chat_name = "");

// POST /chats/{id}/messages with a text message; the message (the "data" object).
Result<Json> PostText(const HostPort& api, const std::string& token, const std::string& chat_id,
                      const std::string& content, const std::string& client_msg_id = "");

// Every message of a chat, paging GET /chats/{id}/messages?limit=page&before_id=… until
// has_more is false, in the order the server returned them (newest first).
Result<std::vector<Json>> History(const HostPort& api, const std::string& token,
                                  const std::string& chat_id, int page = 100);

// GET /search?q=<q><extra> (extra: "&chat_id=…" etc.): the result ids, newest first.
Result<std::vector<std::string>> SearchIds(const HostPort& api, const std::string& token, const std::string& q,
                                           const std::string& extra = "");

// A PASETO v4.public token over `claims_json`. With secret_key64 empty a fresh random
// Ed25519 key signs it (a token no relay issued).
std::string ForgePaseto(const std::string& claims_json, const std::string& footer = "",
                        const std::string& secret_key64 = "");

// The payload and footer of a v4.public token, decoded but NOT verified.
struct PasetoParts {
  std::string payload;
  std::string footer;
};
Result<PasetoParts> SplitPaseto(const std::string& token);

// Signs a token with the Ed25519 seed in a chatd key file ("chatd-ed25519-seed-v1
// <base64url seed>", as `chatctl init` writes DIR/relay.key): a token the relay itself
// could have issued, to test claim checks such as expiry.
Result<std::string> SignWithKeyFile(const std::string& key_file, const std::string& claims_json,
                                    const std::string& footer);

}  // namespace chatd::test
