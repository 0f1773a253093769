// fuzz/json_fuzz.cpp — libFuzzer target for json::Parse, the parser of every client frame
// and REST body (untrusted bytes), and for base/utf8.h.
//
// Properties checked on every input:
//   1. json::Parse never crashes, leaks, reads out of bounds or hits UB.
//   2. It accepts what RapidJSON accepts with kParseValidateEncodingFlag (its
//      character-by-character UTF-8 check, which json::Parse replaced with one pass of
//      Utf8InvalidAt), less inputs that are not UTF-8 all through, and builds the same document (compared written out again, since
//      operator== matches duplicate keys to the first of their name).
//   3. Utf8InvalidAt agrees with a byte-at-a-time walk of Utf8Length.
//
// Not built by default. Build and run it with clang from the repository root:
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize=pointer-overflow \
//       -I. fuzz/json_fuzz.cpp base/*.cpp -pthread -o /tmp/json_fuzz
//
// (-fno-sanitize=pointer-overflow: RapidJSON 1.1's internal stack computes null + n before
// its first allocation, which clang reports on every parse; GCC's UBSan, used by the test
// suite, does not check it.)
//   mkdir -p /tmp/json_corpus && echo '{"type":"send_message","content":"caf\u00e9"}' > /tmp/json_corpus/a
//   /tmp/json_fuzz -max_len=1024 -max_total_time=300 /tmp/json_corpus
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "base/json.h"
#include "base/utf8.h"

namespace {

std::string Written(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chatd;
  std::string_view input(reinterpret_cast<const char*>(data), size);

  size_t walk = 0;
  while (walk < input.size()) {
    const size_t n = Utf8Length(input.substr(walk));
    if (n == 0) break;
    walk += n;
  }
  if (Utf8InvalidAt(input) != walk) std::abort();

  json::Doc ours;
  const bool ok = json::Parse(input, &ours).ok();
  rapidjson::Document ref;
  ref.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(input.data(), input.size());
  const bool ref_ok = !ref.HasParseError() && ref.IsObject();
  // The one difference allowed: json::Parse refuses any input that is not UTF-8 all
  // through, and RapidJSON takes some of them: it stops reading at a NUL after the root
  // value, and skips any of the BOM's three bytes at the start, each on its own.
  if (ok != ref_ok && !(ref_ok && !ValidUtf8(input))) std::abort();
  if (ok && Written(ours) != Written(ref)) std::abort();
  return 0;
}
