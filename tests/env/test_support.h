// Shared fixtures for env tests: the embedded data set and reference figures.
#pragma once

#include <string>

#include "gtest/gtest.h"
#include "lcio/data/m4a1.h"
#include "lcio/env/simulator.h"

namespace lcio::testing {

inline const data::Dataset& EmbeddedDataset() {
  static const data::Dataset* dataset = [] {
    auto loaded = data::LoadM4A1File(std::string(LCIO_SOURCE_DIR) + "/data/M4A1.json");
    if (!loaded.ok()) {
      ADD_FAILURE() << loaded.status();
      return new data::Dataset();
    }
    return new data::Dataset(*std::move(loaded));
  }();
  return *dataset;
}

inline std::string TestDataPath(const std::string& name) {
  return std::string(LCIO_SOURCE_DIR) + "/tests/env/testdata/" + name;
}

// A small hand-made data set: 2 views (5 actions), varied logged decisions.
inline data::Dataset SmallDataset() {
  data::Dataset d;
  d.tasks = {"a", "b"};
  d.num_views = 2;
  d.source = "<hand-made>";
  const int logged[][3] = {{0, 1, 2}, {1, 3, 4}, {4, 0, 2}, {2, 2, 3}, {3, 4, 0}, {0, 0, 1}};
  for (int e = 0; e < 7; ++e) {
    data::Episode ep;
    ep.id = e;
    ep.image_paths = {"v0.jpg", "v1.jpg"};
    for (int t = 0; t < 3; ++t) {
      data::Turn turn;
      turn.task = d.tasks[(e + t) % 2];
      turn.task_index = (e + t) % 2;
      const int a = logged[e % 6][t];
      turn.target = a == 0 ? data::Target::kLocal : data::Target::kCloud;
      if (a == 2) turn.uploaded_views = {0};
      if (a == 3) turn.uploaded_views = {1};
      if (a == 4) turn.uploaded_views = {1, 0};
      turn.answer = (e * 3 + t) % 5 == 0 ? "sorry, no" : "fine";
      turn.score = 1 + (e * 7 + t * 3) % 9;
      ep.turns.push_back(turn);
      ep.association.push_back({0.1 + 0.1 * t, 0.5 - 0.1 * e / 7.0});
    }
    d.episodes.push_back(ep);
  }
  return d;
}

// 2 tasks, 2 views (actions: 0 local, 1 cloud, 2 cloud+{0}, 3 cloud+{1},
// 4 cloud+{0,1}); 40 episodes of 3 turns logging local and plain cloud in
// turn. `score(task, action)` gives every logged turn's score.
template <typename Score>
inline data::Dataset TwoTaskDataset(Score score) {
  data::Dataset d;
  d.tasks = {"a", "b"};
  d.num_views = 2;
  d.source = "<hand-made>";
  for (int e = 0; e < 40; ++e) {
    data::Episode ep;
    ep.id = e;
    ep.image_paths = {"v0.jpg", "v1.jpg"};
    for (int t = 0; t < 3; ++t) {
      data::Turn turn;
      turn.task_index = (e / 2 + t) % 2;
      turn.task = d.tasks[turn.task_index];
      const int a = (e + t) % 2;  // 0 local, 1 cloud
      turn.target = a == 0 ? data::Target::kLocal : data::Target::kCloud;
      turn.answer = "fine";
      turn.score = score(turn.task_index, a);
      ep.turns.push_back(turn);
      ep.association.push_back({0.2, 0.3});
    }
    d.episodes.push_back(ep);
  }
  return d;
}

inline env::SimulatorConfig TwoViewConfig() {
  using env::SimulatorConfig;
  SimulatorConfig config;
  config.catalog.networks.push_back({"Two", {1.0, 2.0, 3.5}});
  config.catalog.cloud_llm.money_usd = {0.001, 0.004, 0.009};
  config.network = "Two";
  config.time_span = 3;
  config.k_neighbors = 3;
  return config;
}

}  // namespace lcio::testing
