// fuzz/config_fuzz.cpp — libFuzzer target for the chatd.toml parser (conf/).
//
// Properties checked on every input: ParseConfigText never throws, crashes or hangs
// (toml11 exceptions must all be caught); and any config it accepts survives a round
// trip through FormatValue and ExampleConfig unchanged.
//
// Not built by default. Build and run from the repository root with clang:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//       fuzz/config_fuzz.cpp conf/*.cpp base/*.cpp -o /tmp/config_fuzz
//   mkdir -p /tmp/config_corpus && /tmp/config_fuzz -max_len=4096 /tmp/config_corpus
// A useful seed is the example config: write ExampleConfig({...}) or
// man/chatd.toml.5's EXAMPLE section into the corpus directory.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "conf/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using chatd::Result;
  using namespace chatd::conf;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Result<Config> parsed = ParseConfigText(text, "/fuzz/chatd.toml");
  if (!parsed.ok()) {
    if (parsed.status().message().empty()) __builtin_trap();  // errors must say something
    return 0;
  }
  std::map<std::string, std::string> all;
  for (const KeySpec& k : KeyTable()) all[std::string(k.key)] = FormatValue(k, parsed.value());
  Result<Config> again = ParseConfigText(ExampleConfig(all), "/fuzz/chatd.toml");
  if (!again.ok() || !(again.value() == parsed.value())) __builtin_trap();
  return 0;
}
