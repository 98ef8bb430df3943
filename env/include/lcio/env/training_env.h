// The environment the trainer steps: episodes drawn from the training split,
// budgets drawn per episode, observations from the shared encoder, and the
// agent's own decisions in the history (never the logged ones).
#pragma once

#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
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
  // True on the one step whose spending first goes past the budget.
  bool crossed_latency_budget = false;
  bool crossed_money_budget = false;
  double latency_fraction = 0;
  double money_fraction = 0;
  // The action the episode took: the proposal, or the budget shield's
  // replacement when the shield acts in training (set_shield_penalty).
  int action = 0;
  bool shield_overridden = false;
};

class TrainingEnv {
 public:
  static absl::StatusOr<TrainingEnv> Create(std::shared_ptr<const Simulator> simulator,
                                            const data::Dataset& dataset, std::vector<int> episodes,
                                            const ObservationLayout& layout,
                                            const BudgetDistribution& budgets, uint64_t seed);
  // Cross-fitting: simulators[0] is the primary (costs, actions, layout);
  // episodes[i] is scored by simulators[scorer_of_episode[i]]. With a
  // simulator fitted without an episode's own turns scoring it, the kNN never
  // hands the agent an episode's own logged score back, as it never does for a
  // test episode; every simulator must share the primary's configuration.
  static absl::StatusOr<TrainingEnv> Create(
      std::vector<std::shared_ptr<const Simulator>> simulators, const data::Dataset& dataset,
      std::vector<int> episodes, std::vector<int> scorer_of_episode,
      const ObservationLayout& layout, const BudgetDistribution& budgets, uint64_t seed,
      std::vector<ProfilePair> profiles = {});

  int observation_size() const { return encoder_.size(); }
  int num_actions() const { return simulators_[0]->actions().size(); }
  const ObservationEncoder& encoder() const { return encoder_; }
  const Simulator& simulator() const { return *simulators_[0]; }

  // Starts a random training episode with a sampled budget.
  void Reset();
  // episode_index is the dataset's; a training episode gets its own scorer,
  // any other episode the primary simulator.
  void ResetTo(int episode_index, const Budget& budget);
  // The same under profiles[profile] (0 when no profiles were given).
  void ResetTo(int episode_index, const Budget& budget, int profile);
  int num_profiles() const { return static_cast<int>(by_profile_.size()); }
  // The profile of the current episode (index into the profiles given).
  int profile() const { return current_profile_; }
  void Observe(float* out) const {
    encoder_.Encode(run_->context(), out, caches_[current_scorer_].get());
  }
  // Takes `action`, or with the shield in training the budget shield's
  // replacement for it (ranked by `scores`, one per action, as the server
  // ranks by the policy's scores; null: the cheapest fitting action).
  StepResult Step(int action, const float* scores = nullptr);
  // penalty > 0: the budget shield acts in training as it does in serving,
  // replacing a proposal that does not fit the remaining budgets (with the
  // reserve of kDefaultReserveTurns), and each replaced proposal costs
  // `penalty` reward, so that the policy learns to propose what fits instead
  // of leaning on the shield where training rarely draws tight budgets.
  // 0 (default): proposals are taken as they are.
  void set_shield_penalty(double penalty) { shield_penalty_ = penalty; }
  double shield_penalty() const { return shield_penalty_; }

  const EpisodeRun& run() const { return *run_; }
  const Budget& budget() const { return budget_; }
  // The kNN cache of the simulator scoring the current episode.
  const CachedEstimator& cache() const { return *caches_[current_scorer_]; }

 private:
  TrainingEnv(std::vector<std::shared_ptr<const Simulator>> simulators,
              const data::Dataset& dataset, std::vector<int> episodes,
              std::vector<std::vector<std::shared_ptr<const Simulator>>> by_profile,
              std::vector<int> scorer_of_episode, ObservationEncoder encoder,
              BudgetDistribution budgets, uint64_t seed);
  std::vector<std::shared_ptr<const Simulator>> simulators_;
  // [profile][scorer]: simulators_ under each drawn profile; empty when none.
  std::vector<std::vector<std::shared_ptr<const Simulator>>> by_profile_;
  int current_profile_ = 0;
  const data::Dataset* dataset_;
  std::vector<int> episodes_;
  absl::flat_hash_map<int, int> scorer_by_episode_;  // dataset episode index -> simulator
  int current_scorer_ = 0;
  ObservationEncoder encoder_;
  BudgetDistribution budgets_;
  std::mt19937_64 rng_;
  std::vector<std::unique_ptr<CachedEstimator>> caches_;  // one per simulator
  Budget budget_;
  const Simulator* current_simulator_ = nullptr;
  double shield_penalty_ = 0;
  std::vector<double> ranking_;  // Step's scratch
  std::optional<EpisodeRun> run_;
};

}  // namespace lcio::env
