#include "lcio/env/action_table.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lcio::env {

absl::StatusOr<ActionTable> ActionTable::Create(int num_views) {
  if (num_views < 0 || num_views > kMaxViews) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_views = ", num_views, ": must be in [0, ", kMaxViews, "]"));
  }
  ActionTable table;
  table.num_views_ = num_views;
  table.views_.push_back({});  // local
  table.masks_.push_back(0);
  std::vector<unsigned> subsets;
  for (unsigned m = 0; m < (1u << num_views); ++m) subsets.push_back(m);
  auto views_of = [](unsigned m) {
    std::vector<int> v;
    for (int i = 0; m >> i; ++i)
      if ((m >> i) & 1u) v.push_back(i);
    return v;
  };
  std::stable_sort(subsets.begin(), subsets.end(), [&](unsigned a, unsigned b) {
    const auto va = views_of(a), vb = views_of(b);
    if (va.size() != vb.size()) return va.size() < vb.size();
    return va < vb;
  });
  for (unsigned m : subsets) {
    table.views_.push_back(views_of(m));
    table.masks_.push_back(m);
  }
  return table;
}

absl::StatusOr<int> ActionTable::IndexOf(bool cloud, const std::vector<int>& views) const {
  if (!cloud) {
    if (!views.empty()) {
      return absl::InvalidArgumentError("a local action uploads no views");
    }
    return 0;
  }
  unsigned mask = 0;
  for (int v : views) {
    if (v < 0 || v >= num_views_) {
      return absl::InvalidArgumentError(
          absl::StrCat("view ", v, " does not exist: there are ", num_views_, " views"));
    }
    if ((mask >> v) & 1u) {
      return absl::InvalidArgumentError(absl::StrCat("view ", v, " named twice"));
    }
    mask |= 1u << v;
  }
  for (int a = 1; a < size(); ++a)
    if (masks_[a] == mask) return a;
  return absl::InternalError("subset missing from action table");
}

std::string ActionTable::Describe(int action) const {
  if (action == 0) return "local";
  if (views_[action].empty()) return "cloud";
  return absl::StrCat("cloud+{", absl::StrJoin(views_[action], ","), "}");
}

absl::StatusOr<int> LoggedAction(const ActionTable& actions, const data::Episode& episode,
                                 int turn) {
  const data::Turn& logged = episode.turns[turn];
  auto action = actions.IndexOf(logged.target == data::Target::kCloud, logged.uploaded_views);
  if (!action.ok())
    return absl::InvalidArgumentError(
        absl::StrCat("episode ", episode.id, " turn ", turn, ": ", action.status().message()));
  return action;
}

}  // namespace lcio::env
