// cli/bench_mqtt.h — `chatctl bench mqtt`: the fan-out workload against an MQTT 3.1.1
// broker (Mosquitto), so chatd can be compared with one on the same machine by the same
// open-loop method (issue 4).
//
// R rooms × M members become R topics `room/<r>`, M subscriber connections per topic and
// one publisher connection per topic. Every connection is a clean session (CONNECT,
// CONNACK); subscribers SUBSCRIBE to their room's topic at `qos` and answer every QoS 1
// PUBLISH with a PUBACK; publishers PUBLISH at `qos` and, at QoS 1, count PUBACKs as the
// broker's acknowledgements. The payload is the fan-out scenario's content (bench_scan.h:
// step, room, sequence number and intended send time, padded to `size` bytes), so latency
// runs from the intended send time (no coordinated omission) and each subscriber tracks
// loss, duplicates and reordering exactly as a fan-out receiver does.
//
// The connection loop, the step schedule, the "sustained" rule and the bookkeeping are
// shared with `chatctl bench xmpp` (bench_room_traffic.h), the schedule, rule and report
// being the fan-out scenario's (bench_traffic.h); the result is a TrafficResult, printed
// by PrintTraffic. Deliveries owed are counted when a message is sent (MQTT has no
// negative acknowledgement). At QoS 0 a message counts as acknowledged when written and
// there is no ack latency.
//
// Runs on the calling thread: one epoll loop owns every connection, sends on the
// schedule, and samples the broker's CPU (/proc/<pid>) at the window edges.
#pragma once

#include <string>

#include "base/status.h"
#include "cli/bench_room_traffic.h"

namespace chatd::cli::bench {

// pid, rooms, members (subscribers per room) and traffic: RoomTrafficConfig.
struct MqttConfig : RoomTrafficConfig {
  std::string broker = "127.0.0.1:1883";  // IPv4 HOST:PORT
  int qos = 1;                            // 0 or 1, for both PUBLISH and SUBSCRIBE
};

Result<TrafficResult> RunMqtt(const MqttConfig& cfg);

}  // namespace chatd::cli::bench
