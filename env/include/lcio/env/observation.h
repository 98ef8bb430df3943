// The observation encoder: one implementation for the response estimator's
// keys, the trainer, the evaluator and the server, so that what a policy saw
// in training is exactly what it sees in service. The includes run one way:
// this file uses the response estimator (response_estimator.h), which knows
// nothing of observations.
#pragma once

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lcio/data/m4a1.h"
#include "lcio/env/action_table.h"
#include "lcio/env/response_estimator.h"

namespace lcio::env {

class CostModel;
class ResponsePredictionMemo;

// What a policy may know when it decides a turn: this conversation's earlier
// decisions, the current prompt's task and view association, the budget left.
struct DecisionContext {
  std::vector<int> previous_actions;  // one per earlier turn, oldest first
  std::vector<int> previous_tasks;    // task index of each earlier turn
  int task_index = 0;
  std::vector<double> association;  // current prompt vs each view, in [0, 1]
  double remaining_latency_s = std::numeric_limits<double>::infinity();
  double remaining_money_usd = std::numeric_limits<double>::infinity();
  // What each action costs under the profile (device x network) this
  // decision is made for: the simulator's CostModel in training and
  // evaluation, the request's in the server. Empty when not known; a
  // profile_aware layout needs them (ObservationEncoder::Check).
  std::vector<double> action_time_s, action_money_usd;

  int turn_index() const { return static_cast<int>(previous_actions.size()); }
};

// The reference's per-turn state s_j = [c, u_0..u_{X-1}, task_j]: c and u
// describe the decision of turn j-1 (c = -1 and u = 0 at the first turn; a
// local decision is c = 0, u = 0). The window holds s_{t-T+1}..s_t with
// [-1, ..., -1] before the first turn.
int HistoryWidth(int num_views, int time_span);
// Sets the context's per-action costs from a cost model.
void SetActionCosts(const CostModel& costs, DecisionContext* context);
void EncodeHistory(const ActionTable& actions, int time_span, const DecisionContext& context,
                   double* out);
// The response estimator's key: the history window ++ [cloud, v_0..v_{X-1}].
int ResponseKeyWidth(int num_views, int time_span);
void EncodeResponseKey(const ActionTable& actions, int time_span, const DecisionContext& context,
                       int action, double* out);
// The response estimator fitted on logged turns: each turn of the episodes
// gives the point (its response key under the logged decisions) with value
// its response score (refusal rule applied).
absl::StatusOr<std::shared_ptr<const ResponseEstimator>> FitResponseEstimator(
    const data::Dataset& dataset, const std::vector<int>& episode_indices,
    const ActionTable& actions, int time_span, int k_neighbors, const data::RefusalRule& refusal,
    NeighbourRule rule = NeighbourRule::kTieInclusive);

// The policy's observation, recorded in every artifact. With all the optional
// parts off it is exactly the reference's observation.
struct ObservationLayout {
  // 2 added response_aware; a version-1 layout reads as response_aware off.
  // 3 added fit_aware; earlier layouts read as fit_aware off.
  // 4 added profile_aware; earlier layouts read as profile_aware off.
  static constexpr int kVersion = 4;
  // The history window's longest: the response kNN searches a trie as deep as
  // the key (5 numbers a turn), on the caller's stack.
  static constexpr int kMaxTimeSpan = 1000;
  int num_views = 3;
  int num_tasks = 4;
  int time_span = 5;
  bool task_one_hot = true;  // current task as a one-hot vector
  bool prompt_aware = true;  // association of the current prompt with each view
  bool budget_aware = true;  // remaining latency and money, scaled
  // The response model's predicted response score for each action in this
  // context (the kNN the simulator scores with, carried in the artifact),
  // divided by response_scale (the trainer uses the mean fitted score, so a
  // typical answer reads about 1) and clipped to [0, kResponseClip]. Off by
  // default, and absent from version-1 layouts.
  bool response_aware = false;
  double response_scale = 1.0;
  static constexpr double kResponseClip = 16.0;
  // One feature per action: 1 when the action fits the remaining budgets by
  // the budget shield's rule (env::FitsCosts with kDefaultReserveTurns), 0
  // when it does not. The costs are the training profile's, one per action,
  // so the artifact carries them. Whether a view upload still fits is a step
  // in the remaining budget that a network learns only roughly from the
  // budget features; this states it.
  bool fit_aware = false;
  std::vector<double> action_time_s, action_money_usd;
  // Remaining budgets are divided by these (the most expensive action's cost
  // under the training profile) and clipped to [0, kBudgetClip].
  double latency_scale_s = 1.0;
  double money_scale_usd = 1.0;
  static constexpr double kBudgetClip = 16.0;
  // The decision's own profile (DecisionContext::action_time_s/money_usd),
  // so that one policy serves every device and network: per action its
  // latency / profile_time_scale_s and money / profile_money_scale_usd, then
  // each remaining budget over the profile's most expensive action (all
  // clipped to [0, kBudgetClip]). The scales are fixed constants, not the
  // training profile's costs, and are recorded in the artifact so the units
  // never drift. With profile_aware, fit_aware uses the context's costs too.
  bool profile_aware = false;
  static constexpr double kProfileTimeScaleS = 10.0;
  static constexpr double kProfileMoneyScaleUsd = 0.01;
  double profile_time_scale_s = kProfileTimeScaleS;
  double profile_money_scale_usd = kProfileMoneyScaleUsd;

  int size() const;
  int num_actions() const { return ActionTable::SizeFor(num_views); }
  std::vector<std::string> FeatureNames() const;
  static ObservationLayout Reference(int num_views, int num_tasks, int time_span);
};

class ObservationEncoder {
 public:
  // A response_aware layout needs the response model whose predictions it
  // encodes (key width matching the layout); other layouts ignore it. A
  // fit_aware layout that is not profile_aware needs one finite,
  // non-negative cost per action.
  static absl::StatusOr<ObservationEncoder> Create(
      const ObservationLayout& layout,
      std::shared_ptr<const ResponseEstimator> response_model = nullptr);
  const ObservationLayout& layout() const { return layout_; }
  const ActionTable& actions() const { return actions_; }
  int size() const { return layout_.size(); }
  // Validates what the context carries against the layout (view count, task
  // range, action range, per-action costs: one per action, finite, >= 0, and
  // present when the layout is profile_aware) so that a bad request cannot
  // index out of bounds.
  absl::Status Check(const DecisionContext& context) const;
  // Thread-safe. `cache`, when given, answers the response model's queries
  // instead of the encoder's own model (the trainer passes the cache of the kNN scoring the
  // current episode, so features and rewards come from the same model).
  void Encode(const DecisionContext& context, float* out, CachedEstimator* cache = nullptr) const;
  // The response model's prediction for each action (empty when the layout is
  // not response_aware): what the response features encode, unscaled.
  std::vector<double> PredictResponses(const DecisionContext& context,
                                       CachedEstimator* cache = nullptr) const;
  const std::shared_ptr<const ResponseEstimator>& response_model() const { return response_model_; }

 private:
  ObservationEncoder(ObservationLayout layout, ActionTable actions,
                     std::shared_ptr<const ResponseEstimator> response_model);
  ObservationLayout layout_;
  ActionTable actions_;
  std::shared_ptr<const ResponseEstimator> response_model_;
  double min_action_time_s_ = 0, min_action_money_usd_ = 0;  // fit_aware
  // Uncached callers (the server, the evaluator) share memoised predictions
  // per history window and task: conversations revisit the same few.
  std::shared_ptr<ResponsePredictionMemo> memo_;
};

}  // namespace lcio::env
