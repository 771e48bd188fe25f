// MQTT input of the gateway (`--input mqtt://HOST:PORT/FILTER`): subscribes to FILTER on an MQTT
// broker with QoS 1 in a persistent session and feeds every record of every message to the
// Gateway, which makes it durable in its disk buffer before the callback returns.
//
// Sparkplug B: a message on a spBv1.0/... topic is decoded as Sparkplug B (ingest/sparkplug.h):
// births and data by alias, mapped to nodes and indicators by gateway.sparkplug in the config; a
// seq gap or data without a birth publishes a rebirth request (NCMD), a redelivered message
// (same bdSeq, seq, timestamp) is dropped, NDEATH/DDEATH are logged and counted as stops.
//
// Payloads (plain JSON mode, any other topic): one or more JSON lines per message, each a record
// with the fields of a `jsonl:` line (docs/ingest.md), with the same grammar and checks. A bad line
// is rejected, reported as "mqtt:<topic>:<message>.<line>: <field>: <problem>" and counted by
// reason in the gateway's rejected-records metric; the message's other lines are still taken.
//
// The client library is libmosquitto (Debian's libmosquitto1 2.0.11). It sends the PUBACK of a
// QoS 1 message *before* it calls the application's message callback, and has no manual
// acknowledgement, so the broker forgets a message as soon as it is handed to us. The callback
// therefore writes the message's records to the disk buffer (Gateway::Feed + Persist) before it
// returns: a kill -9 can lose at most the one message being handled, whose window (PUBACK to
// durable) is measured in MqttInputStats and docs/ingest.md. Messages arriving while the gateway
// is down wait in the broker (persistent session: fixed client id, clean session off).
// Delivery into the gateway is therefore at most once for the message in that window and at least
// once otherwise: a broker resends a message whose PUBACK it did not get (a dropped connection),
// and such a resend gets new sequence numbers.
//
// While the disk buffer is full, the callback waits: the broker then holds the messages.
//
// Thread-safety: Start/Stop from one owner thread; stats() from any thread. The message callback
// runs on the library's network thread.
#ifndef CYBERSYN_INGEST_MQTT_INPUT_H_
#define CYBERSYN_INGEST_MQTT_INPUT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ingest/gateway.h"
#include "ingest/record_source.h"
#include "ingest/sparkplug.h"

struct mosquitto;
struct mosquitto_message;

namespace cybersyn::ingest {

// mqtt://HOST:PORT/FILTER (PORT defaults to 1883; FILTER is an MQTT topic filter, '+' and '#'
// allowed, e.g. mqtt://broker:1883/plant/#).
struct MqttUrl {
  std::string host;
  int port = 1883;
  std::string filter;
};
// INVALID_ARGUMENT naming what is wrong and showing the expected form.
absl::StatusOr<MqttUrl> ParseMqttUrl(absl::string_view url);

struct MqttInputOptions {
  MqttUrl url;
  // The persistent session's client id: the same across restarts, unique per gateway.
  std::string client_id;
  int keepalive_seconds = 30;
  // Called (on the network thread) for every rejected record; may be empty.
  std::function<void(const RecordError&)> report;
};

struct MqttInputStats {
  uint64_t messages = 0;  // handled
  uint64_t records = 0;   // accepted by the gateway
  uint64_t rejected = 0;  // records (lines) rejected
  uint64_t lost = 0;      // messages acknowledged whose records could not be stored (logged)
  bool connected = false;
  // Sparkplug B.
  uint64_t duplicates = 0;       // redelivered messages dropped
  uint64_t rebirths = 0;         // rebirth requests published
  uint64_t stops = 0;            // NDEATH/DDEATH of a live edge node or device
  uint64_t ignored_metrics = 0;  // not mapped in the config
  // Time from the callback's start (the PUBACK has just been sent) to the records being in the
  // disk buffer: the window in which a kill -9 loses the message.
  uint64_t window_max_us = 0;
  uint64_t window_total_us = 0;
};

class MqttInput {
 public:
  // Connects (retrying in the background while the broker is away) and subscribes.
  // INVALID_ARGUMENT for a bad client id; INTERNAL when libmosquitto cannot start.
  static absl::StatusOr<std::unique_ptr<MqttInput>> Start(Gateway* gateway,
                                                          MqttInputOptions options);
  ~MqttInput();  // Stop()
  // Disconnects and stops the network thread (waiting for a message being handled).
  void Stop();
  MqttInputStats stats() const;

  // One message, as the callback handles it (tests).
  void HandleMessage(absl::string_view topic, absl::string_view payload);

 private:
  MqttInput(Gateway* gateway, MqttInputOptions options);
  static void OnConnect(struct mosquitto* m, void* self, int rc);
  static void OnDisconnect(struct mosquitto* m, void* self, int rc);
  static void OnMessage(struct mosquitto* m, void* self, const struct mosquitto_message* msg);
  // Feed with retries while the buffer is full (counting the record in `fed` when accepted);
  // false once stopping or on a hard error.
  bool FeedWaiting(const v1::Record& record, RecordError* err, uint64_t* fed);
  bool PersistWaiting();
  void Reject(RecordError err, absl::string_view topic, uint64_t message, int line);
  // Decodes a Sparkplug message; false when its records could not be stored.
  bool HandleSparkplug(const SparkplugTopic& t, const std::string& topic_problem,
                       absl::string_view topic, absl::string_view payload, uint64_t message,
                       uint64_t* fed);
  bool HandleJsonLines(absl::string_view topic, absl::string_view payload, uint64_t message,
                       uint64_t* fed);

  Gateway* gateway_;
  MqttInputOptions options_;
  struct mosquitto* mosq_ = nullptr;
  bool loop_started_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> messages_{0}, records_{0}, rejected_{0}, lost_{0};
  std::atomic<uint64_t> window_max_us_{0}, window_total_us_{0};
  std::atomic<uint64_t> duplicates_{0}, rebirths_{0}, stops_{0}, ignored_{0};
  SparkplugDecoder sparkplug_;  // network thread only
};

}  // namespace cybersyn::ingest

#endif  // CYBERSYN_INGEST_MQTT_INPUT_H_
