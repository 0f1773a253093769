// Files: single and resumable uploads, downloads through signed URLs, the size limit,
// messages that carry a file_id, and files surviving a restart (PROTOCOL.md, docs/API.md).
#include <sodium.h>

#include <filesystem>

#include "crypto/bytes.h"
#include "crypto/keys.h"
#include "tests/integration/harness.h"
#include "tests/support/fed_checks.h"
#include "tests/support/fed_cluster.h"

namespace chatd::test {
namespace {

namespace fs = std::filesystem;

std::string Sha256Hex(const std::string& data) {
  uint8_t d[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(d, reinterpret_cast<const uint8_t*>(data.data()), data.size());
  return crypto::HexEncode({d, sizeof d});
}

std::string RandomData(size_t n) {
  auto b = crypto::RandomBytes(n);
  return std::string(b.begin(), b.end());
}

HttpResponse PutChunk(const RelayProcess& relay, const std::string& token, const std::string& upload_id, int n,
                      const std::string& data) {
  HttpRequest r;
  r.method = "PUT";
  r.path = "/api/v1/files/uploads/" + upload_id + "/chunks/" + std::to_string(n);
  r.body = data;
  r.content_type = "application/octet-stream";
  r.bearer = token;
  return HttpCall(relay.api(), r);
}

// GET of a file_url (a path on the relay's API).
HttpResponse Download(const RelayProcess& relay, const std::string& file_url) {
  HttpRequest r;
  r.path = file_url;
  r.timeout_ms = 60000;
  return HttpCall(relay.api(), r);
}

// Regular files under DIR/blobs (every blob, however nested).
size_t BlobCount(const RelayProcess& relay) {
  size_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(relay.dir() + "/blobs", ec)) {
    if (e.is_regular_file()) ++n;
  }
  return n;
}

// A file's answer (upload or GET /files/{id}) has every field PROTOCOL.md lists.
void CheckFile(const HttpResponse& r, int status, const std::string& name, const std::string& mime,
               const std::string& type, const std::string& data) {
  INFO(r.Describe());
  REQUIRE(r.status == status);
  REQUIRE(r.success());
  const auto& d = r.data();
  CHECK(IsDecimalId(Get(d, "file_id")));
  CHECK(StrOf(Get(d, "original_filename")) == name);
  CHECK(StrOf(Get(d, "mime_type")) == mime);
  CHECK(StrOf(Get(d, "file_type")) == type);
  REQUIRE(Get(d, "file_size").IsInt64());
  CHECK(Get(d, "file_size").GetInt64() == static_cast<int64_t>(data.size()));
  CHECK(StrOf(Get(d, "sha256")) == Sha256Hex(data));
  CHECK(StrOf(Get(d, "file_url")).rfind("/api/v1/files/", 0) == 0);
  CHECK(Get(d, "thumbnail_url").IsNull());
  CHECK(StrOf(Get(d, "upload_status")) == "complete");
}

// Downloads a file_url and checks the bytes, their hash and the headers.
void CheckDownload(const RelayProcess& relay, const std::string& file_url, const std::string& data,
                   const std::string& mime) {
  HttpResponse got = Download(relay, file_url);
  INFO(file_url << " → HTTP " << got.status << " " << got.body.substr(0, 200));
  REQUIRE(got.status == 200);
  CHECK(got.body.size() == data.size());
  CHECK(got.body == data);
  CHECK(Sha256Hex(got.body) == Sha256Hex(data));
  CHECK(got.Header("Content-Type") == mime);
  CHECK(got.Header("Content-Disposition").rfind("attachment; filename=", 0) == 0);
}

// A file_url for `file_id` expiring at exp_ms, signed as the relay signs (key derived from
// DIR/relay.key): lets the test make a correctly signed URL that has already expired.
std::string SignedPath(const RelayProcess& relay, const std::string& file_id, int64_t exp_ms) {
  auto key = crypto::KeyPair::LoadFile(relay.dir() + "/relay.key");
  REQUIRE(key.ok());
  crypto::SecretBytes k = key->DeriveKey("chatd file url v1");
  std::string msg = "file:" + file_id + ":" + std::to_string(exp_ms);
  uint8_t mac[crypto_auth_BYTES];
  crypto_auth(mac, reinterpret_cast<const uint8_t*>(msg.data()), msg.size(), k.data());
  return "/api/v1/files/" + file_id + "/content?exp=" + std::to_string(exp_ms) +
         "&sig=" + crypto::HexEncode({mac, sizeof mac});
}

// A relay (with `config` edits) where alice and bob share a chat and carol is in none.
struct Fixture {
  std::unique_ptr<RelayProcess> relay;
  TestUser alice, bob, carol;
  std::string chat;
};
Fixture Setup(const std::vector<ConfigEdit>& config = {}, const std::string& chat_type = "direct") {
  RelayOptions opts = Options();
  opts.config = config;
  Fixture f;
  f.relay = StartRelay(opts);
  f.alice = MUST(RegisterUser(*f.relay, "alice"));
  f.bob = MUST(RegisterUser(*f.relay, "bob"));
  f.carol = MUST(RegisterUser(*f.relay, "carol"));
  f.chat = MUST(CreateChat(f.relay->api(), f.alice.access_token, chat_type, {f.bob.user_id}));
  return f;
}

}  // namespace

TEST_CASE("files: upload, download by signed URL, members only", "[integration][files]") {
  Fixture f = Setup({}, "group");
  auto& [relay, alice, bob, carol, chat] = f;

  // A small text file; the name loses its path and control characters.
  const std::string small = "hello, files\n";
  HttpResponse up = Upload(*relay, alice.access_token, chat, "../../etc/\x01notes.txt", "text/plain", small);
  CheckFile(up, 201, "notes.txt", "text/plain", "file", small);
  const std::string small_id = StrOf(Get(up.data(), "file_id"));
  CheckDownload(*relay, StrOf(Get(up.data(), "file_url")), small, "text/plain");

  // A multi-MiB image.
  const std::string big = RandomData(3 * 1024 * 1024 + 123);
  HttpResponse up_big = Upload(*relay, alice.access_token, chat, "photo.png", "image/png", big);
  CheckFile(up_big, 201, "photo.png", "image/png", "image", big);
  const std::string big_id = StrOf(Get(up_big.data(), "file_id"));
  CHECK(FileExists(relay->dir() + "/blobs/" + Sha256Hex(big).substr(0, 2) + "/" + Sha256Hex(big)));

  // The same content again: a new file, the same blob.
  size_t blobs = BlobCount(*relay);
  CHECK(blobs == 2);
  HttpResponse again = Upload(*relay, bob.access_token, chat, "copy.png", "image/png", big);
  CheckFile(again, 201, "copy.png", "image/png", "image", big);
  CHECK(StrOf(Get(again.data(), "file_id")) != big_id);
  CHECK(BlobCount(*relay) == blobs);

  // Another member gets the metadata with a fresh URL and downloads the same bytes.
  HttpResponse meta = ApiGet(relay->api(), "/files/" + big_id, bob.access_token);
  CheckFile(meta, 200, "photo.png", "image/png", "image", big);
  CheckDownload(*relay, StrOf(Get(meta.data(), "file_url")), big, "image/png");

  // Not a member: 403 not_member; no such file: 404; no token: 401.
  CheckRestError(ApiGet(relay->api(), "/files/" + big_id, carol.access_token), 403, "not_member");
  CheckRestError(ApiGet(relay->api(), "/files/123456789", alice.access_token), 404, "not_found");
  CheckRestError(ApiGet(relay->api(), "/files/" + big_id), 401, "unauthorized");
  // A non-member cannot upload into the chat either, and nothing is stored.
  CheckRestError(Upload(*relay, carol.access_token, chat, "x.bin", "application/octet-stream", "carol's"), 403,
                 "not_member");
  CHECK(BlobCount(*relay) == blobs);

  SECTION("a tampered, foreign or expired URL is refused") {
    std::string url = StrOf(Get(meta.data(), "file_url"));
    std::string bad_sig = url;
    bad_sig.back() = bad_sig.back() == '0' ? '1' : '0';
    CheckRestError(Download(*relay, bad_sig), 403, "forbidden");
    // The same signature for another file.
    std::string other = url;
    other.replace(other.find(big_id), big_id.size(), small_id);
    CheckRestError(Download(*relay, other), 403, "forbidden");
    // A later exp with the old signature.
    size_t e = url.find("exp=") + 4;
    size_t amp = url.find('&', e);
    std::string later = url.substr(0, e) + std::to_string(std::stoll(url.substr(e, amp - e)) + 1000) + url.substr(amp);
    CheckRestError(Download(*relay, later), 403, "forbidden");
    CheckRestError(Download(*relay, "/api/v1/files/" + big_id + "/content"), 403, "forbidden");
    // Correctly signed but expired: 403; the same signer with a future exp works (so the
    // refusal above is the expiry, not the signature).
    HttpResponse expired = Download(*relay, SignedPath(*relay, big_id, NowMs() - 1000));
    CheckRestError(expired, 403, "forbidden");
    CHECK(expired.error_message().find("expired") != std::string::npos);
    CheckDownload(*relay, SignedPath(*relay, big_id, NowMs() + 60000), big, "image/png");
  }

  SECTION("bad uploads get clear errors and store nothing") {
    HttpRequest r;
    r.method = "POST";
    r.path = "/api/v1/files/upload";
    r.bearer = alice.access_token;
    r.body = "{\"chat_id\":\"" + chat + "\"}";
    CheckRestError(HttpCall(relay->api(), r), 415, "unsupported");
    CheckRestError(Upload(*relay, alice.access_token, chat, "", "", ""), 400, "bad_request");  // no file part
    CheckRestError(Upload(*relay, alice.access_token, "", "a.txt", "text/plain", "x"), 400, "bad_request");
    CheckRestError(Upload(*relay, alice.access_token, "not-an-id", "a.txt", "text/plain", "x"), 400, "bad_request");
    CheckRestError(Upload(*relay, alice.access_token, "123456789", "a.txt", "text/plain", "x"), 404, "not_found");
    CheckRestError(Upload(*relay, "", chat, "a.txt", "text/plain", "x"), 401, "unauthorized");
    CHECK(BlobCount(*relay) == blobs);
    // A malformed MIME type falls back to application/octet-stream.
    HttpResponse odd = Upload(*relay, alice.access_token, chat, "odd", "not a mime/type;x", "odd");
    CheckFile(odd, 201, "odd", "application/octet-stream", "file", "odd");
  }
}

TEST_CASE("files: over limits.max_file_bytes → 413 and nothing stored", "[integration][files]") {
  Fixture f = Setup({{"limits", "max_file_bytes", "65536"}, {"limits", "max_body_bytes", "32768"}});
  auto& [relay, alice, bob, carol, chat] = f;

  // Just over the limit (httplib reads it; the handler refuses it) and far over (refused
  // by its Content-Length): 413 both times, and no blob, no temp file.
  CheckRestError(Upload(*relay, alice.access_token, chat, "a.bin", "application/octet-stream", RandomData(65537)), 413,
                 "too_large");
  CheckRestError(
      Upload(*relay, alice.access_token, chat, "b.bin", "application/octet-stream", RandomData(2 * 1024 * 1024)), 413,
      "too_large");
  CHECK(BlobCount(*relay) == 0);
  CHECK(fs::is_empty(relay->dir() + "/tmp"));
  // A resumable upload announcing too much is refused up front.
  std::string create = JsonBuilder()
                           .Add("file_name", "c.bin")
                           .Add("file_size", int64_t{65537})
                           .Add("mime_type", "application/octet-stream")
                           .Add("chat_id", chat)
                           .str();
  CheckRestError(ApiPost(relay->api(), "/files/uploads", create, alice.access_token), 413, "too_large");
  // At the limit it is stored, and the relay still answers normally.
  const std::string ok = RandomData(65536);
  CheckFile(Upload(*relay, alice.access_token, chat, "ok.bin", "application/octet-stream", ok), 201, "ok.bin",
            "application/octet-stream", "file", ok);
  CHECK(BlobCount(*relay) == 1);
  // JSON routes keep limits.max_body_bytes although uploads may be larger (kept small:
  // such a body is refused before it is read, and the connection closed).
  std::string huge = JsonBuilder().Add("message_type", "text").Add("content", std::string(40000, 'x')).str();
  CheckRestError(ApiPost(relay->api(), "/chats/" + chat + "/messages", huge, alice.access_token), 413, "too_large");
}

TEST_CASE("files: messages carry a file_id of their chat", "[integration][files]") {
  Fixture f = Setup();
  auto& [relay, alice, bob, carol, chat] = f;
  std::string other_chat = MUST(CreateChat(relay->api(), carol.access_token, "direct", {alice.user_id}));
  HttpResponse up = Upload(*relay, alice.access_token, chat, "cat.jpg", "image/jpeg", "jpegbytes");
  REQUIRE(up.status == 201);
  std::string file_id = StrOf(Get(up.data(), "file_id"));
  HttpResponse elsewhere = Upload(*relay, carol.access_token, other_chat, "x.jpg", "image/jpeg", "other");
  REQUIRE(elsewhere.status == 201);
  std::string foreign_id = StrOf(Get(elsewhere.data(), "file_id"));
  const std::string msgs = "/chats/" + chat + "/messages";

  auto bob_ws = MUST(Auth(*relay, bob.access_token));
  // REST: an image with no caption.
  HttpResponse sent = ApiPost(
      relay->api(), msgs, JsonBuilder().Add("message_type", "image").Add("content", "").Add("file_id", file_id).str(),
      alice.access_token);
  INFO(sent.Describe());
  REQUIRE(sent.status == 201);
  CHECK(StrOf(Get(sent.data(), "file_id")) == file_id);
  auto ev = bob_ws.WaitFor("new_message", kEventMs);
  REQUIRE(ev.ok());
  CHECK(StrOf(At(ev->root(), "message.file_id")) == file_id);

  // WebSocket: a file with a caption.
  auto alice_ws = MUST(Auth(*relay, alice.access_token));
  SEND(alice_ws, JsonBuilder()
                     .Add("type", "send_message")
                     .Add("chat_id", chat)
                     .Add("message_type", "file")
                     .Add("content", "the cat, again")
                     .Add("temp_id", "f-1")
                     .Add("file_id", file_id)
                     .str());
  auto ack = alice_ws.WaitForAny({"message_sent", "error"}, kEventMs);
  REQUIRE(ack.ok());
  INFO(ack->text());
  REQUIRE(ack->type() == "message_sent");

  auto hist = MUST(History(relay->api(), bob.access_token, chat));
  REQUIRE(hist.size() == 2);
  CHECK(hist[0].Str("file_id") == file_id);
  CHECK(hist[0].Str("content") == "the cat, again");
  CHECK(hist[1].Str("file_id") == file_id);
  CHECK(hist[1].Str("message_type") == "image");

  // Unknown or another chat's file: 404 on both paths; text with a file: 400. Nothing stored.
  auto with_file = [](const std::string& type, const std::string& id) {
    return JsonBuilder().Add("message_type", type).Add("content", "x").Add("file_id", id).str();
  };
  CheckRestError(ApiPost(relay->api(), msgs, with_file("file", "123456789"), alice.access_token), 404, "not_found");
  CheckRestError(ApiPost(relay->api(), msgs, with_file("image", foreign_id), alice.access_token), 404, "not_found");
  CheckRestError(ApiPost(relay->api(), msgs, with_file("text", file_id), alice.access_token), 400, "bad_request");
  SEND(alice_ws, JsonBuilder()
                     .Add("type", "send_message")
                     .Add("chat_id", chat)
                     .Add("message_type", "file")
                     .Add("content", "")
                     .Add("temp_id", "f-2")
                     .Add("file_id", foreign_id)
                     .str());
  auto err = alice_ws.WaitForAny({"message_sent", "error"}, kEventMs);
  REQUIRE(err.ok());
  CHECK(err->type() == "error");
  CHECK(err->Str("code") == "not_found");
  CHECK(err->Str("ref") == "f-2");
  CHECK(MUST(History(relay->api(), bob.access_token, chat)).size() == 2);
}

TEST_CASE("files: a forwarded file message lets the new chat's members read the file", "[integration][files]") {
  Fixture f = Setup();
  auto& [relay, alice, bob, carol, chat] = f;
  HttpResponse up = Upload(*relay, alice.access_token, chat, "plan.pdf", "application/pdf", "%PDF-1.7 plan");
  REQUIRE(up.status == 201);
  const std::string file_id = StrOf(Get(up.data(), "file_id"));
  Json post = MUST(
      Json::Parse(ApiPost(relay->api(), "/chats/" + chat + "/messages",
                          JsonBuilder().Add("message_type", "file").Add("file_id", file_id).str(), alice.access_token)
                      .body));
  const std::string mid = StrOf(At(post.root(), "data.message_id"));
  REQUIRE(!mid.empty());
  CheckRestError(ApiGet(relay->api(), "/files/" + file_id, carol.access_token), 403, "not_member");

  // alice forwards it to her chat with carol: carol can now read the file, and only that.
  std::string with_carol = MUST(CreateChat(relay->api(), alice.access_token, "direct", {carol.user_id}));
  HttpResponse fwd =
      ApiPost(relay->api(), "/chats/" + with_carol + "/messages",
              "{\"forward_from\":{\"chat_id\":\"" + chat + "\",\"message_id\":\"" + mid + "\"}}", alice.access_token);
  INFO(fwd.Describe());
  REQUIRE(fwd.status == 201);
  CHECK(StrOf(Get(fwd.data(), "file_id")) == file_id);
  CHECK(StrOf(Get(fwd.data(), "message_type")) == "file");
  HttpResponse meta = ApiGet(relay->api(), "/files/" + file_id, carol.access_token);
  INFO(meta.Describe());
  REQUIRE(meta.status == 200);
  CheckDownload(*relay, StrOf(Get(meta.data(), "file_url")), "%PDF-1.7 plan", "application/pdf");
  // Once the copy is deleted, the file is hers no more.
  REQUIRE(ApiDelete(relay->api(), "/chats/" + with_carol + "/messages/" + StrOf(Get(fwd.data(), "message_id")),
                    alice.access_token)
              .status == 204);
  CheckRestError(ApiGet(relay->api(), "/files/" + file_id, carol.access_token), 403, "not_member");
}

TEST_CASE("files: resumable upload, out of order, re-PUT, missing chunk, restart", "[integration][files]") {
  Fixture f = Setup({{"limits", "upload_chunk_bytes", "16384"}});
  auto& [relay, alice, bob, carol, chat] = f;

  const std::string data = RandomData(3 * 16384 + 848);  // four chunks, the last short
  auto chunk = [&](int n) { return data.substr(static_cast<size_t>(n) * 16384, 16384); };
  std::string create = JsonBuilder()
                           .Add("file_name", "report.pdf")
                           .Add("file_size", static_cast<int64_t>(data.size()))
                           .Add("mime_type", "application/pdf")
                           .Add("chat_id", chat)
                           .str();
  CheckRestError(ApiPost(relay->api(), "/files/uploads", create, carol.access_token), 403, "not_member");
  HttpResponse started = ApiPost(relay->api(), "/files/uploads", create, alice.access_token);
  INFO(started.Describe());
  REQUIRE(started.status == 201);
  std::string upload_id = StrOf(Get(started.data(), "upload_id"));
  CHECK(IsDecimalId(Get(started.data(), "upload_id")));
  REQUIRE(Get(started.data(), "chunk_size").IsInt64());
  CHECK(Get(started.data(), "chunk_size").GetInt64() == 16384);

  for (int n : {2, 0, 3, 0}) {  // out of order, chunk 0 twice
    HttpResponse r = PutChunk(*relay, alice.access_token, upload_id, n, chunk(n));
    INFO("chunk " << n << ": " << r.Describe());
    CHECK(r.status == 200);
  }
  // Wrong sizes, out of range, someone else's upload: refused.
  CheckRestError(PutChunk(*relay, alice.access_token, upload_id, 1, chunk(1) + "x"), 400, "bad_request");
  CheckRestError(PutChunk(*relay, alice.access_token, upload_id, 1, chunk(1).substr(1)), 400, "bad_request");
  CheckRestError(PutChunk(*relay, alice.access_token, upload_id, 3, chunk(2)), 400, "bad_request");
  CheckRestError(PutChunk(*relay, alice.access_token, upload_id, 4, "x"), 400, "bad_request");
  CheckRestError(PutChunk(*relay, bob.access_token, upload_id, 1, chunk(1)), 403, "forbidden");
  CheckRestError(PutChunk(*relay, alice.access_token, "123456789", 1, chunk(1)), 404, "not_found");

  // Chunk 1 is missing: 409 naming it.
  HttpResponse early = ApiPost(relay->api(), "/files/uploads/" + upload_id + "/complete", "{}", alice.access_token);
  CheckRestError(early, 409, "conflict");
  CHECK(early.error_message().find("1") != std::string::npos);

  REQUIRE(PutChunk(*relay, alice.access_token, upload_id, 1, chunk(1)).status == 200);
  CheckRestError(ApiPost(relay->api(), "/files/uploads/" + upload_id + "/complete", "{}", bob.access_token), 403,
                 "forbidden");
  HttpResponse done = ApiPost(relay->api(), "/files/uploads/" + upload_id + "/complete", "{}", alice.access_token);
  CheckFile(done, 201, "report.pdf", "application/pdf", "file", data);
  std::string file_id = StrOf(Get(done.data(), "file_id"));
  CheckDownload(*relay, StrOf(Get(done.data(), "file_url")), data, "application/pdf");
  // The same bytes in one request: the same sha256, the same blob.
  HttpResponse single = Upload(*relay, alice.access_token, chat, "report.pdf", "application/pdf", data);
  CheckFile(single, 201, "report.pdf", "application/pdf", "file", data);
  CHECK(StrOf(Get(single.data(), "sha256")) == StrOf(Get(done.data(), "sha256")));
  CHECK(BlobCount(*relay) == 1);
  // Completed: the upload is gone, with its chunks.
  CheckRestError(ApiPost(relay->api(), "/files/uploads/" + upload_id + "/complete", "{}", alice.access_token), 404,
                 "not_found");
  CHECK_FALSE(FileExists(relay->dir() + "/uploads/" + upload_id));

  // After a restart the file is still there, with a fresh URL.
  REQUIRE(MUST(relay->Stop()) == 0);
  MUST(relay->Start());
  HttpResponse meta = ApiGet(relay->api(), "/files/" + file_id, bob.access_token);
  CheckFile(meta, 200, "report.pdf", "application/pdf", "file", data);
  CheckDownload(*relay, StrOf(Get(meta.data(), "file_url")), data, "application/pdf");
}

TEST_CASE("files: a relay without the blob fetches it from the origin, sha256 checked",
          "[integration][files][federation]") {
  const std::string chatctl = CHATCTL_BIN;
  // Fixed API ports: each relay names the other's API in its [[peers]] table.
  const int api_a = PickFreePort(), api_b = PickFreePort();
  RelayOptions oa = FedOptions(Options("eu1", 1)), ob = FedOptions(Options("us1", 2));
  oa.config.push_back({"listen", "api", "\"127.0.0.1:" + std::to_string(api_a) + "\""});
  ob.config.push_back({"listen", "api", "\"127.0.0.1:" + std::to_string(api_b) + "\""});
  ob.config.push_back({"limits", "max_file_bytes", "2097152"});  // bob's relay takes 2 MiB at most
  RelayProcess a(oa), b(ob);
  MUST(a.Init());
  MUST(b.Init());
  const std::string key_a = MUST(PublicKeyOf(chatctl, a)), key_b = MUST(PublicKeyOf(chatctl, b));
  auto add = [&](const RelayProcess& r, std::vector<std::string> args) {
    CommandResult res = Chatctl(chatctl, r, args);
    INFO(res.err);
    REQUIRE(res.exit_code == 0);
  };
  add(b, {"peers", "add", "eu1", "--key", key_a, "--api-url", "http://127.0.0.1:" + std::to_string(api_a)});
  add(a, {"peers", "add", "us1", "--key", key_b, "--url", "ws://127.0.0.1:" + std::to_string(FedPortOf(ob)),
          "--api-url", "http://127.0.0.1:" + std::to_string(api_b)});
  MUST(b.Start());
  MUST(a.Start());
  REQUIRE(WaitLinked(chatctl, a, "us1", 15000));

  TestUser alice = MUST(RegisterUser(a, "alice"));
  TestUser bob = MUST(RegisterUser(b, "bob"));
  REQUIRE(WaitFor([&] { return ApiGet(a.api(), "/users/" + bob.user_id, alice.access_token).status == 200; }, 15000));
  std::string chat = MUST(CreateChat(a.api(), alice.access_token, "direct", {bob.user_id}));
  const std::string data = RandomData(1024 * 1024 + 7);
  HttpResponse up = Upload(a, alice.access_token, chat, "song.ogg", "audio/ogg", data);
  CheckFile(up, 201, "song.ogg", "audio/ogg", "audio", data);
  const std::string file_id = StrOf(Get(up.data(), "file_id"));

  // The metadata replicates; the bytes do not, until bob downloads them from his relay.
  HttpResponse meta;
  REQUIRE(WaitFor(
      [&] {
        meta = ApiGet(b.api(), "/files/" + file_id, bob.access_token);
        return meta.status == 200;
      },
      15000));
  CheckFile(meta, 200, "song.ogg", "audio/ogg", "audio", data);
  CHECK(BlobCount(b) == 0);
  CheckDownload(b, StrOf(Get(meta.data(), "file_url")), data, "audio/ogg");
  CHECK(FileExists(b.dir() + "/blobs/" + Sha256Hex(data).substr(0, 2) + "/" + Sha256Hex(data)));
  // A message with the file, sent at bob's relay.
  HttpResponse sent = ApiPost(
      b.api(), "/chats/" + chat + "/messages",
      JsonBuilder().Add("message_type", "audio").Add("content", "").Add("file_id", file_id).str(), bob.access_token);
  CHECK(sent.status == 201);

  // The peer route serves only signed requests of pinned peers.
  HttpRequest r;
  r.path = "/federation/v1/blobs/" + Sha256Hex(data);
  CheckRestError(HttpCall(a.api(), r), 403, "forbidden");
  r.headers = {{"X-Chatd-Relay", "us1"},
               {"X-Chatd-Time", std::to_string(NowMs())},
               {"X-Chatd-Signature", std::string(128, '0')}};
  CheckRestError(HttpCall(a.api(), r), 403, "forbidden");

  // A file larger than bob's relay accepts from its own users: the metadata replicates, but
  // the relay does not fetch the bytes, whatever size a peer announces.
  const std::string big = RandomData(3 * 1024 * 1024);
  HttpResponse up_big = Upload(a, alice.access_token, chat, "big.bin", "application/octet-stream", big);
  REQUIRE(up_big.status == 201);
  const std::string big_id = StrOf(Get(up_big.data(), "file_id"));
  HttpResponse big_meta;
  REQUIRE(WaitFor(
      [&] {
        big_meta = ApiGet(b.api(), "/files/" + big_id, bob.access_token);
        return big_meta.status == 200;
      },
      15000));
  const size_t blobs_before = BlobCount(b);
  HttpResponse refused = Download(b, StrOf(Get(big_meta.data(), "file_url")));
  INFO(refused.body);
  CHECK(refused.status == 503);
  CHECK(refused.body.find("max_file_bytes") != std::string::npos);
  CHECK(BlobCount(b) == blobs_before);

  // bob deletes his message, the only one showing the song: the file is gone on his relay
  // at once, and on alice's relay as soon as the delete arrives there.
  REQUIRE(sent.status == 201);
  REQUIRE(ApiDelete(b.api(), "/chats/" + chat + "/messages/" + StrOf(Get(sent.data(), "message_id")), bob.access_token)
              .status == 204);
  CheckRestError(ApiGet(b.api(), "/files/" + file_id, bob.access_token), 404, "not_found");
  CHECK(WaitFor([&] { return ApiGet(a.api(), "/files/" + file_id, alice.access_token).status == 404; }, 15000));
}

}  // namespace chatd::test

namespace chatd::test {
namespace {

bool HasBlob(const RelayProcess& relay, const std::string& data) {
  const std::string sha = Sha256Hex(data);
  return fs::exists(relay.dir() + "/blobs/" + sha.substr(0, 2) + "/" + sha);
}

// Posts a message showing file_id; its message_id.
std::string PostFile(const RelayProcess& relay, const std::string& token, const std::string& chat,
                     const std::string& file_id) {
  HttpResponse r =
      ApiPost(relay.api(), "/chats/" + chat + "/messages",
              JsonBuilder().Add("message_type", "file").Add("content", "").Add("file_id", file_id).str(), token);
  INFO(r.Describe());
  REQUIRE(r.status == 201);
  return StrOf(Get(r.data(), "message_id"));
}

std::string UploadId(const RelayProcess& relay, const std::string& token, const std::string& chat,
                     const std::string& data) {
  HttpResponse up = Upload(relay, token, chat, "f.bin", "application/octet-stream", data);
  INFO(up.Describe());
  REQUIRE(up.status == 201);
  return StrOf(Get(up.data(), "file_id"));
}

// A janitor pass that began after this call has ended (two passes counted from now).
void WaitForJanitorPass(const RelayProcess& relay) {
  const int64_t start = MUST(MetricValue(relay, "chatd_files_janitor_passes_total"));
  REQUIRE_MSG(WaitFor(
                  [&] {
                    auto n = MetricValue(relay, "chatd_files_janitor_passes_total");
                    return n.ok() && *n >= start + 2;
                  },
                  15000),
              "the files janitor made no pass");
}

}  // namespace

TEST_CASE("files: a file goes with the last message that shows it, and its content leaves the disk",
          "[integration][files]") {
  Fixture f = Setup({{"api", "file_gc_delay", "1"}});
  auto& [relay, alice, bob, carol, chat] = f;
  const std::string kept = RandomData(3000), dropped = RandomData(2000);
  const std::string file = UploadId(*relay, alice.access_token, chat, kept);
  const std::string m1 = PostFile(*relay, alice.access_token, chat, file);
  const std::string m2 = PostFile(*relay, bob.access_token, chat, file);
  // The same content, uploaded again in carol's chat with alice, and sent there: one blob.
  const std::string other_chat = MUST(CreateChat(relay->api(), carol.access_token, "direct", {alice.user_id}));
  const std::string twin = UploadId(*relay, carol.access_token, other_chat, kept);
  PostFile(*relay, carol.access_token, other_chat, twin);
  const std::string file2 = UploadId(*relay, alice.access_token, chat, dropped);
  const std::string m3 = PostFile(*relay, alice.access_token, chat, file2);
  HttpResponse meta = ApiGet(relay->api(), "/files/" + file, bob.access_token);
  REQUIRE(meta.status == 200);
  const std::string url = StrOf(Get(meta.data(), "file_url"));
  CheckDownload(*relay, url, kept, "application/octet-stream");

  // One of the two messages deleted for everyone: the other still shows the file.
  REQUIRE(ApiDelete(relay->api(), "/chats/" + chat + "/messages/" + m1, alice.access_token).status == 204);
  REQUIRE(ApiGet(relay->api(), "/files/" + file, bob.access_token).status == 200);
  CheckDownload(*relay, url, kept, "application/octet-stream");

  // The last one deleted: the file is gone for everyone, by id and by its signed URL, and
  // cannot be sent again.
  REQUIRE(ApiDelete(relay->api(), "/chats/" + chat + "/messages/" + m2, bob.access_token).status == 204);
  CheckRestError(ApiGet(relay->api(), "/files/" + file, bob.access_token), 404, "not_found");
  CheckRestError(ApiGet(relay->api(), "/files/" + file, alice.access_token), 404, "not_found");
  CHECK(Download(*relay, url).status == 404);
  CheckRestError(ApiPost(relay->api(), "/chats/" + chat + "/messages",
                         JsonBuilder().Add("message_type", "file").Add("content", "").Add("file_id", file).str(),
                         alice.access_token),
                 404, "not_found");

  // Content no file in use needs leaves the disk; content another file uses stays.
  REQUIRE(HasBlob(*relay, dropped));
  REQUIRE(ApiDelete(relay->api(), "/chats/" + chat + "/messages/" + m3, alice.access_token).status == 204);
  REQUIRE_MSG(WaitFor([&] { return !HasBlob(*relay, dropped); }, 15000), "the unused content stayed on disk");
  WaitForJanitorPass(*relay);
  CHECK(HasBlob(*relay, kept));
  CHECK(MUST(MetricValue(*relay, "chatd_blobs_deleted_total")) == 1);
  HttpResponse twin_meta = ApiGet(relay->api(), "/files/" + twin, carol.access_token);
  REQUIRE(twin_meta.status == 200);
  CheckDownload(*relay, StrOf(Get(twin_meta.data(), "file_url")), kept, "application/octet-stream");

  // After a restart (schema, janitor and all) the same holds.
  REQUIRE(MUST(relay->Stop()) == 0);
  MUST(relay->Start());
  CheckRestError(ApiGet(relay->api(), "/files/" + file, bob.access_token), 404, "not_found");
  REQUIRE(ApiGet(relay->api(), "/files/" + twin, carol.access_token).status == 200);
}

TEST_CASE("files: a file never sent lives api.unsent_file_ttl, a disappearing message takes its file",
          "[integration][files]") {
  Fixture f = Setup({{"api", "file_gc_delay", "1"}, {"api", "unsent_file_ttl", "3"}}, "group");
  auto& [relay, alice, bob, carol, chat] = f;
  // Sent at once: it outlives the unsent limit while its message shows it.
  const std::string sent_data = RandomData(1500), unsent_data = RandomData(1600), brief_data = RandomData(1700);
  const std::string sent = UploadId(*relay, alice.access_token, chat, sent_data);
  PostFile(*relay, alice.access_token, chat, sent);
  const std::string unsent = UploadId(*relay, alice.access_token, chat, unsent_data);
  REQUIRE_MSG(WaitFor([&] { return ApiGet(relay->api(), "/files/" + unsent, bob.access_token).status == 404; }, 15000),
              "a file never sent stayed readable past api.unsent_file_ttl");
  CheckRestError(ApiPost(relay->api(), "/chats/" + chat + "/messages",
                         JsonBuilder().Add("message_type", "file").Add("content", "").Add("file_id", unsent).str(),
                         alice.access_token),
                 404, "not_found");
  REQUIRE_MSG(WaitFor([&] { return !HasBlob(*relay, unsent_data); }, 15000), "its content stayed on disk");
  CHECK(ApiGet(relay->api(), "/files/" + sent, bob.access_token).status == 200);
  CHECK(HasBlob(*relay, sent_data));

  // A scheduled message keeps its file past the unsent limit, and sends it.
  const std::string later_data = RandomData(1800);
  const std::string later = UploadId(*relay, alice.access_token, chat, later_data);
  HttpResponse scheduled = ApiPost(relay->api(), "/chats/" + chat + "/messages",
                                   JsonBuilder()
                                       .Add("message_type", "file")
                                       .Add("content", "")
                                       .Add("file_id", later)
                                       .Add("send_at", Rfc3339Ms(NowMs() + 5000))
                                       .str(),
                                   alice.access_token);
  INFO(scheduled.Describe());
  REQUIRE(scheduled.status == 202);
  REQUIRE_MSG(WaitFor(
                  [&] {
                    auto hist = History(relay->api(), bob.access_token, chat);
                    return hist.ok() && !hist->empty() && hist->front().Str("file_id") == later;
                  },
                  20000),
              "the scheduled message with its file was not sent");
  CHECK(ApiGet(relay->api(), "/files/" + later, bob.access_token).status == 200);

  // In a chat with a 2 s timer, the file goes when its message disappears.
  REQUIRE(
      ApiPatch(relay->api(), "/chats/" + chat, JsonBuilder().Add("disappearing_seconds", 2).str(), alice.access_token)
          .status == 200);
  const std::string brief = UploadId(*relay, alice.access_token, chat, brief_data);
  const std::string m = PostFile(*relay, alice.access_token, chat, brief);
  REQUIRE_MSG(WaitFor([&] { return ApiGet(relay->api(), "/files/" + brief, bob.access_token).status == 404; }, 15000),
              "the disappeared message's file stayed readable");
  for (const Json& shown : MUST(History(relay->api(), bob.access_token, chat))) CHECK(shown.Str("message_id") != m);
  REQUIRE_MSG(WaitFor([&] { return !HasBlob(*relay, brief_data); }, 15000), "its content stayed on disk");
  CHECK(ApiGet(relay->api(), "/files/" + sent, bob.access_token).status == 200);
}

}  // namespace chatd::test
