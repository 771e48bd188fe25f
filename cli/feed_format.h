// Text forms of signals for terminals: one line per transition (demo feed, `cybersyn watch`).
// Pure functions; thread-safe.
#ifndef CYBERSYN_CLI_FEED_FORMAT_H_
#define CYBERSYN_CLI_FEED_FORMAT_H_

#include <string>

#include "cybersyn/v1/signal.pb.h"

namespace cybersyn::cli {

// "SIGNAL_KIND_STEP" -> "step", "SEVERITY_CRISIS" -> "crisis".
std::string ShortEnum(const std::string& enum_name);

// The series a signal explains besides its own (docs/attribution.md), once per node and
// indicator (window sizes folded): "cl/mining energy, cl/mining/chuquicamata productivity".
// Empty when it is visible nowhere else.
std::string AlsoVisibleList(const v1::Signal& signal);

// "10:09:54  escalated  step  crisis  cl/textiles · energy  ⇧ cl/textiles → cl (nation)  [id]",
// followed by "  also visible at: <AlsoVisibleList>" when the signal explains other series.
std::string FeedLine(const v1::SignalEvent& event);

}  // namespace cybersyn::cli

#endif  // CYBERSYN_CLI_FEED_FORMAT_H_
