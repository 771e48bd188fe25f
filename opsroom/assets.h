// The Opsroom's web assets, compiled into the binary (no CDN, works offline).
#ifndef CYBERSYN_OPSROOM_ASSETS_H_
#define CYBERSYN_OPSROOM_ASSETS_H_

#include <string_view>
#include <vector>

namespace cybersyn::opsroom {

struct Asset {
  std::string_view path;  // "/index.html"
  std::string_view content_type;
  std::string_view body;
};

const std::vector<Asset>& Assets();

}  // namespace cybersyn::opsroom

#endif  // CYBERSYN_OPSROOM_ASSETS_H_
