// The offline simulator: what a decision would have cost and earned on a
// logged M4A1 turn. One semantics for training, evaluation and the Oracle.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lcio/data/m4a1.h"
#include "lcio/env/action_table.h"
#include "lcio/env/observation.h"
#include "lcio/env/profiles.h"
#include "lcio/env/response_estimator.h"
#include "lcio/env/task_action_means.h"

namespace lcio::env {

struct RewardWeights {
  double alpha = 1.0;  // response
  double beta_association = 1.0 / 3;
  double beta_latency = 1.0 / 3;
  double beta_usage = 1.0 / 3;
};
// Each weight is at most this in magnitude: a reward sums weights times
// figures of up to 1000 (a score), over episodes and splits; 1e308 gave inf
// rewards and NaN percentages in a run that exited 0.
inline constexpr double kMaxRewardWeight = 1e6;

// Per-episode (per-conversation) budgets.
struct Budget {
  double latency_s = 30.0;
  double money_usd = 0.05;
};

// Where a simulated turn's response comes from.
enum class ResponseModelFamily {
  // The kNN over the history window and the action (response_estimator.h).
  kKnn,
  // Per task x action means, history-free (task_action_means.h). The kNN is
  // still fitted: it is what response-aware observations predict with.
  kTaskActionMeans,
  // The smaller of the two answers: pessimism where the families disagree
  // (for two models, the mean minus half their disagreement, as MOPO
  // penalises an ensemble's spread), so a policy cannot profit from one
  // model's optimism.
  kPessimistic,
};

// "knn", "task_action" or "pessimistic".
std::string ResponseModelFamilyName(ResponseModelFamily family);
absl::StatusOr<ResponseModelFamily> ParseResponseModelFamily(const std::string& name);

struct SimulatorConfig {
  std::string device = "Jetson TX2";
  std::string network = "Wired";
  RewardWeights weights;
  int time_span = 5;
  int k_neighbors = 5;
  // kScikitKdTree only to reproduce the original figures (docs/simulator.md).
  NeighbourRule knn_rule = NeighbourRule::kTieInclusive;
  ResponseModelFamily response_model = ResponseModelFamily::kKnn;
  data::RefusalRule refusal;
  ProfileCatalog catalog = ProfileCatalog::BuiltIn();
};

struct TurnOutcome {
  double response = 0;     // kNN estimate
  double association = 0;  // sum over uploaded views (raw)
  double time_s = 0;
  double money_usd = 0;
  double norm_time = 0;
  double norm_money = 0;
  double reward = 0;
};

class Simulator {
 public:
  // Fits the response estimator on `train_episodes` (indices into dataset).
  static absl::StatusOr<std::shared_ptr<const Simulator>> Create(
      const data::Dataset& dataset, const std::vector<int>& train_episodes,
      const SimulatorConfig& config);

  const SimulatorConfig& config() const { return config_; }
  const ActionTable& actions() const { return actions_; }
  const CostModel& costs() const { return costs_; }
  // The kNN, fitted whatever the response model family.
  const std::shared_ptr<const ResponseEstimator>& estimator() const { return estimator_; }
  // The largest response the response model can answer (the Oracle's bound).
  double max_response() const;
  // The dataset episode indices the response model was fitted on, sorted:
  // evaluation checks that no decision maker consults a model fitted on the
  // episodes it is scored on.
  const std::vector<int>& fitted_episodes() const { return fitted_episodes_; }
  int num_views() const { return actions_.num_views(); }
  int num_tasks() const { return num_tasks_; }

  // Outcome of `action` in `context` (the context's association and task are
  // the current turn's). Pass a cache to memoise kNN answers.
  TurnOutcome Evaluate(const DecisionContext& context, int action,
                       CachedEstimator* cache = nullptr) const;
  // The response part of Evaluate.
  double Response(const DecisionContext& context, int action,
                  CachedEstimator* cache = nullptr) const;
  double Reward(double response, double association, int action) const;
  // The policy observation layout this simulator's profiles imply.
  ObservationLayout DefaultLayout() const;
  // This simulator under another device and network of its catalog: the
  // response model (which does not depend on the profile) is shared, only the
  // costs differ. Training draws a profile per episode with it.
  absl::StatusOr<std::shared_ptr<const Simulator>> WithProfile(const ProfilePair& profile) const;

 private:
  Simulator(SimulatorConfig config, ActionTable actions, CostModel costs)
      : config_(std::move(config)), actions_(std::move(actions)), costs_(std::move(costs)) {}
  SimulatorConfig config_;
  ActionTable actions_;
  CostModel costs_;
  int num_tasks_ = 0;
  std::shared_ptr<const ResponseEstimator> estimator_;
  std::optional<TaskActionMeans> task_action_means_;  // kTaskActionMeans, kPessimistic
  std::vector<int> fitted_episodes_;
};

// One logged episode replayed under a sequence of decisions.
class EpisodeRun {
 public:
  EpisodeRun(const Simulator& simulator, const data::Episode& episode, const Budget& budget,
             CachedEstimator* cache = nullptr);
  bool done() const { return turn_ >= static_cast<int>(episode_->turns.size()); }
  int turn() const { return turn_; }
  int num_turns() const { return static_cast<int>(episode_->turns.size()); }
  // What the policy sees at the current turn (valid while !done()).
  const DecisionContext& context() const { return context_; }
  TurnOutcome Step(int action);

  const Budget& budget() const { return budget_; }
  double spent_time_s() const { return spent_time_s_; }
  double spent_money_usd() const { return spent_money_usd_; }
  double sum_reward() const { return sum_reward_; }
  double sum_response() const { return sum_response_; }
  double sum_association() const { return sum_association_; }

 private:
  void PrepareContext();
  const Simulator* simulator_;
  const data::Episode* episode_;
  Budget budget_;
  CachedEstimator* cache_;
  DecisionContext context_;
  int turn_ = 0;
  double spent_time_s_ = 0, spent_money_usd_ = 0;
  double sum_reward_ = 0, sum_response_ = 0, sum_association_ = 0;
};

}  // namespace lcio::env
