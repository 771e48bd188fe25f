// Topology: what a role runs on the stream runtime: its sub-topologies (co-partitioned inputs,
// one changelog and a processor per partition), the topics its processors write to, and the
// names of their counters and gauges.
//
// A task is (sub-topology, partition): partition p of every input of the sub-topology, with
// partition p of its changelog. Inputs of one sub-topology must have equal partition counts and
// be assigned together (range assignment does that; an incremental protocol must keep the
// pairs together when it moves them).
//
// Thread-safety: immutable once handed to the runtime; make_processor is called on the loop
// thread.
#ifndef CYBERSYN_STREAM_TOPOLOGY_H_
#define CYBERSYN_STREAM_TOPOLOGY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "stream/processor.h"

namespace cybersyn::stream {

struct Subtopology {
  // Names the tasks' state in the local store ("t/<name>/<partition>/"): stable across versions.
  std::string name;
  std::vector<std::string> inputs;  // co-partitioned
  std::string changelog;            // compacted; as many partitions as the inputs
  std::function<std::unique_ptr<Processor>(int32_t partition)> make_processor;
};

struct Topology {
  // "aggregator": log lines start with "[aggregator]", metrics with cybersyn_aggregator_.
  std::string role;
  std::vector<Subtopology> subtopologies;
  std::vector<std::string> outputs;   // Emitter::Send's topics, by index
  std::string deadletter;             // Emitter::DeadLetter's topic
  std::vector<std::string> counters;  // Emitter::Count's, by index
  // Key prefixes of an older local store layout: deleted when the store opens (their state is
  // restored from the changelog instead).
  std::vector<std::string> obsolete_store_prefixes;
};

// The consumer group assigns the lead topic (the first sub-topology's first input) alone; every
// other input's partition p goes with the lead's partition p (ConsumerSettings::paired_topics),
// so that a cooperative protocol moves a task's inputs, and the sub-topologies' partition p,
// together. All inputs have as many partitions as the lead.
inline const std::string& LeadTopic(const Topology& t) { return t.subtopologies[0].inputs[0]; }
inline std::vector<std::string> PairedTopics(const Topology& t) {
  std::vector<std::string> out;
  for (const Subtopology& s : t.subtopologies) {
    for (const std::string& in : s.inputs) {
      if (in != LeadTopic(t)) out.push_back(in);
    }
  }
  return out;
}

}  // namespace cybersyn::stream

#endif  // CYBERSYN_STREAM_TOPOLOGY_H_
