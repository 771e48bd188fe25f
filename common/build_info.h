// BuildInfo: which build of Cybersyn a process runs, for `cybersyn --version` and the
// `cybersyn_build_info{version, revision, build_type} 1` gauge every /metrics endpoint exports
// (Prometheus' convention: join it to any series to see which build produced it, and count
// versions during a rollout).
// Thread-safety: everything here is immutable; RegisterBuildInfo may be called from any thread.
#ifndef CYBERSYN_COMMON_BUILD_INFO_H_
#define CYBERSYN_COMMON_BUILD_INFO_H_


#include "prometheus/registry.h"

namespace cybersyn {

struct BuildInfo {
  const char* version;     // the CMake project version, e.g. "0.1.0"
  const char* revision;    // `git describe --always --dirty` when configured, or "unknown"
  const char* build_type;  // CMAKE_BUILD_TYPE, e.g. "RelWithDebInfo"
};

const BuildInfo& GetBuildInfo();

// Adds cybersyn_build_info (value 1) to `registry`; a second call on the same registry is a no-op.
void RegisterBuildInfo(prometheus::Registry& registry);

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_BUILD_INFO_H_
