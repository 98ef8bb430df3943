// The environment the trainer steps: episodes drawn from the training split,
// budgets drawn per episode, observations from the shared encoder, and the
// agent's own decisions in the history (never the logged ones).
#pragma once

#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lcio/env/simulator.h"

namespace lcio::env {

// How each training episode's budgets are drawn, so that one policy learns to
// serve whatever budget a request brings.
struct BudgetDistribution {
  enum class Kind { kFixed, kUniform, kNormal, kMixture };
  Kind kind = Kind::kFixed;
  Budget fixed;                             // kFixed; the mean of kNormal and kMixture
  Budget low{2.0, 0.002}, high{60.0, 0.1};  // uniform range; clip range of the normal
  Budget stddev{10.0, 0.02};                // kNormal, kMixture
  double extreme_share = 0.2;               // kMixture: drawn near `low` or `high` instead

  Budget Sample(std::mt19937_64& rng) const;
  absl::Status Validate() const;
  static absl::StatusOr<Kind> ParseKind(const std::string& name);
  static std::string KindName(Kind kind);
};

struct StepResult {
  TurnOutcome outcome;
  double reward = 0;
  bool done = false;
  // Constraint signals. Over an episode the excess increments sum to the
  // amount spent beyond each budget; the fractions sum to the share of each
  // budget spent.
  double excess_latency_s = 0;
  double excess_money_usd = 0;
  double latency_fraction = 0;
  double money_fraction = 0;
};

class TrainingEnv {
 public:
  static absl::StatusOr<TrainingEnv> Create(std::shared_ptr<const Simulator> simulator,
                                            const data::Dataset& dataset, std::vector<int> episodes,
                                            const ObservationLayout& layout,
                                            const BudgetDistribution& budgets, uint64_t seed);

  int observation_size() const { return encoder_.size(); }
  int num_actions() const { return simulator_->actions().size(); }
  const ObservationEncoder& encoder() const { return encoder_; }
  const Simulator& simulator() const { return *simulator_; }

  // Starts a random training episode with a sampled budget.
  void Reset();
  void ResetTo(int episode_index, const Budget& budget);
  void Observe(float* out) const { encoder_.Encode(run_->context(), out); }
  StepResult Step(int action);

  const EpisodeRun& run() const { return *run_; }
  const Budget& budget() const { return budget_; }
  const CachedEstimator& cache() const { return *cache_; }

 private:
  TrainingEnv(std::shared_ptr<const Simulator> simulator, const data::Dataset& dataset,
              std::vector<int> episodes, ObservationEncoder encoder, BudgetDistribution budgets,
              uint64_t seed);
  std::shared_ptr<const Simulator> simulator_;
  const data::Dataset* dataset_;
  std::vector<int> episodes_;
  ObservationEncoder encoder_;
  BudgetDistribution budgets_;
  std::mt19937_64 rng_;
  std::unique_ptr<CachedEstimator> cache_;
  Budget budget_;
  std::optional<EpisodeRun> run_;
};

}  // namespace lcio::env
