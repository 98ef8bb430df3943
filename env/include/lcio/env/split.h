// Train/test splits of a dataset's episodes (as indices into Dataset::episodes).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "lcio/data/m4a1.h"

namespace lcio::env {

struct Split {
  std::vector<int> train;
  std::vector<int> test;
};

// A seeded shuffle (portable: the same on every standard library); the first
// floor(n * test_ratio) episodes are the test set.
absl::StatusOr<Split> RandomSplit(int num_episodes, uint64_t seed, double test_ratio);
// Explicit episode ids; every id must exist and the sides must not overlap.
absl::StatusOr<Split> SplitFromIds(const data::Dataset& dataset,
                                   const std::vector<int64_t>& train_ids,
                                   const std::vector<int64_t>& test_ids);

// Portable seeded helpers shared by the baselines and the trainer.
uint64_t MixSeed(uint64_t a, uint64_t b);
// Uniform integer in [0, n), unbiased, from a 64-bit generator's output.
template <typename Rng>
uint64_t UniformIndex(Rng& rng, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = rng();
  while (x >= limit);
  return x % n;
}
// Uniform double in [0, 1) with 53 random bits.
template <typename Rng>
double UniformUnit(Rng& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

}  // namespace lcio::env
