// absl::Status helpers used at every boundary that can fail.
// RETURN_IF_ERROR / ASSIGN_OR_RETURN propagate errors without boilerplate; Annotate prefixes
// context ("reading foo.csv: ...") while keeping the code, which matches gRPC's.
#ifndef CYBERSYN_COMMON_STATUS_H_
#define CYBERSYN_COMMON_STATUS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace cybersyn {

// Returns `status` with `context: ` prepended to its message; OK stays OK.
inline absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

}  // namespace cybersyn

#define CYBERSYN_STATUS_CONCAT_INNER_(a, b) a##b
#define CYBERSYN_STATUS_CONCAT_(a, b) CYBERSYN_STATUS_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                               \
  do {                                                      \
    if (::absl::Status _st = (expr); !_st.ok()) return _st; \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr) \
  CYBERSYN_ASSIGN_OR_RETURN_IMPL_(CYBERSYN_STATUS_CONCAT_(_status_or_, __LINE__), lhs, expr)

#define CYBERSYN_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                    \
  if (!tmp.ok()) return std::move(tmp).status();        \
  lhs = std::move(tmp).value()

#endif  // CYBERSYN_COMMON_STATUS_H_
