// Unit tests: the core's envelope signer (relay/signer.h) returns every submitted
// envelope signed, in submission order, with or without its helper thread.
#include <catch2/catch.hpp>
#include <string>

#include "crypto/envelope.h"
#include "crypto/keys.h"
#include "relay/signer.h"

using namespace chatd;

namespace {

crypto::Envelope Sealed(uint64_t seq) {
  crypto::Envelope env;
  env.origin = "eu1";
  env.seq = seq;
  env.id = 1000 + seq;
  env.chat_id = 7;
  env.author = 3;
  env.device = "d1";
  env.created_at = 1700000000000 + static_cast<int64_t>(seq);
  env.body = "{\"content\":\"m" + std::to_string(seq) + "\"}";
  REQUIRE(crypto::SealBody(env).ok());
  return env;
}

}  // namespace

TEST_CASE("signer: every submitted envelope comes back signed and in order", "[relay]") {
  crypto::KeyPair key = crypto::KeyPair::Generate();
  for (bool parallel : {false, true}) {
    INFO("helper thread: " << parallel);
    BatchSigner signer(key, parallel);
    CHECK(signer.Collect().empty());
    uint64_t seq = 0;
    // Batches of several sizes, the helper racing the collector on each.
    for (int batch : {1, 2, 7, 64, 300, 3}) {
      for (int i = 0; i < batch; ++i) signer.Submit(Sealed(++seq));
      auto envs = signer.Collect();
      REQUIRE(envs.size() == static_cast<size_t>(batch));
      for (size_t i = 0; i < envs.size(); ++i) {
        CHECK(envs[i].seq == seq - static_cast<uint64_t>(batch) + 1 + i);
        CHECK(crypto::Verify(envs[i], key.public_key()).ok());
      }
    }
  }
}
