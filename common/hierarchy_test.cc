#include "common/hierarchy.h"

#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::vector<LevelSpec> FourLevels() {
  return {{"nation", absl::Hours(1), absl::Hours(8)},
          {"sector", absl::Minutes(30), absl::Hours(4)},
          {"enterprise", absl::Minutes(15), absl::Hours(2)},
          {"unit", absl::Minutes(5), absl::Hours(1)}};
}

NodeSpec Leaf(std::string id) { return NodeSpec{.id = std::move(id)}; }

// cl -> {textiles (ack 20m) -> {yarur -> {spinning, weaving (resolve 3h)}, tex -> {dye}},
//        mining -> {chuqui -> {mine}}}
Hierarchy Chile() {
  NodeSpec weaving = Leaf("weaving");
  weaving.resolve_within = absl::Hours(3);
  NodeSpec yarur{.id = "yarur", .title = "Yarur", .children = {Leaf("spinning"), weaving}};
  NodeSpec tex{.id = "tex", .children = {Leaf("dye")}};
  NodeSpec textiles{.id = "textiles",
                    .title = "Textiles",
                    .ack_within = absl::Minutes(20),
                    .children = {yarur, tex}};
  NodeSpec mining{.id = "mining",
                  .children = {NodeSpec{.id = "chuqui", .children = {Leaf("mine")}}}};
  NodeSpec root{.id = "cl", .title = "Chile", .children = {textiles, mining}};
  absl::StatusOr<Hierarchy> h = Hierarchy::Build(FourLevels(), root);
  EXPECT_TRUE(h.ok()) << h.status();
  return std::move(*h);
}

std::vector<std::string> Paths(const std::vector<const Hierarchy::Node*>& nodes) {
  std::vector<std::string> out;
  for (const Hierarchy::Node* n : nodes) out.push_back(n->path);
  return out;
}

TEST(HierarchyTest, FindAndNodeFields) {
  Hierarchy h = Chile();
  const Hierarchy::Node* spinning = h.Find("cl/textiles/yarur/spinning");
  ASSERT_NE(spinning, nullptr);
  EXPECT_EQ(spinning->id, "spinning");
  EXPECT_EQ(spinning->title, "spinning");  // no title: the id
  EXPECT_EQ(spinning->depth, 3);
  EXPECT_EQ(spinning->level, "unit");
  EXPECT_TRUE(spinning->is_leaf());
  EXPECT_EQ(spinning->parent, h.Find("cl/textiles/yarur"));
  EXPECT_EQ(h.Find("cl/textiles/yarur")->title, "Yarur");
  EXPECT_EQ(&h.root(), h.Find("cl"));
  EXPECT_EQ(h.root().parent, nullptr);
  EXPECT_EQ(h.root().depth, 0);
  EXPECT_EQ(h.root().level, "nation");
  EXPECT_EQ(h.Find("cl/textiles/yarur/missing"), nullptr);
  EXPECT_EQ(h.Find("cl/"), nullptr);
  EXPECT_EQ(h.Find(""), nullptr);
  EXPECT_EQ(h.LevelIndex("enterprise"), 2);
  EXPECT_EQ(h.LevelIndex("plant"), -1);
}

TEST(HierarchyTest, IsInSubtreeMatchesWholeSegments) {
  Hierarchy h = Chile();
  EXPECT_TRUE(h.IsInSubtree("cl/textiles", "cl/textiles"));
  EXPECT_TRUE(h.IsInSubtree("cl/textiles/yarur/spinning", "cl/textiles"));
  EXPECT_TRUE(h.IsInSubtree("cl/mining/chuqui", "cl"));
  EXPECT_FALSE(h.IsInSubtree("cl/textiles/tex", "cl/textiles/yarur"));
  EXPECT_FALSE(h.IsInSubtree("cl/mining", "cl/textiles"));
  EXPECT_FALSE(h.IsInSubtree("cl", "cl/textiles"));
  EXPECT_FALSE(h.IsInSubtree("cl/textiles/nope", "cl/textiles"));  // unknown node
  // "cl/tex" is a prefix of "cl/textiles" as a string, not as a path.
  EXPECT_FALSE(Hierarchy::PathIsInSubtree("cl/tex", "cl/textiles"));
  EXPECT_FALSE(Hierarchy::PathIsInSubtree("cl/textiles", "cl/tex"));
  EXPECT_FALSE(Hierarchy::PathIsInSubtree("cl/texts", "cl/tex"));
  EXPECT_TRUE(Hierarchy::PathIsInSubtree("cl/tex/x", "cl/tex"));
  EXPECT_TRUE(h.IsInSubtree("cl/textiles/tex/dye", "cl/textiles/tex"));
  EXPECT_FALSE(h.IsInSubtree("cl/textiles/yarur", "cl/textiles/tex"));
}

TEST(HierarchyTest, Ancestors) {
  Hierarchy h = Chile();
  EXPECT_THAT(Paths(h.Ancestors("cl/textiles/yarur/spinning")),
              ElementsAre("cl/textiles/yarur", "cl/textiles", "cl"));
  EXPECT_THAT(h.Ancestors("cl"), IsEmpty());
  EXPECT_THAT(h.Ancestors("nowhere"), IsEmpty());
}

TEST(HierarchyTest, EnterpriseOf) {
  Hierarchy h = Chile();
  EXPECT_EQ((*h.EnterpriseOf("cl/textiles/yarur/spinning"))->path, "cl/textiles/yarur");
  EXPECT_EQ((*h.EnterpriseOf("cl/textiles/yarur"))->path, "cl/textiles/yarur");
  EXPECT_EQ(h.Find("cl/mining/chuqui/mine")->enterprise, h.Find("cl/mining/chuqui"));
  EXPECT_EQ(h.Find("cl/mining")->enterprise, nullptr);
  absl::StatusOr<const Hierarchy::Node*> above = h.EnterpriseOf("cl/textiles");
  EXPECT_EQ(above.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(above.status().message(),
            "\"cl/textiles\" is at level \"sector\", above the enterprise level");
  EXPECT_EQ(h.EnterpriseOf("cl").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.EnterpriseOf("cl/nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(h.EnterpriseOf("cl/nope").status().message(), "no node \"cl/nope\" in the hierarchy");
}

TEST(HierarchyTest, EnterpriseOfWithoutEnterpriseLevel) {
  absl::StatusOr<Hierarchy> h =
      Hierarchy::FromPaths({{"site", absl::Minutes(10), absl::Hours(1)},
                            {"machine", absl::Minutes(1), absl::Minutes(10)}},
                           {"plant/press"});
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->EnterpriseOf("plant/press").status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(HierarchyTest, EffectiveDeadlines) {
  Hierarchy h = Chile();
  const Hierarchy::Node* textiles = h.Find("cl/textiles");
  EXPECT_EQ(textiles->ack_within, absl::Minutes(20));  // override
  EXPECT_TRUE(textiles->ack_within_overridden);
  EXPECT_EQ(textiles->resolve_within, absl::Hours(4));  // sector level
  EXPECT_FALSE(textiles->resolve_within_overridden);
  const Hierarchy::Node* mining = h.Find("cl/mining");
  EXPECT_EQ(mining->ack_within, absl::Minutes(30));  // overrides are not inherited by siblings
  const Hierarchy::Node* yarur = h.Find("cl/textiles/yarur");
  EXPECT_EQ(yarur->ack_within, absl::Minutes(15));  // nor by descendants
  const Hierarchy::Node* weaving = h.Find("cl/textiles/yarur/weaving");
  EXPECT_EQ(weaving->ack_within, absl::Minutes(5));
  EXPECT_EQ(weaving->resolve_within, absl::Hours(3));
  EXPECT_TRUE(weaving->resolve_within_overridden);
  EXPECT_EQ(h.root().ack_within, absl::Hours(1));
  EXPECT_EQ(h.root().resolve_within, absl::Hours(8));
}

TEST(HierarchyTest, ChildrenLeavesAndOrder) {
  Hierarchy h = Chile();
  EXPECT_THAT(Paths(h.Children("cl")), ElementsAre("cl/textiles", "cl/mining"));
  EXPECT_THAT(Paths(h.root().children), ElementsAre("cl/textiles", "cl/mining"));
  EXPECT_THAT(h.Children("cl/textiles/yarur/spinning"), IsEmpty());
  EXPECT_THAT(h.Children("nope"), IsEmpty());
  EXPECT_THAT(Paths(h.leaves()),
              ElementsAre("cl/textiles/yarur/spinning", "cl/textiles/yarur/weaving",
                          "cl/textiles/tex/dye", "cl/mining/chuqui/mine"));
  EXPECT_EQ(h.nodes().size(), 10u);
  EXPECT_EQ(h.nodes().front(), &h.root());
  EXPECT_THAT(Paths(h.NodesAtDepth(2)),
              ElementsAre("cl/textiles/yarur", "cl/textiles/tex", "cl/mining/chuqui"));
  EXPECT_THAT(h.NodesAtDepth(4), IsEmpty());
  EXPECT_THAT(h.NodesAtDepth(-1), IsEmpty());
}

TEST(HierarchyTest, PointersSurviveMove) {
  Hierarchy h = Chile();
  const Hierarchy::Node* spinning = h.Find("cl/textiles/yarur/spinning");
  Hierarchy moved = std::move(h);
  EXPECT_EQ(moved.Find("cl/textiles/yarur/spinning"), spinning);
  EXPECT_EQ(spinning->parent->parent, moved.Find("cl/textiles"));
}

TEST(HierarchyTest, ConcurrentReads) {
  const Hierarchy h = Chile();
  std::vector<std::thread> threads;
  std::vector<int> found(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&h, &found, t] {
      for (int i = 0; i < 10000; ++i) {
        for (const Hierarchy::Node* leaf : h.leaves()) {
          if (h.Find(leaf->path) == leaf && h.IsInSubtree(leaf->path, "cl")) ++found[t];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_THAT(found, ElementsAre(40000, 40000, 40000, 40000));
}

TEST(HierarchyTest, FromPaths) {
  absl::StatusOr<Hierarchy> h =
      Hierarchy::FromPaths(FourLevels(), {"cl/a/x/u1", "cl/a/x/u2", "cl/b/y/u3"});
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_THAT(Paths(h->leaves()), ElementsAre("cl/a/x/u1", "cl/a/x/u2", "cl/b/y/u3"));
  EXPECT_EQ(h->nodes().size(), 8u);
  EXPECT_THAT(Hierarchy::FromPaths(FourLevels(), {"cl/a/x/u1", "ar/a/x/u1"}).status().message(),
              HasSubstr("different roots"));
}

TEST(HierarchyTest, BuildRejectsEveryProblem) {
  NodeSpec bad_id = Leaf("Bad");
  NodeSpec short_branch{.id = "s", .children = {NodeSpec{.id = "e"}}};  // leaf at enterprise
  NodeSpec weird{.id = "w", .ack_within = absl::Hours(5)};              // resolve 4h < ack 5h
  weird.children = {NodeSpec{.id = "e", .children = {Leaf("u"), Leaf("u")}}};
  NodeSpec root{.id = "cl", .children = {short_branch, weird}};
  root.children[0].children.push_back(NodeSpec{.id = "e2", .children = {bad_id}});
  absl::StatusOr<Hierarchy> h = Hierarchy::Build(FourLevels(), root);
  EXPECT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.status().message(),
            "invalid hierarchy: cl/s/e: leaf at level \"enterprise\"; every leaf must be at the "
            "last level \"unit\"; cl/s/e2/Bad: node id must match [a-z0-9_-]+, got \"Bad\"; "
            "cl/w: resolve_within (4h) must be at least ack_within (5h); "
            "cl/w/e/u: duplicate node id among the children of cl/w/e");
  EXPECT_EQ(Hierarchy::Build({}, Leaf("cl")).status().message(),
            "invalid hierarchy: no levels declared");
  EXPECT_THAT(
      Hierarchy::Build(
          FourLevels(),
          NodeSpec{
              .id = "cl",
              .children = {NodeSpec{
                  .id = "a",
                  .children = {NodeSpec{
                      .id = "b", .children = {NodeSpec{.id = "c", .children = {Leaf("d")}}}}}}}})
          .status()
          .message(),
      HasSubstr("cl/a/b/c/d: deeper than the 4 declared levels"));
}

}  // namespace
}  // namespace cybersyn
