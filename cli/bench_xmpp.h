// cli/bench_xmpp.h — `chatctl bench xmpp`: the fan-out workload against an XMPP server's
// multi-user chat (ejabberd, Prosody) over XMPP-over-WebSocket, so chatd can be compared
// with one on the same machine by the same open-loop method (issue 4).
//
// R rooms × M members become R rooms r<r>@<muc domain>, M member connections per room and
// one publisher connection per room. Users are pre-registered (bench/xmpp.sh writes them
// into the server's SQLite store) as <prefix><n>/<password>: room r's publisher is user
// r·(M+1), its members the next M. Every connection does the RFC 7395 handshake: a
// WebSocket upgrade with subprotocol "xmpp", <open/>, SASL PLAIN, <open/> again, resource
// binding (and a session when the server says it is not optional). The publisher then
// joins its room first (XEP-0045; a room it creates is configured as an instant room with
// the server's defaults), and the room's members join once the room exists; every join
// asks for no history. A connection is ready when the server reflects its own presence
// (status 110).
//
// Publishers send <message type='groupchat'> whose body is the fan-out scenario's content
// (bench_scan.h: step, room, sequence number and intended send time, padded to `size`
// bytes), so latency runs from the intended send time (no coordinated omission) and each
// member tracks loss, duplicates and reordering exactly as a fan-out receiver does. The
// room reflects every message to its sender too: that echo is the publisher's
// acknowledgement (ack latency), not a delivery. Only groupchat messages with a body of
// ours count; presences, subjects and anything else are read and ignored. Bodies are read
// raw (no entity decoding): the content never holds '<', '>' or '&'.
//
// The connection loop, the step schedule, the "sustained" rule and the bookkeeping are
// shared with `chatctl bench mqtt` (bench_room_traffic.h), the schedule, rule and report
// being the fan-out scenario's (bench_traffic.h); the result is a TrafficResult, printed
// by PrintTraffic, whose connect_s is the time until every connection had joined. XmppJoin adds when the last
// session was bound and the server's RSS once everyone had joined.
//
// Runs on the calling thread: one epoll loop owns every connection, sends on the
// schedule, and samples the server's CPU (/proc/<pid>) at the window edges.
#pragma once

#include <string>

#include "base/status.h"
#include "cli/bench_room_traffic.h"

namespace chatd::cli::bench {

// pid, rooms, members (receiving members per room, besides its publisher) and traffic:
// RoomTrafficConfig.
struct XmppConfig : RoomTrafficConfig {
  std::string server = "127.0.0.1:5280";  // IPv4 HOST:PORT of the WebSocket listener
  std::string path = "/xmpp-websocket";
  std::string domain = "localhost";  // the virtual host: Host header, open's `to`, JIDs
  std::string muc;                   // the MUC service; empty: "conference." + domain
  std::string user_prefix = "u";     // users <prefix>0 .. <prefix>(R·(M+1) − 1)
  std::string password = "password";
};

// How the connections came up (TrafficResult::connect_s is "all joined").
struct XmppJoin {
  int connections = 0, bound = 0, joined = 0;
  double bound_s = 0;  // from the first connect() until the last session was bound
  double joined_s = 0;
  long rss_before_kb = 0;  // the server's, before connecting
  long rss_joined_kb = 0;  // one second after the last join
};

Result<TrafficResult> RunXmpp(const XmppConfig& cfg, XmppJoin* join);

}  // namespace chatd::cli::bench
