// The tables of `cybersyn signals` and `cybersyn status`: one row per item (a signal with the
// series it also explains, docs/attribution.md), and the tree with each node's open problems and
// the faults also visible there. Rewards show, but are not counted as problems. Pure functions;
// thread-safe.
#ifndef CYBERSYN_CLI_SIGNAL_TABLE_H_
#define CYBERSYN_CLI_SIGNAL_TABLE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "cybersyn/v1/services.pb.h"
#include "cybersyn/v1/signal.pb.h"

namespace cybersyn::cli {

// Header, one line per signal (its "also visible at" nodes in the last column) and a count
// line: "3 signal(s): 2 problem(s), 1 reward(s)". `time` formats a raise time.
std::string SignalsTable(const std::vector<v1::Signal>& signals, std::string (*time)(int64_t ms));

// The tree under `root`: per node its worst open signal, its open problems (alerts and crises
// currently there; rewards listed apart), its last values, and the signals of the tree that
// are also visible at it ("also visible: <origin> <indicator> [id]"), not counted as problems.
std::string StatusTree(const v1::NodeStatus& root);

}  // namespace cybersyn::cli

#endif  // CYBERSYN_CLI_SIGNAL_TABLE_H_
