#include "lcio/ope/calibrate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "lcio/data/message.h"
#include "lcio/env/evaluator.h"
#include "lcio/env/scorer.h"

namespace lcio::ope {

namespace {
// A scorer of one simulator the caller owns.
std::shared_ptr<const env::Scorer> Alone(const env::Simulator& simulator) {
  return env::Scorer::Single("", std::shared_ptr<const env::Simulator>(
                                     std::shared_ptr<const env::Simulator>(), &simulator));
}
}  // namespace

Tally AchievedTally(const env::Scorer& pricing, const data::Dataset& log,
                    const std::vector<int>& episodes, env::Policy& policy, CalibrationMetric metric,
                    const env::Budget& budget) {
  env::EvalOptions eval;
  eval.budget = budget;
  eval.shield = true;  // the fleet serves through the shield
  const env::PolicyResult r = env::EvaluatePolicy(pricing, log, episodes, policy, eval);
  Tally t;
  for (const env::EpisodeResult& e : r.episodes) {
    if (metric == CalibrationMetric::kSpendPerConversation) {
      t.numerator += e.money_usd;
      t.denominator += 1;
      continue;
    }
    for (int a : e.actions)
      t.numerator += pricing.primary().actions().is_cloud(a), t.denominator += 1;
  }
  return t;
}

Tally AchievedTally(const env::Simulator& simulator, const data::Dataset& log,
                    const std::vector<int>& episodes, env::Policy& policy, CalibrationMetric metric,
                    const env::Budget& budget) {
  return AchievedTally(*Alone(simulator), log, episodes, policy, metric, budget);
}

double Achieved(const env::Scorer& pricing, const data::Dataset& log,
                const std::vector<int>& episodes, env::Policy& policy, CalibrationMetric metric,
                const env::Budget& budget) {
  return AchievedTally(pricing, log, episodes, policy, metric, budget).value();
}

double Achieved(const env::Simulator& simulator, const data::Dataset& log,
                const std::vector<int>& episodes, env::Policy& policy, CalibrationMetric metric,
                const env::Budget& budget) {
  return Achieved(*Alone(simulator), log, episodes, policy, metric, budget);
}

absl::StatusOr<CalibrationResult> Calibrate(const env::Simulator& simulator,
                                            const data::Dataset& log, env::Policy& policy,
                                            const CalibrationOptions& o) {
  return Calibrate(*Alone(simulator), log, policy, o);
}

absl::StatusOr<CalibrationResult> Calibrate(const env::Scorer& pricing, const data::Dataset& log,
                                            env::Policy& policy, const CalibrationOptions& o) {
  if (o.metric == CalibrationMetric::kCloudShare && !(o.target >= 0 && o.target <= 1))
    return absl::InvalidArgumentError(
        absl::StrCat("target cloud share = ", o.target, ": must be in [0, 1]"));
  if (o.metric == CalibrationMetric::kSpendPerConversation && !(o.target > 0))
    return absl::InvalidArgumentError(
        absl::StrCat("target spend = ", o.target, " USD per conversation: must be > 0"));
  if (!(o.min_money_usd > 0 && o.max_money_usd > o.min_money_usd) ||
      !std::isfinite(o.max_money_usd) || o.grid < 2 || o.grid > CalibrationOptions::kMaxGrid)
    return absl::InvalidArgumentError(absl::StrCat(
        "money budget range [", data::ExactNumber(o.min_money_usd), ", ",
        data::ExactNumber(o.max_money_usd), "] with ", o.grid,
        " points: needs 0 < min < max < inf and 2 to ", CalibrationOptions::kMaxGrid, " points"));
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
  // Spaced in log space: the ratio max / min overflows for a range such as
  // [1e-308, 1e308], and the budgets with it.
  const double log_min = std::log(o.min_money_usd), log_max = std::log(o.max_money_usd);
  for (int i = 0; i < o.grid; ++i) {
    const double money = i + 1 == o.grid
                             ? o.max_money_usd
                             : std::exp(log_min + (log_max - log_min) * i / (o.grid - 1));
    CalibrationPoint p;
    p.money_budget_usd = money;
    p.achieved = Achieved(pricing, log, fit, policy, o.metric, {o.latency_budget_s, money});
    result.curve.push_back(p);
    // Strictly better only: the cheapest budget among equals.
    const double error = std::abs(p.achieved - o.target);
    if (error < best_error) {
      best_error = error;
      result.money_budget_usd = money;
      result.fit_achieved = p.achieved;
    }
  }
  // The achieved figure moves in steps (each conversation's decisions flip at
  // their own budgets, and a budget-conditioned policy may flip many at
  // once), so the grid is refined by bisection between the first two
  // neighbours that bracket the target; if a step remains there, the two
  // budgets beside it are mixed.
  bool bracketed = false;
  for (size_t i = 0; i + 1 < result.curve.size(); ++i) {
    double lo = result.curve[i].money_budget_usd, hi = result.curve[i + 1].money_budget_usd;
    double a_lo = result.curve[i].achieved, a_hi = result.curve[i + 1].achieved;
    if ((a_lo - o.target) * (a_hi - o.target) > 0) continue;
    bracketed = true;
    if (a_lo == o.target) break;
    // To a tenth of a percent of the budget: finer settings mean nothing.
    for (int step = 0; step < 40 && hi / lo > 1.001; ++step) {
      const double mid = std::sqrt(lo) * std::sqrt(hi);  // lo * hi may overflow
      const double achieved =
          Achieved(pricing, log, fit, policy, o.metric, {o.latency_budget_s, mid});
      const double error = std::abs(achieved - o.target);
      if (error < best_error) {
        best_error = error;
        result.money_budget_usd = mid;
        result.fit_achieved = achieved;
      }
      if ((achieved - o.target) * (a_lo - o.target) > 0)
        lo = mid, a_lo = achieved;
      else
        hi = mid, a_hi = achieved;
    }
    if (best_error > 0 && a_hi != a_lo) {
      result.low_money_budget_usd = lo;
      result.money_budget_usd = hi;
      result.low_share = (a_hi - o.target) / (a_hi - a_lo);
      result.fit_achieved = result.low_share * a_lo + (1 - result.low_share) * a_hi;
    }
    break;
  }
  if (!bracketed) {
    double low = result.curve.front().achieved, high = low;
    for (const CalibrationPoint& p : result.curve)
      low = std::min(low, p.achieved), high = std::max(high, p.achieved);
    return absl::FailedPreconditionError(absl::StrCat(
        "target ", o.target, " is not reachable by this policy on this traffic: money budgets in [",
        o.min_money_usd, ", ", o.max_money_usd, "] USD give ", low, " to ", high));
  }
  // Held out: the mix as an operator would deal it, the first low_share of
  // the held-out conversations (in their shuffled order) on the low budget.
  std::vector<int> held_low, held_high;
  {
    std::vector<std::pair<int, int>> order;  // (shuffled position, episode)
    for (int e : held) order.emplace_back(fold[e], e);
    std::sort(order.begin(), order.end());
    const size_t low = static_cast<size_t>(std::lround(result.low_share * order.size()));
    for (size_t i = 0; i < order.size(); ++i)
      (i < low ? held_low : held_high).push_back(order[i].second);
  }
  Tally held_tally = AchievedTally(pricing, log, held_high, policy, o.metric,
                                   {o.latency_budget_s, result.money_budget_usd});
  if (!held_low.empty()) {
    const Tally t = AchievedTally(pricing, log, held_low, policy, o.metric,
                                  {o.latency_budget_s, result.low_money_budget_usd});
    held_tally.numerator += t.numerator;
    held_tally.denominator += t.denominator;
  }
  result.holdout_achieved = held_tally.value();
  result.holdout_error = result.holdout_achieved - o.target;
  // Relative to a target of 0 (a cloud share of 0) is undefined, not 0/0.
  result.holdout_relative_error =
      o.target > 0 ? result.holdout_error / o.target : std::numeric_limits<double>::quiet_NaN();
  return result;
}

}  // namespace lcio::ope
