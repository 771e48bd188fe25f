// Authz: who is calling (bearer token -> operator) and may they touch this part of the tree.
//
// Every Alerts call carries "authorization: Bearer <token>". The token is matched against the
// operators of the config (constant-time per operator, Config::FindOperatorByToken). An operator
// is scoped to one subtree and may:
//   - Watch / List a subtree inside its scope (an empty subtree means its whole scope);
//   - act (acknowledge, resolve, silence) on a signal whose ORIGIN node is inside its scope.
// Origin, not current node: a signal that climbed from a unit to its sector still belongs to
// every level whose subtree contains where it happened (Beer: a level acts on what happens in
// its subtree), and since the current node is always an ancestor-or-self of the origin, any
// operator whose scope contains the current node also contains the origin.
// Tokens never appear in statuses or logs; messages name the operator instead.
//
// Thread-safety: immutable after construction; any thread.
#ifndef CYBERSYN_ALERTER_AUTHZ_H_
#define CYBERSYN_ALERTER_AUTHZ_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/config.h"

namespace cybersyn::alerter {

class Authorizer {
 public:
  // `config` must outlive the Authorizer (it is shared).
  explicit Authorizer(std::shared_ptr<const Config> config);

  // The operator holding the bearer token in `authorization` (the metadata value, e.g.
  // "Bearer abc"). UNAUTHENTICATED for a missing or malformed header or an unknown token.
  absl::StatusOr<const OperatorConfig*> Authenticate(absl::string_view authorization) const;

  // The subtree to watch/list: `requested` (or the operator's scope when empty) if it is inside
  // the scope; PERMISSION_DENIED otherwise, INVALID_ARGUMENT for an unknown node.
  absl::StatusOr<std::string> ResolveSubtree(const OperatorConfig& op,
                                             absl::string_view requested) const;

  // OK iff a signal that originated at `origin_node` may be acted on by `op`;
  // PERMISSION_DENIED otherwise.
  absl::Status CheckAct(const OperatorConfig& op, absl::string_view origin_node) const;

  const Config& config() const { return *config_; }

 private:
  std::shared_ptr<const Config> config_;
};

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_AUTHZ_H_
