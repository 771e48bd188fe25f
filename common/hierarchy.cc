#include "common/hierarchy.h"

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/duration.h"

namespace cybersyn {
namespace {

// Debian's Abseil is built with its own string_view type; StrCat and friends take only that.
absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// Collects everything wrong with `spec` (at `path`, depth `depth`) and its subtree.
void CheckNode(const std::vector<LevelSpec>& levels, const NodeSpec& spec, const std::string& path,
               int depth, std::vector<std::string>* problems) {
  const int num_levels = static_cast<int>(levels.size());
  if (!IsValidId(spec.id)) {
    problems->push_back(
        absl::StrCat(path, ": node id must match [a-z0-9_-]+, got \"", spec.id, "\""));
  }
  if (depth >= num_levels) {
    problems->push_back(absl::StrCat(path, ": deeper than the ", num_levels, " declared levels"));
    return;
  }
  const LevelSpec& level = levels[depth];
  if (spec.ack_within && *spec.ack_within <= absl::ZeroDuration()) {
    problems->push_back(absl::StrCat(path, ": ack_within must be positive"));
  }
  if (spec.resolve_within && *spec.resolve_within <= absl::ZeroDuration()) {
    problems->push_back(absl::StrCat(path, ": resolve_within must be positive"));
  }
  const absl::Duration ack = spec.ack_within.value_or(level.ack_within);
  const absl::Duration resolve = spec.resolve_within.value_or(level.resolve_within);
  if ((spec.ack_within || spec.resolve_within) && resolve < ack) {
    problems->push_back(absl::StrCat(path, ": resolve_within (", DurationToString(resolve),
                                     ") must be at least ack_within (", DurationToString(ack),
                                     ")"));
  }
  if (spec.children.empty() && depth != num_levels - 1) {
    problems->push_back(absl::StrCat(path, ": leaf at level \"", level.name,
                                     "\"; every leaf must be at the last level \"",
                                     levels.back().name, "\""));
  }
  absl::flat_hash_set<std::string_view> seen;
  for (const NodeSpec& child : spec.children) {
    if (!seen.insert(child.id).second) {
      problems->push_back(
          absl::StrCat(path, "/", child.id, ": duplicate node id among the children of ", path));
      continue;
    }
    CheckNode(levels, child, absl::StrCat(path, "/", child.id), depth + 1, problems);
  }
}

}  // namespace

bool IsValidId(std::string_view id) {
  if (id.empty()) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

absl::StatusOr<Hierarchy> Hierarchy::Build(std::vector<LevelSpec> levels, NodeSpec root) {
  std::vector<std::string> problems;
  if (levels.empty()) {
    problems.push_back("no levels declared");
  } else {
    absl::flat_hash_set<std::string_view> names;
    for (const LevelSpec& level : levels) {
      if (!IsValidId(level.name)) {
        problems.push_back(
            absl::StrCat("level name must match [a-z0-9_-]+, got \"", level.name, "\""));
      }
      if (!names.insert(level.name).second) {
        problems.push_back(absl::StrCat("duplicate level \"", level.name, "\""));
      }
      if (level.ack_within <= absl::ZeroDuration() ||
          level.resolve_within <= absl::ZeroDuration()) {
        problems.push_back(absl::StrCat("level \"", level.name, "\": deadlines must be positive"));
      } else if (level.resolve_within < level.ack_within) {
        problems.push_back(absl::StrCat(
            "level \"", level.name, "\": resolve_within (", DurationToString(level.resolve_within),
            ") must be at least ack_within (", DurationToString(level.ack_within), ")"));
      }
    }
    CheckNode(levels, root, root.id, 0, &problems);
  }
  if (!problems.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid hierarchy: ", absl::StrJoin(problems, "; ")));
  }

  Hierarchy h;
  h.levels_ = std::move(levels);
  h.by_depth_.resize(h.levels_.size());
  h.root_ = h.AddNode(root, nullptr, 0);
  return h;
}

Hierarchy::Node* Hierarchy::AddNode(const NodeSpec& spec, Node* parent, int depth) {
  storage_.push_back(std::make_unique<Node>());
  Node* node = storage_.back().get();
  const LevelSpec& level = levels_[depth];
  node->id = spec.id;
  node->path = parent == nullptr ? spec.id : absl::StrCat(parent->path, "/", spec.id);
  node->title = spec.title.empty() ? spec.id : spec.title;
  node->depth = depth;
  node->level = level.name;
  node->parent = parent;
  if (level.name == kEnterpriseLevel) {
    node->enterprise = node;
  } else if (parent != nullptr) {
    node->enterprise = parent->enterprise;
  }
  node->ack_within = spec.ack_within.value_or(level.ack_within);
  node->resolve_within = spec.resolve_within.value_or(level.resolve_within);
  node->ack_within_overridden = spec.ack_within.has_value();
  node->resolve_within_overridden = spec.resolve_within.has_value();
  by_path_.emplace(node->path, node);
  preorder_.push_back(node);
  by_depth_[depth].push_back(node);
  if (spec.children.empty()) leaves_.push_back(node);
  for (const NodeSpec& child : spec.children) {
    node->children.push_back(AddNode(child, node, depth + 1));
  }
  return node;
}

absl::StatusOr<Hierarchy> Hierarchy::FromPaths(std::vector<LevelSpec> levels,
                                               const std::vector<std::string>& paths) {
  if (paths.empty()) return absl::InvalidArgumentError("no paths given");
  NodeSpec root;
  for (const std::string& path : paths) {
    std::vector<std::string> ids = absl::StrSplit(path, '/');
    if (root.id.empty()) root.id = ids[0];
    if (ids[0] != root.id) {
      return absl::InvalidArgumentError(
          absl::StrCat("paths have different roots: \"", root.id, "\" and \"", ids[0], "\""));
    }
    NodeSpec* node = &root;
    for (size_t i = 1; i < ids.size(); ++i) {
      NodeSpec* next = nullptr;
      for (NodeSpec& child : node->children) {
        if (child.id == ids[i]) next = &child;
      }
      if (next == nullptr) {
        node->children.push_back(NodeSpec{.id = ids[i]});
        next = &node->children.back();
      }
      node = next;
    }
  }
  return Build(std::move(levels), std::move(root));
}

int Hierarchy::LevelIndex(std::string_view name) const {
  for (size_t i = 0; i < levels_.size(); ++i) {
    if (levels_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

const Hierarchy::Node* Hierarchy::Find(std::string_view path) const {
  auto it = by_path_.find(path);
  return it == by_path_.end() ? nullptr : it->second;
}

bool Hierarchy::PathIsInSubtree(std::string_view path, std::string_view subtree_root) {
  if (path.size() < subtree_root.size()) return false;
  if (path.substr(0, subtree_root.size()) != subtree_root) return false;
  return path.size() == subtree_root.size() || path[subtree_root.size()] == '/';
}

bool Hierarchy::IsInSubtree(std::string_view path, std::string_view subtree_root) const {
  return PathIsInSubtree(path, subtree_root) && Find(path) != nullptr;
}

std::vector<const Hierarchy::Node*> Hierarchy::Ancestors(std::string_view path) const {
  std::vector<const Node*> out;
  const Node* node = Find(path);
  if (node == nullptr) return out;
  out.reserve(node->depth);
  for (const Node* p = node->parent; p != nullptr; p = p->parent) out.push_back(p);
  return out;
}

absl::StatusOr<const Hierarchy::Node*> Hierarchy::EnterpriseOf(std::string_view path) const {
  const Node* node = Find(path);
  if (node == nullptr) {
    return absl::NotFoundError(absl::StrCat("no node \"", Av(path), "\" in the hierarchy"));
  }
  if (node->enterprise != nullptr) return node->enterprise;
  if (LevelIndex(kEnterpriseLevel) < 0) {
    return absl::FailedPreconditionError("the hierarchy has no level named \"enterprise\"");
  }
  return absl::InvalidArgumentError(absl::StrCat("\"", Av(path), "\" is at level \"", node->level,
                                                 "\", above the enterprise level"));
}

const std::vector<const Hierarchy::Node*>& Hierarchy::Children(std::string_view path) const {
  static const std::vector<const Node*>* const kEmpty = new std::vector<const Node*>();
  const Node* node = Find(path);
  return node == nullptr ? *kEmpty : node->children;
}

const std::vector<const Hierarchy::Node*>& Hierarchy::NodesAtDepth(int depth) const {
  static const std::vector<const Node*>* const kEmpty = new std::vector<const Node*>();
  if (depth < 0 || depth >= static_cast<int>(by_depth_.size())) return *kEmpty;
  return by_depth_[depth];
}

}  // namespace cybersyn
