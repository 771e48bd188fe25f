#include "common/build_info.h"

#include "prometheus/gauge.h"

#ifndef CYBERSYN_VERSION
#define CYBERSYN_VERSION "unknown"
#endif
#ifndef CYBERSYN_REVISION
#define CYBERSYN_REVISION "unknown"
#endif
#ifndef CYBERSYN_BUILD_TYPE
#define CYBERSYN_BUILD_TYPE "unknown"
#endif

namespace cybersyn {

const BuildInfo& GetBuildInfo() {
  static const BuildInfo info{CYBERSYN_VERSION, CYBERSYN_REVISION, CYBERSYN_BUILD_TYPE};
  return info;
}

void RegisterBuildInfo(prometheus::Registry& registry) {
  const BuildInfo& b = GetBuildInfo();
  // Registering a family again with the same name and labels returns the existing one.
  prometheus::BuildGauge()
      .Name("cybersyn_build_info")
      .Help("Always 1; the labels name the build this process runs")
      .Register(registry)
      .Add({{"version", b.version}, {"revision", b.revision}, {"build_type", b.build_type}})
      .Set(1);
}

}  // namespace cybersyn
