// libFuzzer target: an operator command on its way in (alerter/authz, alerter/signal_book).
// Input: "<authorization metadata>\n<v1::Command bytes>". The front end authenticates the header
// and checks the act against the signal's origin; the owner re-checks the command's claimed
// scope against the operator's configured subtree and applies it to a book of open signals
// (as Alerter::ProcessCommand does). A signal_id "#N" names the N-th open signal, so the fuzzer
// need not guess hashed ids. Invariant: whatever the bytes say, a command changes a signal only
// when the signal's origin lies inside the subtree of the operator it names, and an
// authenticated caller passes CheckAct only for origins inside its own subtree.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "alerter/authz.h"
#include "alerter/signal_book.h"
#include "common/hierarchy.h"
#include "cybersyn/v1/command.pb.h"
#include "fuzz/fuzz_env.h"

namespace cybersyn::fuzz {
namespace {

// Path-segment containment written independently of Hierarchy::PathIsInSubtree.
bool Inside(const std::string& path, const std::string& root) {
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                          path[root.size()] == '/');
}

// Open signals at a unit, an enterprise and a sector, one acknowledged, one escalated from a
// unit to its enterprise, one silenced.
alerter::SignalBook MakeBook(int64_t now) {
  alerter::SignalBook book(FuzzConfig()->hierarchy, alerter::SignalBookOptions{});
  const char* nodes[] = {"cl/textiles/yarur/spinning", "cl/mining/chuqui/smelter",
                         "cl/textiles/sumar", "cl/mining", "cl/textiles/sumar/weaving"};
  int i = 0;
  for (const char* node : nodes) {
    alerter::Detection d;
    d.series.set_node(node);
    d.series.set_indicator("output");
    d.series.set_window_ms(10'000);
    d.kind = v1::SIGNAL_KIND_STEP;
    d.window_start_ms = now - 60'000 * (++i);
    book.OnDetection(d, now - 60'000);  // the 10s unit ack deadline has passed at `now`
  }
  book.Tick(now);  // the units' signals climb to their enterprises
  return book;
}

}  // namespace
}  // namespace cybersyn::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cybersyn;
  using namespace cybersyn::fuzz;
  const std::shared_ptr<const Config> config = FuzzConfig();
  static const alerter::Authorizer* authz = new alerter::Authorizer(config);
  const absl::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nl = in.find('\n');
  if (nl == absl::string_view::npos) return 0;
  const absl::string_view header = in.substr(0, nl);
  const absl::string_view body = in.substr(nl + 1);
  v1::Command cmd;
  if (!cmd.ParseFromArray(body.data(), static_cast<int>(body.size()))) return 0;

  const int64_t now = kFuzzNowMs;
  alerter::SignalBook book = MakeBook(now);
  std::vector<std::string> ids;
  for (const auto& [id, s] : book.open()) ids.push_back(id);
  int n = 0;
  if (absl::StartsWith(cmd.signal_id(), "#") && absl::SimpleAtoi(cmd.signal_id().substr(1), &n) &&
      n >= 0 && n < static_cast<int>(ids.size())) {
    cmd.set_signal_id(ids[n]);
  }
  const alerter::OpenSignal* target = book.Find(cmd.signal_id());
  const std::string origin = target ? target->signal.origin_node() : cmd.signal_node();

  // Front end.
  absl::StatusOr<const OperatorConfig*> op = authz->Authenticate(header);
  if (op.ok()) {
    Check(*op != nullptr, "authenticated without an operator");
    const bool may_act = authz->CheckAct(**op, origin).ok();
    Check(may_act == Inside(origin, (*op)->subtree), "CheckAct disagrees with the subtree");
    absl::StatusOr<std::string> sub = authz->ResolveSubtree(**op, cmd.operator_scope());
    if (sub.ok()) Check(Inside(*sub, (*op)->subtree), "resolved subtree outside the scope");
  }

  // Owner: the scope is the named operator's configured subtree, narrowed by the command.
  std::string scope;
  for (const OperatorConfig& o : config->operators) {
    if (o.name == cmd.operator_id()) scope = o.subtree;
  }
  if (scope.empty()) return 0;
  const std::string configured = scope;
  if (!cmd.operator_scope().empty()) {
    if (!Hierarchy::PathIsInSubtree(cmd.operator_scope(), scope)) return 0;
    scope = cmd.operator_scope();
  }
  auto events = book.Apply(cmd, scope, now);
  if (events.ok() && !events->empty()) {
    Check(target != nullptr, "a command changed a signal that was not open");
    Check(Inside(origin, configured), "a command acted outside its operator's subtree");
  }
  book.Tick(now + 3'600'000);
  return 0;
}
