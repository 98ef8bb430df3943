#include "lcio/data/synth.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "lcio/data/m4a1.h"
#include "test_util.h"

namespace lcio::data {
namespace {

using testing::ExpectError;
using testing::ExpectSameDataset;

SynthConfig Small(int views, int tasks, uint64_t seed = 1) {
  SynthConfig c;
  c.num_episodes = 200;
  c.num_views = views;
  c.num_tasks = tasks;
  c.min_turns = 1;
  c.max_turns = 6;
  c.seed = seed;
  return c;
}

// Structure every generated dataset must have, whatever the config.
void CheckShape(const Dataset& d, const SynthConfig& c) {
  ASSERT_EQ(d.episodes.size(), static_cast<size_t>(c.num_episodes));
  EXPECT_EQ(d.num_views, c.num_views);
  ASSERT_EQ(d.tasks.size(), static_cast<size_t>(c.num_tasks));
  EXPECT_TRUE(std::is_sorted(d.tasks.begin(), d.tasks.end()));  // sorted = index order
  EXPECT_EQ(std::set<std::string>(d.tasks.begin(), d.tasks.end()).size(), d.tasks.size());
  std::set<int> lengths;
  for (const Episode& e : d.episodes) {
    ASSERT_EQ(e.image_paths.size(), static_cast<size_t>(c.num_views));
    ASSERT_GE(e.turns.size(), static_cast<size_t>(c.min_turns));
    ASSERT_LE(e.turns.size(), static_cast<size_t>(c.max_turns));
    lengths.insert(static_cast<int>(e.turns.size()));
    ASSERT_EQ(e.association.size(), e.turns.size());
    for (size_t i = 0; i < e.turns.size(); ++i) {
      const Turn& t = e.turns[i];
      ASSERT_GE(t.task_index, 0);
      ASSERT_LT(t.task_index, c.num_tasks);
      EXPECT_EQ(t.task, d.tasks[t.task_index]);
      EXPECT_GE(t.score, 0);
      EXPECT_LE(t.score, 9);
      EXPECT_GT(t.interaction_time_s, 0);
      EXPECT_GT(t.usage_cost_usd, 0);
      if (t.target == Target::kLocal) {
        EXPECT_TRUE(t.uploaded_views.empty());
      }
      std::set<int> views(t.uploaded_views.begin(), t.uploaded_views.end());
      EXPECT_EQ(views.size(), t.uploaded_views.size());
      for (int v : t.uploaded_views) {
        EXPECT_GE(v, 0);
        EXPECT_LT(v, c.num_views);
      }
      const auto& row = e.association[i];
      ASSERT_EQ(row.size(), static_cast<size_t>(c.num_views));
      const int key = SynthKeyView(t.task_index, c.num_views);
      for (int v = 0; v < c.num_views; ++v) {
        EXPECT_GE(row[v], 0);
        EXPECT_LE(row[v], 1);
        if (v != key) {
          EXPECT_GT(row[key], row[v]);
        }
      }
    }
  }
  // Every length in [min, max] shows up in a sample this size.
  EXPECT_EQ(lengths.size(), static_cast<size_t>(c.max_turns - c.min_turns + 1));
}

TEST(Synth, DefaultShapeLoadsAndRoundTrips) {
  const SynthConfig c = Small(3, 4);
  const Dataset d = GenerateSynthetic(c);
  CheckShape(d, c);
  EXPECT_EQ(d.tasks, (std::vector<std::string>{"task_0", "task_1", "task_2", "task_3"}));
  auto back = ParseM4A1(ToM4A1Json(d), "synth.json");
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameDataset(d, *back);
}

TEST(Synth, SevenViewsElevenTasks) {
  const SynthConfig c = Small(7, 11, 3);
  const Dataset d = GenerateSynthetic(c);
  CheckShape(d, c);
  EXPECT_EQ(d.tasks.front(), "task_00");
  EXPECT_EQ(d.tasks.back(), "task_10");
  // Loaded without options: the sorted vocabulary equals the generator's order.
  auto back = ParseM4A1(ToM4A1Json(d, /*pretty=*/true), "synth7x11.json");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->num_views, 7);
  ExpectSameDataset(d, *back);
  // And with the vocabulary and view count fixed.
  LoadOptions o;
  o.task_vocabulary = d.tasks;
  o.num_views = 7;
  EXPECT_TRUE(ParseM4A1(ToM4A1Json(d), "synth7x11.json", o).ok());
}

TEST(Synth, ManyTasksZeroPadded) {
  SynthConfig c = Small(2, 101);
  c.num_episodes = 20;
  const Dataset d = GenerateSynthetic(c);
  EXPECT_EQ(d.tasks[0], "task_000");
  EXPECT_EQ(d.tasks[100], "task_100");
  EXPECT_TRUE(std::is_sorted(d.tasks.begin(), d.tasks.end()));
  SynthConfig one = Small(1, 1);
  one.num_episodes = 5;
  const Dataset d1 = GenerateSynthetic(one);
  EXPECT_EQ(d1.tasks, std::vector<std::string>{"task_0"});
  EXPECT_TRUE(ParseM4A1(ToM4A1Json(d1), "one.json").ok());
}

TEST(Synth, DeterministicPerSeed) {
  const std::string a = ToM4A1Json(GenerateSynthetic(Small(3, 4, 11)));
  const std::string b = ToM4A1Json(GenerateSynthetic(Small(3, 4, 11)));
  const std::string c = ToM4A1Json(GenerateSynthetic(Small(3, 4, 12)));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(Synth, GoldenDigestPinsTheOutput) {
  // The generator uses no std:: distribution, so these bytes must be the same
  // with any standard library; a change here means every synthetic artifact
  // changes too.
  SynthConfig c = Small(3, 4, 2024);
  c.num_episodes = 50;
  EXPECT_EQ(Sha256Hex(ToM4A1Json(GenerateSynthetic(c))),
            "a59bd625554df4d36bceccc3e1f14391e91e6390d6056e0169325a8c9a03f690");
}

TEST(Synth, QualityAndCostStructure) {
  SynthConfig c = Small(3, 4, 5);
  c.num_episodes = 5000;
  c.min_turns = 2;
  c.max_turns = 5;
  c.score_noise = 0.5;  // keep clipping at 0 and 9 away from the means
  c.cloud_score_mean = 6.0;
  const Dataset d = GenerateSynthetic(c);
  RefusalRule rule;
  double local_sum = 0, key_sum = 0, nokey_sum = 0, cloud_frac = 0, refusals = 0;
  double local_cost = 0, local_time = 0;
  int local_n = 0, key_n = 0, nokey_n = 0, n = 0;
  for (const Episode& e : d.episodes) {
    for (const Turn& t : e.turns) {
      ++n;
      refusals += rule.IsRefusal(t.answer);
      EXPECT_GE(t.answer.size(), static_cast<size_t>(c.answer_length));
      if (t.target == Target::kLocal) {
        local_sum += t.score;
        local_cost += t.usage_cost_usd;
        local_time += t.interaction_time_s;
        ++local_n;
        continue;
      }
      cloud_frac += 1;
      // Text-only cloud calls cost exactly the cloud base (up to +-10% noise).
      const double views = static_cast<double>(t.uploaded_views.size());
      const double base = c.cloud_usage_usd + c.per_view_usage_usd * views;
      EXPECT_GE(t.usage_cost_usd, base * 0.9 - 1e-12);
      EXPECT_LE(t.usage_cost_usd, base * 1.1 + 1e-12);
      const int key = SynthKeyView(t.task_index, c.num_views);
      const bool has_key = std::count(t.uploaded_views.begin(), t.uploaded_views.end(), key) > 0;
      // Remove the per-view bonus so the two groups differ only by the key bonus.
      const double adjusted = t.score - c.per_view_bonus * views;
      (has_key ? key_sum : nokey_sum) += adjusted;
      ++(has_key ? key_n : nokey_n);
    }
  }
  ASSERT_GT(local_n, 1000);
  ASSERT_GT(key_n, 1000);
  ASSERT_GT(nokey_n, 1000);
  EXPECT_NEAR(local_sum / local_n, c.local_score_mean, 0.05);
  EXPECT_NEAR(key_sum / key_n - nokey_sum / nokey_n, c.key_view_bonus, 0.1);
  EXPECT_NEAR(cloud_frac / n, c.cloud_probability, 0.02);
  EXPECT_NEAR(refusals / n, c.refusal_probability, 0.01);
  EXPECT_NEAR(local_cost / local_n, c.local_usage_usd, c.local_usage_usd * 0.01);
  EXPECT_NEAR(local_time / local_n, c.local_time_s, c.local_time_s * 0.01);
}

TEST(Synth, AllLocalAndAllCloud) {
  SynthConfig c = Small(3, 4);
  c.cloud_probability = 0;
  c.refusal_probability = 0;
  for (const Episode& e : GenerateSynthetic(c).episodes) {
    for (const Turn& t : e.turns) {
      EXPECT_EQ(t.target, Target::kLocal);
      EXPECT_FALSE(RefusalRule().IsRefusal(t.answer)) << t.answer;
    }
  }
  c.cloud_probability = 1;
  c.refusal_probability = 1;
  for (const Episode& e : GenerateSynthetic(c).episodes) {
    for (const Turn& t : e.turns) {
      EXPECT_EQ(t.target, Target::kCloud);
      EXPECT_TRUE(RefusalRule().IsRefusal(t.answer)) << t.answer;
    }
  }
}

TEST(Synth, ValidateConfig) {
  EXPECT_TRUE(ValidateSynthConfig(SynthConfig{}).ok());
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  SynthConfig c;
  c.num_views = 0;
  ExpectError(ValidateSynthConfig(c), kInvalid, {"num_views", "= 0", "must be in [1, 12]"});
  c = SynthConfig{};
  c.num_tasks = -2;
  ExpectError(ValidateSynthConfig(c), kInvalid, {"num_tasks", "= -2"});
  c = SynthConfig{};
  c.num_episodes = 0;
  ExpectError(ValidateSynthConfig(c), kInvalid, {"num_episodes", "= 0"});
  c = SynthConfig{};
  c.min_turns = 4;
  c.max_turns = 3;
  ExpectError(ValidateSynthConfig(c), kInvalid, {"max_turns", "= 3", "must be in [4, 1000]"});
  // Upper bounds: these asked for more memory or disk than a machine has
  // (2e9 episodes aborted out of memory, a 2e9-byte answer wrote gigabytes).
  c = SynthConfig{};
  c.num_episodes = 2000000000;
  ExpectError(ValidateSynthConfig(c), kInvalid, {"num_episodes", "must be in [1, 1000000]"});
  c = SynthConfig{};
  c.max_turns = 2000000000;
  ExpectError(ValidateSynthConfig(c), kInvalid, {"max_turns", "must be in [2, 1000]"});
  c = SynthConfig{};
  c.answer_length = 2000000000;
  ExpectError(ValidateSynthConfig(c), kInvalid, {"answer_length", "must be in [0, 4096]"});
  c = SynthConfig{};
  c.num_episodes = 1000000;
  c.max_turns = 20;
  ExpectError(ValidateSynthConfig(c), kInvalid, {"num_episodes", "at most 1e7 turns"});
  c = SynthConfig{};
  c.cloud_probability = 1.5;
  ExpectError(ValidateSynthConfig(c), kInvalid, {"cloud_probability", "1.5", "[0, 1]"});
  c = SynthConfig{};
  c.score_noise = -1;
  ExpectError(ValidateSynthConfig(c), kInvalid, {"score_noise", "-1", ">= 0"});
  c = SynthConfig{};
  c.answer_length = -1;
  ExpectError(ValidateSynthConfig(c), kInvalid, {"answer_length", "-1"});
  // A turn the loader would refuse (over data::kMaxTurnTimeS with the jitter).
  c = SynthConfig{};
  c.cloud_time_s = 1e6;
  ExpectError(ValidateSynthConfig(c), kInvalid, {"cloud_time_s", "at most 1e+06"});
  c = SynthConfig{};
  c.cloud_usage_usd = 1e6;
  ExpectError(ValidateSynthConfig(c), kInvalid, {"cloud_usage_usd", "at most 1e+06"});

  // An invalid config is clamped, and what comes out still loads.
  SynthConfig bad;
  bad.num_episodes = 3;
  bad.num_views = 0;
  bad.min_turns = 0;
  bad.max_turns = -1;
  bad.cloud_probability = 2;
  bad.cloud_time_s = 1e9;
  bad.cloud_usage_usd = 1e9;
  const Dataset d = GenerateSynthetic(bad);
  EXPECT_EQ(d.num_views, 1);
  EXPECT_TRUE(ParseM4A1(ToM4A1Json(d), "clamped.json").ok());
}

}  // namespace
}  // namespace lcio::data
