// Text forms of signals for terminals: one line per transition (demo feed, `cybersyn watch`).
#ifndef CYBERSYN_CLI_FEED_FORMAT_H_
#define CYBERSYN_CLI_FEED_FORMAT_H_

#include <string>

#include "cybersyn/v1/signal.pb.h"

namespace cybersyn::cli {

// "SIGNAL_KIND_STEP" -> "step", "SEVERITY_CRISIS" -> "crisis".
std::string ShortEnum(const std::string& enum_name);

// "10:09:54  escalated  step  crisis  cl/textiles · energy  ⇧ cl/textiles → cl (nation)  [id]"
std::string FeedLine(const v1::SignalEvent& event);

}  // namespace cybersyn::cli

#endif  // CYBERSYN_CLI_FEED_FORMAT_H_
