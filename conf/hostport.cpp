// conf/hostport.cpp — parsing and printing "HOST:PORT".
#include "conf/hostport.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>

namespace chatd::conf {
namespace {

// The input as a double-quoted, printable string for error messages (capped at 64 bytes).
std::string Quoted(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < 64; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > 64) out += "...";
  return out + "\"";
}

Status Bad(std::string_view text, std::string_view reason = {}) {
  std::string m = "expected \"HOST:PORT\", got " + Quoted(text);
  if (!reason.empty()) m.append(" (").append(reason).append(")");
  return BadRequest(std::move(m));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// RFC 1123 host name: dot-separated labels of [A-Za-z0-9-], 1..63 chars, no leading or
// trailing '-', at most 253 chars in all.
bool IsHostName(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  size_t start = 0;
  while (true) {
    const size_t dot = h.find('.', start);
    const std::string_view label =
        h.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      const bool ok = IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
      if (!ok) return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

}  // namespace

std::string HostPort::ToString() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<HostPort> ParseHostPort(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return Bad(text, "missing ']'");
    host = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':') return Bad(text, "missing port");
    port = rest.substr(1);
    in6_addr addr6;
    const std::string h(host);
    if (inet_pton(AF_INET6, h.c_str(), &addr6) != 1) return Bad(text, "bad IPv6 address");
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return Bad(text);
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return Bad(text, "write IPv6 addresses in brackets, as in \"[::1]:8080\"");
    }
    if (host.empty()) return Bad(text, "missing host; use 0.0.0.0 for all interfaces");
    const bool numeric =
        std::all_of(host.begin(), host.end(), [](char c) { return IsDigit(c) || c == '.'; });
    if (numeric) {
      in_addr addr4;
      const std::string h(host);
      if (inet_pton(AF_INET, h.c_str(), &addr4) != 1) return Bad(text, "bad IPv4 address");
    } else if (!IsHostName(host)) {
      return Bad(text, "bad host name");
    }
  }
  if (port.empty()) return Bad(text, "missing port");
  if (port.size() > 5 || !std::all_of(port.begin(), port.end(), IsDigit)) {
    return Bad(text, "port must be 0..65535");
  }
  unsigned value = 0;
  for (char c : port) value = value * 10 + static_cast<unsigned>(c - '0');
  if (value > 65535) return Bad(text, "port must be 0..65535");
  return HostPort{std::string(host), static_cast<uint16_t>(value)};
}

}  // namespace chatd::conf
