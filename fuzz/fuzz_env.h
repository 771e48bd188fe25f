// Shared fixtures of the fuzz targets: one small, fixed configuration (built once per process
// from YAML, so targets do not depend on files at run time) and a fixed clock.
#ifndef CYBERSYN_FUZZ_FUZZ_ENV_H_
#define CYBERSYN_FUZZ_FUZZ_ENV_H_

#include <cstdint>
#include <memory>

#include "common/clock.h"
#include "common/config.h"

namespace cybersyn::fuzz {

// Four levels (cl -> {textiles, mining} -> 2 enterprises -> 2 units), four indicators covering
// sum/mean/max/last, windows 10s and 1m, operators "planning" (cl, token tok-cl), "textiles"
// (cl/textiles, tok-tex) and "yarur" (cl/textiles/yarur, tok-yarur). Aborts if it stops loading.
std::shared_ptr<const Config> FuzzConfig();

// 2024-05-01T12:00:00Z: seed records carry event times around it.
inline constexpr int64_t kFuzzNowMs = 1'714'564'800'000;
const Clock* FuzzClock();

// Aborts with `what` (libFuzzer reports it as a crash with the input) when `cond` is false:
// the targets' invariants must hold in every build type, so no assert().
void Check(bool cond, const char* what);

}  // namespace cybersyn::fuzz

#endif  // CYBERSYN_FUZZ_FUZZ_ENV_H_
