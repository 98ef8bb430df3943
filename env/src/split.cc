#include "lcio/env/split.h"

#include <cmath>
#include <random>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace lcio::env {

uint64_t MixSeed(uint64_t a, uint64_t b) {
  // splitmix64 of a combination: decorrelates nearby seeds.
  uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

absl::StatusOr<Split> RandomSplit(int num_episodes, uint64_t seed, double test_ratio) {
  if (!(test_ratio > 0 && test_ratio < 1))
    return absl::InvalidArgumentError(
        absl::StrCat("test_ratio = ", test_ratio, ": must be in (0, 1)"));
  const int test_size = static_cast<int>(std::floor(num_episodes * test_ratio));
  if (test_size < 1 || test_size >= num_episodes)
    return absl::InvalidArgumentError(absl::StrCat(num_episodes, " episodes with test_ratio ",
                                                   test_ratio, " leave an empty side"));
  std::vector<int> order(num_episodes);
  for (int i = 0; i < num_episodes; ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  for (int i = num_episodes - 1; i > 0; --i)
    std::swap(order[i], order[UniformIndex(rng, static_cast<uint64_t>(i) + 1)]);
  Split split;
  split.test.assign(order.begin(), order.begin() + test_size);
  split.train.assign(order.begin() + test_size, order.end());
  return split;
}

absl::StatusOr<Split> SplitFromIds(const data::Dataset& dataset,
                                   const std::vector<int64_t>& train_ids,
                                   const std::vector<int64_t>& test_ids) {
  absl::flat_hash_map<int64_t, int> index;
  for (size_t i = 0; i < dataset.episodes.size(); ++i) index[dataset.episodes[i].id] = i;
  Split split;
  absl::flat_hash_set<int64_t> seen;
  auto take = [&](const std::vector<int64_t>& ids, const char* side,
                  std::vector<int>& out) -> absl::Status {
    for (int64_t id : ids) {
      auto it = index.find(id);
      if (it == index.end())
        return absl::InvalidArgumentError(
            absl::StrCat(side, " episode id ", id, " is not in ", dataset.source));
      if (!seen.insert(id).second)
        return absl::InvalidArgumentError(
            absl::StrCat(side, " episode id ", id, " appears twice or on both sides"));
      out.push_back(it->second);
    }
    return absl::OkStatus();
  };
  if (auto s = take(train_ids, "train", split.train); !s.ok()) return s;
  if (auto s = take(test_ids, "test", split.test); !s.ok()) return s;
  if (split.train.empty() || split.test.empty())
    return absl::InvalidArgumentError("both the train and the test side need episodes");
  return split;
}

}  // namespace lcio::env
