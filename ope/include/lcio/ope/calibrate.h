// Calibration to a fleet target: the per-conversation money budget that makes
// a policy, replayed on a traffic log through the budget shield, send a
// target share of turns to the cloud or spend a target amount per
// conversation. Fitted on one part of the log's conversations, and the
// achieved figure reported on the other part (held-out validation).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lcio/data/m4a1.h"
#include "lcio/env/policy_interface.h"
#include "lcio/env/scorer.h"
#include "lcio/env/simulator.h"

namespace lcio::ope {

enum class CalibrationMetric { kCloudShare, kSpendPerConversation };

struct CalibrationOptions {
  CalibrationMetric metric = CalibrationMetric::kCloudShare;
  double target = 0.3;  // a share in [0, 1], or USD per conversation
  double latency_budget_s = 30.0;
  // The money budgets tried: `grid` points spaced geometrically over
  // [min_money_usd, max_money_usd].
  double min_money_usd = 1e-4, max_money_usd = 1.0;
  static constexpr int kMaxGrid = 100000;  // each point evaluates the policy once
  int grid = 64;
  double holdout_share = 0.5;  // conversations set aside for validation
  uint64_t seed = 1;
};

struct CalibrationPoint {
  double money_budget_usd = 0;
  double achieved = 0;  // on the fitting part
};

struct CalibrationResult {
  // The setting: conversations are served with money_budget_usd, except a
  // share `low_share` of them (chosen by the operator at random, e.g. by a
  // hash of the conversation id) served with low_money_budget_usd. The figure
  // moves in steps: where one budget jumps over the target, the two budgets
  // on either side of the step are mixed so that the expected figure is the
  // target. low_share is 0 when one budget meets the target.
  double money_budget_usd = 0;
  double low_money_budget_usd = 0, low_share = 0;
  double fit_achieved = 0, holdout_achieved = 0;
  // holdout_achieved - target (share: in points of share; spend: in USD) and
  // relative to the target (NaN for a target of 0: undefined).
  double holdout_error = 0, holdout_relative_error = 0;
  int fit_conversations = 0, holdout_conversations = 0;
  std::vector<CalibrationPoint> curve;
};

// The metric achieved by `policy` (shielded) on `episodes` under `budget`,
// as a ratio: cloud turns / turns, or spend / conversations.
struct Tally {
  double numerator = 0, denominator = 0;
  double value() const { return denominator > 0 ? numerator / denominator : 0; }
};
// `pricing` gives each conversation's simulator (its served profile's
// costs, env::Scorer::ByEpisode); a Simulator prices every conversation.
Tally AchievedTally(const env::Scorer& pricing, const data::Dataset& log,
                    const std::vector<int>& episodes, env::Policy& policy, CalibrationMetric metric,
                    const env::Budget& budget);
Tally AchievedTally(const env::Simulator& simulator, const data::Dataset& log,
                    const std::vector<int>& episodes, env::Policy& policy, CalibrationMetric metric,
                    const env::Budget& budget);
double Achieved(const env::Scorer& pricing, const data::Dataset& log,
                const std::vector<int>& episodes, env::Policy& policy, CalibrationMetric metric,
                const env::Budget& budget);
double Achieved(const env::Simulator& simulator, const data::Dataset& log,
                const std::vector<int>& episodes, env::Policy& policy, CalibrationMetric metric,
                const env::Budget& budget);

absl::StatusOr<CalibrationResult> Calibrate(const env::Scorer& pricing, const data::Dataset& log,
                                            env::Policy& policy, const CalibrationOptions& options);
absl::StatusOr<CalibrationResult> Calibrate(const env::Simulator& simulator,
                                            const data::Dataset& log, env::Policy& policy,
                                            const CalibrationOptions& options);

}  // namespace lcio::ope
