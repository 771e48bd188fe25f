// Hierarchy: the organisation as a tree (Beer's recursion), e.g. `cl` (nation) -> `cl/textiles`
// (sector) -> `cl/textiles/yarur` (enterprise) -> `cl/textiles/yarur/spinning` (unit). Every leaf
// sits at the last level; each level carries escalation deadlines that a node may override.
//
// A node is named by its path, the ids from the root joined by '/'. Subtree tests are by path
// segment: "cl/tex" is not inside "cl/textiles".
//
// Thread-safety: immutable after Build(); any number of threads may read concurrently. Node
// pointers stay valid for the Hierarchy's lifetime, including across moves of the Hierarchy.
// Config (config.h) hands it out as shared_ptr<const Hierarchy>.
#ifndef CYBERSYN_COMMON_HIERARCHY_H_
#define CYBERSYN_COMMON_HIERARCHY_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace cybersyn {

// One level of the tree with its default escalation deadlines: a signal raised (or escalated) at a
// node of this level must be acknowledged within `ack_within` and resolved within
// `resolve_within`, otherwise it climbs to the parent.
struct LevelSpec {
  std::string name;
  absl::Duration ack_within;
  absl::Duration resolve_within;
};

// The input of Hierarchy::Build: one node and its subtree, as written in the config.
struct NodeSpec {
  std::string id;
  std::string title;  // empty: the id is used
  std::optional<absl::Duration> ack_within;
  std::optional<absl::Duration> resolve_within;
  std::vector<NodeSpec> children;
};

class Hierarchy {
 public:
  // The level at which records are keyed (Kafka partitioning) and EnterpriseOf() answers.
  static constexpr std::string_view kEnterpriseLevel = "enterprise";

  struct Node {
    std::string id;                     // last path segment: "spinning"
    std::string path;                   // "cl/textiles/yarur/spinning"
    std::string title;                  // human name; the id when none was given
    int depth = 0;                      // 0 = root; index into levels()
    std::string level;                  // levels()[depth].name
    const Node* parent = nullptr;       // nullptr for the root
    std::vector<const Node*> children;  // in declaration order
    const Node* enterprise = nullptr;   // ancestor-or-self at kEnterpriseLevel; null above it
    // Effective deadlines: the node's override if it has one, else its level's.
    absl::Duration ack_within;
    absl::Duration resolve_within;
    bool ack_within_overridden = false;
    bool resolve_within_overridden = false;

    bool is_leaf() const { return children.empty(); }
  };

  // Builds the tree. REQUIRES nothing: invalid input gives InvalidArgument listing every problem
  // ("; "-separated): no levels, duplicate level names, ids not matching [a-z0-9_-]+, duplicate
  // sibling ids, a leaf above the last level or a node below it, non-positive deadlines, or an
  // effective resolve_within shorter than ack_within. (The config loader reports the same
  // problems with YAML paths and line numbers before it calls this.)
  static absl::StatusOr<Hierarchy> Build(std::vector<LevelSpec> levels, NodeSpec root);

  // Convenience for tests and tools: the tree containing every given path and its ancestors,
  // titles equal to ids, no overrides. All paths must share one root.
  static absl::StatusOr<Hierarchy> FromPaths(std::vector<LevelSpec> levels,
                                             const std::vector<std::string>& paths);

  Hierarchy(Hierarchy&&) = default;
  Hierarchy& operator=(Hierarchy&&) = default;
  Hierarchy(const Hierarchy&) = delete;
  Hierarchy& operator=(const Hierarchy&) = delete;

  const Node& root() const { return *root_; }
  const std::vector<LevelSpec>& levels() const { return levels_; }
  // Depth of the level named `name`, or -1.
  int LevelIndex(std::string_view name) const;

  // The node at `path`, or nullptr. O(1) (hash lookup).
  const Node* Find(std::string_view path) const;

  // True iff `path` names an existing node that is `subtree_root` or a descendant of it.
  bool IsInSubtree(std::string_view path, std::string_view subtree_root) const;
  // The same test on strings alone (no lookup): path == root or path starts with root + "/".
  static bool PathIsInSubtree(std::string_view path, std::string_view subtree_root);

  // The ancestors of `path`, nearest first (parent, grandparent, ..., root); excludes the node
  // itself. Empty for the root and for unknown paths.
  std::vector<const Node*> Ancestors(std::string_view path) const;

  // The enterprise a node belongs to: its ancestor at kEnterpriseLevel, or the node itself at that
  // level. NotFound for an unknown path; InvalidArgument for a node above the enterprise level;
  // FailedPrecondition if no level is named "enterprise".
  absl::StatusOr<const Node*> EnterpriseOf(std::string_view path) const;

  // Children of `path` in declaration order; empty for leaves and unknown paths.
  const std::vector<const Node*>& Children(std::string_view path) const;

  // Every node in pre-order (root first, children in declaration order).
  const std::vector<const Node*>& nodes() const { return preorder_; }
  // The leaves (units) in pre-order.
  const std::vector<const Node*>& leaves() const { return leaves_; }
  // The nodes at one depth in pre-order; empty if out of range.
  const std::vector<const Node*>& NodesAtDepth(int depth) const;

 private:
  Hierarchy() = default;
  Node* AddNode(const NodeSpec& spec, Node* parent, int depth);

  std::vector<LevelSpec> levels_;
  std::vector<std::unique_ptr<Node>> storage_;  // owns nodes; unique_ptr keeps pointers stable
  const Node* root_ = nullptr;
  // Keys view Node::path strings owned by storage_.
  absl::flat_hash_map<std::string_view, const Node*> by_path_;
  std::vector<const Node*> preorder_;
  std::vector<const Node*> leaves_;
  std::vector<std::vector<const Node*>> by_depth_;
};

// True iff `id` is a valid node id (and level, indicator, operator name): [a-z0-9_-]+.
bool IsValidId(std::string_view id);

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_HIERARCHY_H_
