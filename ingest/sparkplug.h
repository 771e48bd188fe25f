// Sparkplug B decoding for the MQTT input (ingest/mqtt_input.h; docs/ingest.md, "Sparkplug B").
//
// Topics are spBv1.0/GROUP/TYPE/EDGE_NODE[/DEVICE]. NBIRTH/DBIRTH declare an edge node's or a
// device's metrics (name, alias, type) and carry their current values; NDATA/DDATA carry values by
// alias (or by name). The decoder keeps, per edge node: the bdSeq of its birth, the next expected
// seq (0-255, wrapping), the aliases of the node and of each device, and the keys (bdSeq, seq,
// payload timestamp) of its last 256 messages, so that a redelivered message is not counted
// twice. Mapped metrics (gateway.sparkplug in the config) become records; others are ignored.
//
// A seq out of order or data before a birth asks for a rebirth (an NCMD "Node Control/Rebirth"
// the caller publishes); NDEATH (whose bdSeq matches the birth's) and DDEATH mark the edge node or
// device stopped, and the caller is told which series stopped.
//
// Thread-safety: not thread-safe; one MQTT network thread uses a decoder.
#ifndef CYBERSYN_INGEST_SPARKPLUG_H_
#define CYBERSYN_INGEST_SPARKPLUG_H_

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/config.h"
#include "cybersyn/v1/record.pb.h"
#include "ingest/record_source.h"

namespace org::eclipse::tahu::protobuf {
class Payload;
}

namespace cybersyn::ingest {

inline constexpr absl::string_view kReasonBadTopic = "bad_topic";
inline constexpr absl::string_view kReasonNoBirth = "no_birth";
inline constexpr absl::string_view kReasonUnknownAlias = "unknown_alias";
inline constexpr absl::string_view kReasonBadSeq = "bad_seq";

struct SparkplugTopic {
  std::string group;
  std::string type;  // NBIRTH, NDATA, NDEATH, DBIRTH, DDATA, DDEATH, NCMD, DCMD
  std::string edge_node;
  std::string device;  // DBIRTH/DDATA/DDEATH/DCMD only
};
// nullopt: not a Sparkplug B topic (does not start with "spBv1.0/"). A Sparkplug topic of the
// wrong shape fills `problem` and returns a topic with an empty type.
std::optional<SparkplugTopic> ParseSparkplugTopic(absl::string_view topic, std::string* problem);

// The NCMD payload asking an edge node to publish its births again.
std::string RebirthRequestPayload(int64_t now_ms);

struct SparkplugResult {
  std::vector<v1::Record> records;  // not yet validated (the gateway's Feed does)
  std::vector<RecordError> errors;  // field, problem, reason (the caller sets source and line)
  bool duplicate = false;           // the same (bdSeq, seq, timestamp) was handled before
  bool rebirth = false;             // publish RebirthRequestPayload to NcmdTopic
  std::string stopped;              // "group/edge_node[/device]" that died, or empty
  uint64_t ignored_metrics = 0;     // not in the config's mapping
};

class SparkplugDecoder {
 public:
  // `config` must outlive the decoder.
  explicit SparkplugDecoder(const Config& config);
  SparkplugResult Decode(const SparkplugTopic& topic, absl::string_view payload);
  static std::string NcmdTopic(const SparkplugTopic& topic);

 private:
  struct Source {  // an edge node's own metrics, or one device's
    bool born = false;
    std::map<uint64_t, std::string> names;  // alias -> metric name
  };
  struct EdgeNode {
    bool born = false;
    uint64_t bd_seq = 0;
    int next_seq = -1;  // -1: no birth seen
    bool rebirth_asked = false;
    std::map<std::string, Source> sources;  // "" = the node itself, else device id
    std::deque<std::tuple<uint64_t, uint64_t, uint64_t>> recent;  // (bdSeq, seq, timestamp)
    std::set<std::tuple<uint64_t, uint64_t, uint64_t>> recent_set;
  };
  // Checks and advances seq; false (with an error) for a seq out of 0-255.
  bool CheckSeq(EdgeNode& edge, bool has_seq, uint64_t seq, bool birth, SparkplugResult* out);
  void Remember(EdgeNode& edge, const std::tuple<uint64_t, uint64_t, uint64_t>& key);
  // The metrics of a birth or data message of a born source: aliases, mapping, values, times.
  void DecodeMetrics(const SparkplugTopic& topic, const org::eclipse::tahu::protobuf::Payload& p,
                     Source& src, EdgeNode& edge, SparkplugResult* out);

  const Config& config_;
  std::map<std::string, EdgeNode> edges_;  // "group/edge_node"
};

}  // namespace cybersyn::ingest

#endif  // CYBERSYN_INGEST_SPARKPLUG_H_
