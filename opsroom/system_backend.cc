#include "opsroom/system_backend.h"

#include "absl/strings/str_cat.h"

namespace cybersyn::opsroom {

absl::StatusOr<OperatorIdentity> SystemBackend::Authenticate(const std::string& token) {
  auto op = authz_.Authenticate(absl::StrCat("Bearer ", token));
  if (!op.ok()) return op.status();
  return OperatorIdentity{(*op)->name, (*op)->subtree};
}

absl::StatusOr<std::string> SystemBackend::Act(const std::string& token, v1::CommandKind kind,
                                               const std::string& signal_id,
                                               const std::string& reason,
                                               absl::Duration silence_for) {
  auto op = authz_.Authenticate(absl::StrCat("Bearer ", token));
  if (!op.ok()) return op.status();
  return alerts_->Issue(**op, kind, signal_id, reason, absl::ToInt64Milliseconds(silence_for));
}

}  // namespace cybersyn::opsroom
