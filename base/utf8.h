// UTF-8 well-formedness (Unicode 15, table 3-7): no overlong forms, no surrogates, nothing
// past U+10FFFF. One rule for every input chatd checks: JSON frames and bodies, search
// queries, the config file.
#pragma once

#include <cstddef>
#include <string_view>

namespace chatd {

// Length (1-4) of the well-formed UTF-8 sequence at the start of `s`, or 0 if there is
// none (an ill-formed or truncated sequence, or `s` empty).
size_t Utf8Length(std::string_view s);

// Offset of the first byte of `s` that does not start a well-formed sequence, or
// s.size() if all of `s` is well-formed UTF-8. ASCII runs are checked 8 bytes at a time.
size_t Utf8InvalidAt(std::string_view s);

inline bool ValidUtf8(std::string_view s) { return Utf8InvalidAt(s) == s.size(); }

}  // namespace chatd
