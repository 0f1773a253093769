// conf/hostport.h — "HOST:PORT" listen addresses.
//
// A HostPort is a plain value (copy it freely, any thread). The host is kept without
// brackets ("::1"); ToString() adds them back for IPv6 ("[::1]:8080"), so
// ParseHostPort(hp.ToString()) == hp. Port 0 means "let the kernel pick a free port"
// (tests bind to port 0 and read the real port back from the socket).
// Parsing does no DNS and no I/O: a host name is only checked for RFC 1123 syntax.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace chatd::conf {

struct HostPort {
  std::string host;
  uint16_t port = 0;
  std::string ToString() const;
  bool operator==(const HostPort&) const = default;
};

// Accepts "127.0.0.1:8080", "[::1]:8080", "localhost:0", "0.0.0.0:443". Rejects a
// missing or empty host or port, a port above 65535, an unbracketed IPv6 address and
// malformed IPv4 or host names. Errors are kBadRequest with a message of the form
// `expected "HOST:PORT", got "8080"` (plus the reason when it is not obvious).
Result<HostPort> ParseHostPort(std::string_view text);

}  // namespace chatd::conf
