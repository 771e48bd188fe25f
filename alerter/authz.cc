#include "alerter/authz.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace cybersyn::alerter {
namespace {
std::string_view Std(absl::string_view s) { return std::string_view(s.data(), s.size()); }
}  // namespace

Authorizer::Authorizer(std::shared_ptr<const Config> config) : config_(std::move(config)) {}

absl::StatusOr<const OperatorConfig*> Authorizer::Authenticate(
    absl::string_view authorization) const {
  if (authorization.empty()) {
    return absl::UnauthenticatedError("missing \"authorization: Bearer <token>\" metadata");
  }
  constexpr absl::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size() ||
      !absl::StartsWithIgnoreCase(authorization, kScheme)) {
    return absl::UnauthenticatedError("authorization metadata is not \"Bearer <token>\"");
  }
  const absl::string_view token = absl::StripAsciiWhitespace(authorization.substr(kScheme.size()));
  if (token.empty()) return absl::UnauthenticatedError("empty bearer token");
  const OperatorConfig* op = config_->FindOperatorByToken(Std(token));
  if (op == nullptr) return absl::UnauthenticatedError("unknown token");
  return op;
}

absl::StatusOr<std::string> Authorizer::ResolveSubtree(const OperatorConfig& op,
                                                       absl::string_view requested) const {
  if (requested.empty()) return op.subtree;
  if (config_->hierarchy->Find(Std(requested)) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown node ", requested));
  }
  if (!Hierarchy::PathIsInSubtree(Std(requested), op.subtree)) {
    return absl::PermissionDeniedError(
        absl::StrCat("operator ", op.name, " is scoped to ", op.subtree, ", not ", requested));
  }
  return std::string(requested);
}

absl::Status Authorizer::CheckAct(const OperatorConfig& op, absl::string_view origin_node) const {
  if (Hierarchy::PathIsInSubtree(Std(origin_node), op.subtree)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("operator ", op.name, " is scoped to ",
                                                  op.subtree, "; the signal is at ", origin_node));
}

}  // namespace cybersyn::alerter
