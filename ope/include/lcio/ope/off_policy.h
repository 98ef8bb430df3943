// A candidate policy's value on joined traffic, estimated off-policy
// (estimators.h), with the direct method from env's response model fitted on
// the log itself, cross-fitted so that no turn is predicted by a model that
// has seen it (an in-sample kNN copies a turn's own reward back and would
// cancel the doubly robust correction).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lcio/env/policy_interface.h"
#include "lcio/env/scorer.h"
#include "lcio/env/simulator.h"
#include "lcio/ope/estimators.h"
#include "lcio/ope/joined_log.h"

namespace lcio::ope {

struct OpeOptions {
  env::SimulatorConfig config;
  // Budgets of conversations whose log does not record them.
  env::Budget default_budget;
  bool shield = true;  // the candidate's choice passes the budget shield, as served
  int folds = 5;       // cross-fitting folds of the direct method
  // The direct method's response model family. The history-free task x
  // action means predict held-out turns better than the kNN
  // (docs/evaluation.md) and give the doubly robust estimate smaller
  // residuals (docs/ope.md).
  env::ResponseModelFamily direct_method = env::ResponseModelFamily::kTaskActionMeans;
  uint64_t seed = 1;
  IntervalOptions interval;  // how every interval is built (estimators.h)
};

struct TaskEstimates {
  std::string task;
  Estimates estimates;
  double true_value = 0;  // only with a known truth (simulation)
};

struct OpeReport {
  Estimates overall;
  std::vector<TaskEstimates> per_task;  // tasks in vocabulary order, those with turns
  // The logging policy's own mean reward (on-policy, exact on this log).
  double logged_value = 0;
  double logged_mean_square_reward = 0;  // sizes intervals (TurnsForHalfWidth)
  // What the candidate would do on this traffic, from the cost model: the
  // share of turns it sends to the cloud and its mean spend per conversation.
  double cloud_share = 0, spend_per_conversation_usd = 0;
  double logged_cloud_share = 0, logged_spend_per_conversation_usd = 0;
  int num_actions = 0;
  // With a known truth: the candidate's mean reward on these very contexts.
  double true_value = 0;
  // Per logged turn, in the log's order: what the estimates are made of, the
  // turn's task index and (with a known truth) the candidate's true reward.
  // ComparePaired pairs two reports turn by turn.
  std::vector<OpeTurn> turns;
  std::vector<int> turn_task;
  std::vector<double> turn_truth;
};

// `truth`, when given (simulation only), scores the candidate's actions
// exactly in the logged contexts (OpeReport::true_value).
absl::StatusOr<OpeReport> EvaluateOffPolicy(const JoinedLog& log, env::Policy& candidate,
                                            const OpeOptions& options,
                                            const env::Simulator* truth = nullptr);

// candidate - baseline on the same log, paired turn by turn (estimators.h,
// EstimateDifference): overall and per task, with intervals clustered by
// conversation.
struct TaskDifferences {
  std::string task;
  Differences differences;
  double true_difference = 0;  // only with a known truth (simulation)
};
struct PairedReport {
  Differences overall;
  std::vector<TaskDifferences> per_task;  // tasks in vocabulary order, those with turns
  // With a known truth: candidate's minus baseline's true value.
  double true_difference = 0;
};
// Both reports from EvaluateOffPolicy on `log` (the same options, so that
// the cross-fitted direct method is the same); an error otherwise.
absl::StatusOr<PairedReport> ComparePaired(const JoinedLog& log, const OpeReport& candidate,
                                           const OpeReport& baseline,
                                           const IntervalOptions& interval = {});

// Traffic logged in the simulator by an exploring policy: each conversation
// of `episodes` replayed `copies` times; at each turn, with probability
// `epsilon` a uniformly drawn action, otherwise `base`'s (shielded when
// `shield`). The logged response is `truth`'s, the costs the cost model's,
// and each turn records the probability of its action.
// `model` under each conversation's served profile (log.profile; `model`
// itself where none is named or it is model's own): what prices the
// conversations as the fleet priced them. Errors name the episode and the
// profile the catalog lacks.
absl::StatusOr<std::shared_ptr<const env::Scorer>> ServedPricing(
    std::shared_ptr<const env::Simulator> model, const JoinedLog& log);

struct ExplorationOptions {
  static constexpr int kMaxCopies = 10000;  // each copy replays every conversation
  double epsilon = 0.2;
  int copies = 1;
  bool shield = true;
  env::Budget budget;
  uint64_t seed = 1;
};
absl::StatusOr<JoinedLog> SimulateExploringLog(const env::Simulator& truth,
                                               const data::Dataset& source,
                                               const std::vector<int>& episodes, env::Policy& base,
                                               const ExplorationOptions& options);

// The action of a logged turn in `actions`' numbering.
absl::StatusOr<int> LoggedAction(const env::ActionTable& actions, const data::Turn& turn);

}  // namespace lcio::ope
