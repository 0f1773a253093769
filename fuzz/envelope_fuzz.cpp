// fuzz/envelope_fuzz.cpp — libFuzzer target for crypto::DecodeEnvelope, the parser that
// reads envelopes from federation peers (untrusted bytes).
//
// Properties checked on every input:
//   1. DecodeEnvelope never crashes, leaks, reads out of bounds or hits UB (the
//      sanitizers turn any of these into a reported crash).
//   2. Anything it accepts satisfies CheckBounds and is canonical: re-encoding yields
//      exactly the input bytes, so one envelope has one wire form.
//   3. Verify, HeaderHash and Erase are safe on whatever DecodeEnvelope accepts.
//
// Not built by default (CMake builds only the product and the tests). Build and run it
// with clang from the repository root:
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//       fuzz/envelope_fuzz.cpp crypto/*.cpp base/*.cpp \
//       $(pkg-config --cflags --libs libsodium) -pthread -o /tmp/envelope_fuzz
//   mkdir -p /tmp/envelope_corpus
//   /tmp/envelope_fuzz -max_len=4096 -max_total_time=300 /tmp/envelope_corpus
//
// Seed the corpus with the "wire" values of tests/vectors/envelope_v1.txt (hex-decoded,
// e.g. `xxd -r -p`) so the fuzzer starts from valid envelopes instead of discovering the
// magic and layout on its own.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "crypto/envelope.h"
#include "crypto/keys.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chatd::crypto;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto decoded = DecodeEnvelope(input);
  if (!decoded.ok()) return 0;

  Envelope& env = decoded.value();
  if (!CheckBounds(env).ok()) std::abort();
  if (EncodeEnvelope(env) != input) std::abort();

  // Exercise the verification path with a fixed key (almost always a bad signature).
  static const PublicKey kKey = [] {
    uint8_t seed[32] = {};
    return KeyPair::FromSeed(seed).value().public_key();
  }();
  (void)Verify(env, kKey);
  (void)HeaderHash(env);
  Erase(env);
  (void)DecodeEnvelope(EncodeEnvelope(env));
  return 0;
}
