// The Opsroom: a web page and a small JSON/SSE API served by the binary (on the HTTP server of
// common/http_server.h). Operators see the hierarchy coloured by each node's worst open signal,
// a live feed of transitions, series charts with forecast bands, and may acknowledge, resolve
// or silence signals after entering a token authorised for the signal's subtree.
//
// API (JSON is protobuf JSON with proto field names):
//   GET  /api/status?node=&depth=      cybersyn.v1.NodeStatus
//   GET  /api/signals?subtree=         {"signals": [Signal...]}  (open signals)
//   GET  /api/series?node=&indicator=&window_ms=&from_ms=&to_ms=&limit=
//                                      cybersyn.v1.SeriesHistoryResponse
//   GET  /api/events                   text/event-stream of SignalEvent, event name "signal",
//                                      id = resume cursor (browsers resume with Last-Event-ID)
//   GET  /api/whoami                   {"name", "subtree"} for the bearer token
//   POST /api/signals/{id}/{ack|resolve|silence|unsilence}  body {"reason", "duration_ms"}
// Errors: {"error": "..."} with 400/401/403/404/503.
// Every response carries kContentSecurityPolicy, X-Content-Type-Options: nosniff,
// X-Frame-Options: DENY and Referrer-Policy: no-referrer; the page builds its DOM from text only
// (no HTML parsing of server data), so markup in a node title or a reason shows as text.
// Thread-safety: handlers run on the HTTP server's threads; the Backend must be thread-safe.
#ifndef CYBERSYN_OPSROOM_OPSROOM_H_
#define CYBERSYN_OPSROOM_OPSROOM_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cybersyn/v1/command.pb.h"
#include "cybersyn/v1/services.pb.h"
#include "cybersyn/v1/signal.pb.h"

namespace httplib {
class Server;
}

namespace cybersyn::opsroom {

// The page's own script, style and API only: no inline script (so no injected handler runs),
// no other origin, no plugins, never inside a frame.
inline constexpr absl::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct OperatorIdentity {
  std::string name;
  std::string subtree;
};

// What the Opsroom needs from the running system.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual absl::StatusOr<v1::NodeStatus> Status(const std::string& node, int depth) = 0;
  virtual absl::StatusOr<std::vector<v1::Signal>> OpenSignals(const std::string& subtree) = 0;
  virtual absl::StatusOr<v1::SeriesHistoryResponse> Series(
      const v1::SeriesHistoryRequest& request) = 0;
  // Signal events after `cursor` ("" = from now), waiting up to `wait` for the first one.
  // Returns (cursor after each event, event) pairs.
  virtual absl::StatusOr<std::vector<std::pair<std::string, v1::SignalEvent>>> EventsAfter(
      const std::string& cursor, absl::Duration wait) = 0;
  // The operator holding `token`: UNAUTHENTICATED if none.
  virtual absl::StatusOr<OperatorIdentity> Authenticate(const std::string& token) = 0;
  // Issues a command as the operator holding `token`; returns the command id.
  // UNAUTHENTICATED / PERMISSION_DENIED / NOT_FOUND as appropriate.
  virtual absl::StatusOr<std::string> Act(const std::string& token, v1::CommandKind kind,
                                          const std::string& signal_id, const std::string& reason,
                                          absl::Duration silence_for) = 0;
};

// Adds the page and the API to `server`. `backend` must outlive the server.
void RegisterOpsroom(httplib::Server& server, Backend* backend);

// HTTP status for an absl status code (401 UNAUTHENTICATED, 403 PERMISSION_DENIED, ...).
int HttpStatusFor(absl::StatusCode code);

}  // namespace cybersyn::opsroom

#endif  // CYBERSYN_OPSROOM_OPSROOM_H_
