#include "lcio/ope/calibrate.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "lcio/env/evaluator.h"
#include "lcio/env/scorer.h"

namespace lcio::ope {

double Achieved(const env::Simulator& simulator, const data::Dataset& log,
                const std::vector<int>& episodes, env::Policy& policy, CalibrationMetric metric,
                const env::Budget& budget) {
  env::EvalOptions eval;
  eval.budget = budget;
  eval.shield = true;  // the fleet serves through the shield
  const env::PolicyResult r = env::EvaluatePolicy(simulator, log, episodes, policy, eval);
  if (metric == CalibrationMetric::kSpendPerConversation) return r.money_usd;
  int64_t cloud = 0, turns = 0;
  for (const env::EpisodeResult& e : r.episodes)
    for (int a : e.actions) cloud += simulator.actions().is_cloud(a), ++turns;
  return turns > 0 ? static_cast<double>(cloud) / static_cast<double>(turns) : 0.0;
}

absl::StatusOr<CalibrationResult> Calibrate(const env::Simulator& simulator,
                                            const data::Dataset& log, env::Policy& policy,
                                            const CalibrationOptions& o) {
  if (o.metric == CalibrationMetric::kCloudShare && !(o.target >= 0 && o.target <= 1))
    return absl::InvalidArgumentError(
        absl::StrCat("target cloud share = ", o.target, ": must be in [0, 1]"));
  if (o.metric == CalibrationMetric::kSpendPerConversation && !(o.target > 0))
    return absl::InvalidArgumentError(
        absl::StrCat("target spend = ", o.target, " USD per conversation: must be > 0"));
  if (!(o.min_money_usd > 0 && o.max_money_usd > o.min_money_usd) || o.grid < 2)
    return absl::InvalidArgumentError(
        absl::StrCat("money budget range [", o.min_money_usd, ", ", o.max_money_usd, "] with ",
                     o.grid, " points: needs 0 < min < max and at least 2 points"));
  if (!(o.holdout_share > 0 && o.holdout_share < 1))
    return absl::InvalidArgumentError(
        absl::StrCat("holdout share = ", o.holdout_share, ": must be in (0, 1)"));
  const int n = static_cast<int>(log.episodes.size());
  const int holdout = static_cast<int>(std::lround(n * o.holdout_share));
  if (holdout < 1 || n - holdout < 1)
    return absl::InvalidArgumentError(
        absl::StrCat(log.source, ": ", n,
                     " conversations; calibration needs at least one to fit on and one "
                     "to validate on"));
  // A seeded shuffle (the evaluator's), first `holdout` positions held out.
  const std::vector<int> fold = env::DealFolds(n, n, o.seed);
  CalibrationResult result;
  std::vector<int> fit, held;
  for (int i = 0; i < n; ++i) (fold[i] < holdout ? held : fit).push_back(i);
  result.fit_conversations = static_cast<int>(fit.size());
  result.holdout_conversations = static_cast<int>(held.size());

  double best_error = std::numeric_limits<double>::infinity();
  const double ratio = std::pow(o.max_money_usd / o.min_money_usd, 1.0 / (o.grid - 1));
  double money = o.min_money_usd;
  for (int i = 0; i < o.grid; ++i, money *= ratio) {
    CalibrationPoint p;
    p.money_budget_usd = money;
    p.achieved = Achieved(simulator, log, fit, policy, o.metric, {o.latency_budget_s, money});
    result.curve.push_back(p);
    // Strictly better only: the cheapest budget among equals.
    const double error = std::abs(p.achieved - o.target);
    if (error < best_error) {
      best_error = error;
      result.money_budget_usd = money;
      result.fit_achieved = p.achieved;
    }
  }
  result.holdout_achieved = Achieved(simulator, log, held, policy, o.metric,
                                     {o.latency_budget_s, result.money_budget_usd});
  result.holdout_error = result.holdout_achieved - o.target;
  result.holdout_relative_error = result.holdout_error / o.target;
  return result;
}

}  // namespace lcio::ope
