#include "ingest/sparkplug.h"

#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/safe_text.h"
#include "sparkplug_b/sparkplug_b.pb.h"

namespace cybersyn::ingest {
namespace {

using org::eclipse::tahu::protobuf::Payload;

constexpr size_t kRecentMessages = 256;
constexpr uint32_t kTypeBoolean = 11;

RecordError Error(std::string field, std::string problem, absl::string_view reason) {
  RecordError e;
  e.field = std::move(field);
  e.problem = std::move(problem);
  e.reason = std::string(reason);
  return e;
}

// The metric's value as a number, or an error (strings, bytes, data sets are not measurements).
bool MetricValue(const Payload::Metric& m, const std::string& name, double* out, RecordError* err) {
  switch (m.value_case()) {
    case Payload::Metric::kIntValue:  // Int8/16/32 travel as two's complement in a uint32
      *out = m.datatype() >= 1 && m.datatype() <= 3 ? static_cast<int32_t>(m.int_value())
                                                    : static_cast<double>(m.int_value());
      return true;
    case Payload::Metric::kLongValue:
      *out = m.datatype() == 4 ? static_cast<double>(static_cast<int64_t>(m.long_value()))
                               : static_cast<double>(m.long_value());
      return true;
    case Payload::Metric::kFloatValue:
      *out = m.float_value();
      return true;
    case Payload::Metric::kDoubleValue:
      *out = m.double_value();
      return true;
    case Payload::Metric::kBooleanValue:
      *out = m.boolean_value() ? 1 : 0;
      return true;
    case Payload::Metric::VALUE_NOT_SET:
      *err = Error("metric", absl::StrCat(SafeQuote(name), ": no value"), kReasonMissingField);
      return false;
    default:
      *err = Error("metric",
                   absl::StrCat(SafeQuote(name), ": datatype ", m.datatype(), " is not a number"),
                   kReasonBadValue);
      return false;
  }
}

}  // namespace

std::optional<SparkplugTopic> ParseSparkplugTopic(absl::string_view topic, std::string* problem) {
  if (!absl::StartsWith(topic, "spBv1.0/")) return std::nullopt;
  std::vector<std::string> parts = absl::StrSplit(topic, '/');
  SparkplugTopic t;
  static const std::set<std::string> kNode = {"NBIRTH", "NDATA", "NDEATH", "NCMD"};
  static const std::set<std::string> kDevice = {"DBIRTH", "DDATA", "DDEATH", "DCMD"};
  const bool node = parts.size() == 4 && kNode.contains(parts[2]);
  const bool device = parts.size() == 5 && kDevice.contains(parts[2]);
  if (!node && !device) {
    *problem = absl::StrCat("not a Sparkplug B topic: ", SafeQuote(topic),
                            " (expected spBv1.0/GROUP/NBIRTH|NDATA|NDEATH/EDGE_NODE or "
                            "spBv1.0/GROUP/DBIRTH|DDATA|DDEATH/EDGE_NODE/DEVICE)");
    return t;
  }
  t.group = parts[1];
  t.type = parts[2];
  t.edge_node = parts[3];
  if (device) t.device = parts[4];
  return t;
}

std::string RebirthRequestPayload(int64_t now_ms) {
  Payload p;
  p.set_timestamp(static_cast<uint64_t>(now_ms));
  Payload::Metric* m = p.add_metrics();
  m->set_name("Node Control/Rebirth");
  m->set_datatype(kTypeBoolean);
  m->set_timestamp(static_cast<uint64_t>(now_ms));
  m->set_boolean_value(true);
  return p.SerializeAsString();
}

std::string SparkplugDecoder::NcmdTopic(const SparkplugTopic& topic) {
  return absl::StrCat("spBv1.0/", topic.group, "/NCMD/", topic.edge_node);
}

SparkplugDecoder::SparkplugDecoder(const Config& config) : config_(config) {}

bool SparkplugDecoder::CheckSeq(EdgeNode& edge, bool has_seq, uint64_t seq, bool birth,
                                SparkplugResult* out) {
  if (!has_seq || seq > 255) {
    out->errors.push_back(Error(
        "seq", has_seq ? absl::StrCat("must be 0 to 255, got ", seq) : "missing", kReasonBadSeq));
    return false;
  }
  if (!birth && edge.next_seq >= 0 && static_cast<int>(seq) != edge.next_seq &&
      !edge.rebirth_asked) {
    out->rebirth = true;  // a message was lost: the aliases and values may be stale
    edge.rebirth_asked = true;
  }
  edge.next_seq = static_cast<int>((seq + 1) % 256);
  return true;
}

void SparkplugDecoder::Remember(EdgeNode& edge,
                                const std::tuple<uint64_t, uint64_t, uint64_t>& key) {
  edge.recent.push_back(key);
  edge.recent_set.insert(key);
  if (edge.recent.size() > kRecentMessages) {
    edge.recent_set.erase(edge.recent.front());
    edge.recent.pop_front();
  }
}

SparkplugResult SparkplugDecoder::Decode(const SparkplugTopic& topic, absl::string_view payload) {
  SparkplugResult out;
  if (topic.type == "NCMD" || topic.type == "DCMD") return out;  // commands, ours included
  Payload p;
  if (!p.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    out.errors.push_back(Error(
        "payload", absl::StrCat("not a Sparkplug B protobuf payload (", payload.size(), " bytes)"),
        kReasonSyntax));
    return out;
  }
  const std::string edge_key = absl::StrCat(topic.group, "/", topic.edge_node);
  EdgeNode& edge = edges_[edge_key];
  if (topic.type == "NDEATH") {
    std::optional<uint64_t> bd_seq;
    for (const auto& m : p.metrics()) {
      if (m.name() == "bdSeq") bd_seq = m.long_value();
    }
    // A will message of an older session (its bdSeq is not the birth's) says nothing now.
    if (edge.born && (!bd_seq || *bd_seq == edge.bd_seq)) {
      edge.born = false;
      edge.next_seq = -1;
      for (auto& [id, src] : edge.sources) src.born = false;
      out.stopped = edge_key;
    }
    return out;
  }
  const bool node_birth = topic.type == "NBIRTH";
  uint64_t bd_seq = edge.bd_seq;
  if (node_birth) {
    for (const auto& m : p.metrics()) {
      if (m.name() == "bdSeq") bd_seq = m.long_value();
    }
  }
  // Redelivered (the broker did not get our PUBACK): handled already.
  const auto key = std::make_tuple(bd_seq, p.seq(), p.timestamp());
  if (edge.recent_set.contains(key)) {
    out.duplicate = true;
    return out;
  }
  if (node_birth) {  // a new session of the edge node: everything it declared before is gone
    EdgeNode fresh;
    fresh.born = true;
    fresh.bd_seq = bd_seq;
    fresh.recent = std::move(edge.recent);
    fresh.recent_set = std::move(edge.recent_set);
    edge = std::move(fresh);
  }
  if (!CheckSeq(edge, p.has_seq(), p.seq(), node_birth, &out)) return out;
  Remember(edge, key);
  if (topic.type == "DDEATH") {
    edge.sources[topic.device].born = false;
    out.stopped = absl::StrCat(edge_key, "/", topic.device);
    return out;
  }
  Source& src = edge.sources[topic.device];
  if (topic.type == "DBIRTH" || node_birth) src = Source{.born = true};
  if (!edge.born || !src.born) {
    out.errors.push_back(Error(
        "payload",
        absl::StrCat(topic.type, " before the ", topic.device.empty() ? "edge node's" : "device's",
                     " birth (a rebirth is requested)"),
        kReasonNoBirth));
    if (!edge.rebirth_asked) out.rebirth = edge.rebirth_asked = true;
    return out;
  }
  DecodeMetrics(topic, p, src, edge, &out);
  return out;
}

void SparkplugDecoder::DecodeMetrics(const SparkplugTopic& topic, const Payload& p, Source& src,
                                     EdgeNode& edge, SparkplugResult* out) {
  const bool birth = topic.type == "NBIRTH" || topic.type == "DBIRTH";
  const GatewayConfig::Sparkplug* map = nullptr;
  for (const auto& sp : config_.gateway.sparkplug) {
    if (sp.group == topic.group && sp.edge_node == topic.edge_node && sp.device == topic.device) {
      map = &sp;
    }
  }
  for (const auto& m : p.metrics()) {
    std::string name;
    if (m.has_name()) {
      name = m.name();
      if (birth && m.has_alias()) src.names[m.alias()] = name;
    } else if (m.has_alias()) {
      auto it = src.names.find(m.alias());
      if (it == src.names.end()) {
        out->errors.push_back(
            Error("metric", absl::StrCat("alias ", m.alias(), " was not declared by the birth"),
                  kReasonUnknownAlias));
        if (!edge.rebirth_asked) out->rebirth = edge.rebirth_asked = true;
        continue;
      }
      name = it->second;
    } else {
      out->errors.push_back(Error("metric", "neither a name nor an alias", kReasonMissingField));
      continue;
    }
    // Sparkplug's own bookkeeping, not measurements.
    if (name == "bdSeq" || absl::StartsWith(name, "Node Control/")) continue;
    const auto ind = map == nullptr ? map->metrics.end() : map->metrics.find(name);
    if (map == nullptr || ind == map->metrics.end() || m.is_null()) {
      ++out->ignored_metrics;
      continue;
    }
    RecordError err;
    double value = 0;
    if (!MetricValue(m, name, &value, &err)) {
      out->errors.push_back(std::move(err));
      continue;
    }
    const uint64_t t = m.has_timestamp() ? m.timestamp() : p.timestamp();
    if ((!m.has_timestamp() && !p.has_timestamp()) ||
        t > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      out->errors.push_back(
          Error("metric", absl::StrCat(SafeQuote(name), ": no usable timestamp"), kReasonBadTime));
      continue;
    }
    v1::Record& r = out->records.emplace_back();
    r.set_node(map->node);
    r.set_indicator(ind->second);
    r.set_value(value);
    r.set_event_time_ms(static_cast<int64_t>(t));
  }
}

}  // namespace cybersyn::ingest
