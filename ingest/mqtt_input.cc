#include "ingest/mqtt_input.h"

#include <mosquitto.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/safe_text.h"
#include "spdlog/spdlog.h"

namespace cybersyn::ingest {
namespace {

constexpr absl::string_view kUrlForm =
    "expected mqtt://HOST[:PORT]/FILTER, e.g. mqtt://broker:1883/plant/#";

// libmosquitto keeps global state (its TLS and socket set-up): initialised once per process.
void InitLibraryOnce() {
  static const int once = [] { return mosquitto_lib_init(); }();
  (void)once;
}

}  // namespace

absl::StatusOr<MqttUrl> ParseMqttUrl(absl::string_view url) {
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(why, " in ", SafeQuote(url), "; ", kUrlForm));
  };
  if (!absl::ConsumePrefix(&url, "mqtt://")) return bad("no mqtt:// scheme");
  const size_t slash = url.find('/');
  if (slash == absl::string_view::npos || slash + 1 == url.size()) return bad("no topic filter");
  MqttUrl out;
  out.filter = std::string(url.substr(slash + 1));
  absl::string_view authority = url.substr(0, slash);
  absl::string_view port;
  if (absl::ConsumePrefix(&authority, "[")) {  // [IPv6]:PORT
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) return bad("unclosed [ in the host");
    out.host = std::string(authority.substr(0, close));
    authority.remove_prefix(close + 1);
    if (!authority.empty() && !absl::ConsumePrefix(&authority, ":")) return bad("junk after ]");
    port = authority;
  } else {
    const size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != absl::string_view::npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty()) return bad("no host");
  if (!port.empty() && (!absl::SimpleAtoi(port, &out.port) || out.port < 1 || out.port > 65535)) {
    return bad(absl::StrCat("port ", SafeQuote(port), " is not a number from 1 to 65535"));
  }
  if (mosquitto_sub_topic_check(out.filter.c_str()) != MOSQ_ERR_SUCCESS) {
    return bad(absl::StrCat("topic filter ", SafeQuote(out.filter),
                            " is not valid ('#' only last, '+' and '#' alone between '/')"));
  }
  return out;
}

MqttInput::MqttInput(Gateway* gateway, MqttInputOptions options)
    : gateway_(gateway), options_(std::move(options)), sparkplug_(gateway->config()) {}

absl::StatusOr<std::unique_ptr<MqttInput>> MqttInput::Start(Gateway* gateway,
                                                            MqttInputOptions options) {
  InitLibraryOnce();
  if (options.client_id.empty()) return absl::InvalidArgumentError("mqtt: no client id");
  std::unique_ptr<MqttInput> in(new MqttInput(gateway, std::move(options)));
  // Clean session off: the broker keeps the subscription and queues QoS 1 messages while we are
  // away, under this client id.
  in->mosq_ = mosquitto_new(in->options_.client_id.c_str(), /*clean_session=*/false, in.get());
  if (in->mosq_ == nullptr) return absl::InternalError("mqtt: mosquitto_new failed");
  mosquitto_connect_callback_set(in->mosq_, &MqttInput::OnConnect);
  mosquitto_disconnect_callback_set(in->mosq_, &MqttInput::OnDisconnect);
  mosquitto_message_callback_set(in->mosq_, &MqttInput::OnMessage);
  mosquitto_reconnect_delay_set(in->mosq_, 1, 30, true);
  const MqttUrl& u = in->options_.url;
  int rc =
      mosquitto_connect_async(in->mosq_, u.host.c_str(), u.port, in->options_.keepalive_seconds);
  if (rc == MOSQ_ERR_ERRNO || rc == MOSQ_ERR_CONN_REFUSED) {
    // The broker is not there yet: the network thread keeps retrying.
    spdlog::warn("mqtt: {}:{}: {}; retrying", u.host, u.port, mosquitto_strerror(rc));
  } else if (rc != MOSQ_ERR_SUCCESS) {
    return absl::InvalidArgumentError(absl::StrCat("mqtt: cannot connect to ", u.host, ":", u.port,
                                                   ": ", mosquitto_strerror(rc)));
  }
  if (absl::Status s = gateway->StartPublishing(); !s.ok()) return s;
  rc = mosquitto_loop_start(in->mosq_);
  if (rc != MOSQ_ERR_SUCCESS) {
    return absl::InternalError(absl::StrCat("mqtt: no network thread: ", mosquitto_strerror(rc)));
  }
  in->loop_started_ = true;
  return in;
}

MqttInput::~MqttInput() {
  Stop();
  if (mosq_ != nullptr) mosquitto_destroy(mosq_);
}

void MqttInput::Stop() {
  if (stopping_.exchange(true)) return;
  if (mosq_ == nullptr) return;
  mosquitto_disconnect(mosq_);
  if (loop_started_) mosquitto_loop_stop(mosq_, /*force=*/false);
  connected_.store(false);
}

MqttInputStats MqttInput::stats() const {
  MqttInputStats s;
  s.messages = messages_.load();
  s.records = records_.load();
  s.rejected = rejected_.load();
  s.lost = lost_.load();
  s.connected = connected_.load();
  s.window_max_us = window_max_us_.load();
  s.window_total_us = window_total_us_.load();
  s.duplicates = duplicates_.load();
  s.rebirths = rebirths_.load();
  s.stops = stops_.load();
  s.ignored_metrics = ignored_.load();
  return s;
}

void MqttInput::OnConnect(struct mosquitto* m, void* self, int rc) {
  auto* in = static_cast<MqttInput*>(self);
  if (rc != 0) {
    spdlog::warn("mqtt: {}:{} refused the connection: {}", in->options_.url.host,
                 in->options_.url.port, mosquitto_connack_string(rc));
    return;
  }
  const int s = mosquitto_subscribe(m, nullptr, in->options_.url.filter.c_str(), /*qos=*/1);
  if (s != MOSQ_ERR_SUCCESS) {
    spdlog::warn("mqtt: subscribe {}: {}", in->options_.url.filter, mosquitto_strerror(s));
    return;
  }
  in->connected_.store(true);
  spdlog::info("mqtt: connected to {}:{} as {}, subscribed to {} (QoS 1)", in->options_.url.host,
               in->options_.url.port, in->options_.client_id, in->options_.url.filter);
}

void MqttInput::OnDisconnect(struct mosquitto*, void* self, int rc) {
  auto* in = static_cast<MqttInput*>(self);
  in->connected_.store(false);
  if (rc != 0 && !in->stopping_.load()) {
    spdlog::warn("mqtt: disconnected from {}:{} ({}); reconnecting", in->options_.url.host,
                 in->options_.url.port, mosquitto_strerror(rc));
  }
}

void MqttInput::OnMessage(struct mosquitto*, void* self, const struct mosquitto_message* msg) {
  auto* in = static_cast<MqttInput*>(self);
  in->HandleMessage(msg->topic != nullptr ? msg->topic : "",
                    absl::string_view(static_cast<const char*>(msg->payload),
                                      static_cast<size_t>(std::max(msg->payloadlen, 0))));
}

bool MqttInput::FeedWaiting(const v1::Record& record, RecordError* err, uint64_t* fed) {
  while (true) {
    absl::Status s = gateway_->Feed(record, err, absl::Now() + absl::Seconds(1));
    if (s.ok()) {
      ++*fed;
      return true;
    }
    if (absl::IsInvalidArgument(s)) {  // rejected (and counted) by the gateway
      rejected_.fetch_add(1);
      if (options_.report) options_.report(*err);
      return true;
    }
    if (!absl::IsResourceExhausted(s) || stopping_.load()) {
      spdlog::error("mqtt: a record could not be buffered: {}", s.ToString());
      return false;
    }
  }
}

bool MqttInput::PersistWaiting() {
  while (true) {
    absl::Status s = gateway_->Persist(absl::Now() + absl::Seconds(1));
    if (s.ok()) return true;
    if (!absl::IsDeadlineExceeded(s) || stopping_.load()) {
      spdlog::error("mqtt: records could not be made durable: {}", s.ToString());
      return false;
    }
  }
}

void MqttInput::Reject(RecordError err, absl::string_view topic, uint64_t message, int line) {
  err.source = absl::StrCat("mqtt:", topic, ":", message);
  err.line = line;
  gateway_->CountRejected(err.reason);
  rejected_.fetch_add(1);
  if (options_.report) options_.report(err);
}

bool MqttInput::HandleJsonLines(absl::string_view topic, absl::string_view payload,
                                uint64_t message, uint64_t* fed) {
  const RecordValidator& validator = gateway_->validator();
  int line_no = 0;
  v1::Record record;
  for (absl::string_view line : absl::StrSplit(payload, '\n')) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == absl::string_view::npos) continue;
    RecordError err;
    if (ParseJsonLine(line, validator, &record, &err) == nullptr) {
      err.raw_line = std::string(line);
      Reject(std::move(err), topic, message, line_no);
      continue;
    }
    err.source = absl::StrCat("mqtt:", topic, ":", message);
    err.line = line_no;
    if (!FeedWaiting(record, &err, fed)) return false;
  }
  return true;
}

bool MqttInput::HandleSparkplug(const SparkplugTopic& t, const std::string& topic_problem,
                                absl::string_view topic, absl::string_view payload,
                                uint64_t message, uint64_t* fed) {
  if (t.type.empty()) {
    RecordError err;
    err.field = "topic";
    err.problem = topic_problem;
    err.reason = std::string(kReasonBadTopic);
    Reject(std::move(err), topic, message, 1);
    return true;
  }
  SparkplugResult r = sparkplug_.Decode(t, payload);
  for (RecordError& e : r.errors) Reject(std::move(e), topic, message, 1);
  ignored_.fetch_add(r.ignored_metrics);
  if (r.duplicate) duplicates_.fetch_add(1);
  if (r.rebirth) {
    const std::string cmd = RebirthRequestPayload(absl::ToUnixMillis(absl::Now()));
    const std::string ncmd = SparkplugDecoder::NcmdTopic(t);
    const int rc = mosquitto_publish(mosq_, nullptr, ncmd.c_str(), static_cast<int>(cmd.size()),
                                     cmd.data(), /*qos=*/0, /*retain=*/false);
    rebirths_.fetch_add(1);
    spdlog::info(
        "sparkplug: {}/{}: sequence gap or data without a birth; rebirth requested on {}{}",
        t.group, t.edge_node, ncmd, rc == MOSQ_ERR_SUCCESS ? "" : " (not sent)");
  }
  if (!r.stopped.empty()) {
    stops_.fetch_add(1);
    spdlog::warn("sparkplug: {} stopped ({})", r.stopped, t.type);
  }
  for (const v1::Record& record : r.records) {
    RecordError err;
    err.source = absl::StrCat("mqtt:", topic, ":", message);
    err.line = 1;
    if (!FeedWaiting(record, &err, fed)) return false;
  }
  return true;
}

void MqttInput::HandleMessage(absl::string_view topic, absl::string_view payload) {
  const absl::Time start = absl::Now();
  const uint64_t n = messages_.fetch_add(1) + 1;
  uint64_t fed = 0;
  std::string topic_problem;
  const std::optional<SparkplugTopic> sp = ParseSparkplugTopic(topic, &topic_problem);
  bool ok = sp.has_value() ? HandleSparkplug(*sp, topic_problem, topic, payload, n, &fed)
                           : HandleJsonLines(topic, payload, n, &fed);
  if (ok && fed > 0) ok = PersistWaiting();
  if (!ok) {
    lost_.fetch_add(1);
    return;
  }
  records_.fetch_add(fed);
  const auto us = static_cast<uint64_t>(absl::ToInt64Microseconds(absl::Now() - start));
  window_total_us_.fetch_add(us);
  uint64_t max = window_max_us_.load();
  while (us > max && !window_max_us_.compare_exchange_weak(max, us)) {
  }
}

}  // namespace cybersyn::ingest
