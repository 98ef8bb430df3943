// Seeded synthetic M4A1-schema data for scaling tests and benchmarks.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "lcio/data/m4a1.h"

namespace lcio::data {

struct SynthConfig {
  int64_t num_episodes = 1000;
  int num_views = 3;
  int num_tasks = 4;
  int min_turns = 2;
  int max_turns = 5;
  uint64_t seed = 1;
  // Quality/cost structure. Each task has one "key" view; a cloud answer's
  // expected score rises with the key view uploaded and with the number of
  // views; local answers score lower. Noise is Gaussian, clipped to [0, 9].
  double local_score_mean = 5.0;
  double cloud_score_mean = 7.0;
  double key_view_bonus = 1.5;
  double per_view_bonus = 0.3;
  double score_noise = 1.0;
  double refusal_probability = 0.05;  // answer gets a refusal phrase
  double cloud_probability = 0.5;     // logged policy's share of cloud turns
  double local_time_s = 2.0;
  double cloud_time_s = 5.0;
  double per_view_time_s = 1.0;
  double local_usage_usd = 6e-5;
  double cloud_usage_usd = 0.005;
  double per_view_usage_usd = 0.004;
  int answer_length = 64;  // characters of filler answer text
};

// Checks every field of the config (counts >= 1, min_turns <= max_turns,
// probabilities in [0, 1], finite non-negative amounts); the error names the
// field, the value and the rule.
absl::Status ValidateSynthConfig(const SynthConfig& config);

// The key view of task `task`: task % num_views.
int SynthKeyView(int task, int num_views);

// Generates a dataset whose tasks are "task_0".."task_{Y-1}" (sorted order =
// index order for Y <= 10; names are zero-padded so the order holds for any Y).
// The same config gives the same bytes on
// every platform (own distributions on top of std::mt19937_64). A config that
// fails ValidateSynthConfig is clamped to the nearest valid one.
Dataset GenerateSynthetic(const SynthConfig& config);

}  // namespace lcio::data
