#include "lcio/env/task_rule.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lcio/env/baselines.h"
#include "lcio/env/scorer.h"

namespace lcio::env {

std::string DescribeTaskRule(const TaskRule& rule, const data::Dataset& dataset,
                             const ActionTable& actions) {
  std::string out;
  for (size_t t = 0; t < rule.action_of_task.size(); ++t) {
    const std::string task = t < dataset.tasks.size() ? dataset.tasks[t] : absl::StrCat(t);
    absl::StrAppend(&out, t ? ", " : "", task, " -> ", actions.Describe(rule.action_of_task[t]));
  }
  return out;
}

int TaskRulePolicy::Act(const DecisionContext& context, std::vector<double>*) {
  const int t = context.task_index;
  // A task the rule was not chosen for (a vocabulary grown since) answers
  // locally, the action every profile can afford.
  if (t < 0 || t >= static_cast<int>(rule_.action_of_task.size())) return 0;
  return rule_.action_of_task[t];
}

namespace {

// Per-episode rewards of `rule` under each scorer, on `episodes`.
using Rewards = std::vector<std::vector<double>>;  // [scorer][episode]
Rewards Evaluate(const std::vector<std::shared_ptr<const Scorer>>& scorers,
                 const data::Dataset& dataset, const std::vector<int>& episodes,
                 const TaskRule& rule, const EvalOptions& options) {
  Rewards out;
  for (const auto& scorer : scorers) {
    TaskRulePolicy policy(rule, {});
    const PolicyResult r = EvaluatePolicy(*scorer, dataset, episodes, policy, options);
    std::vector<double> per_episode;
    for (const EpisodeResult& e : r.episodes) per_episode.push_back(e.reward);
    out.push_back(std::move(per_episode));
  }
  return out;
}

double Mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0 : sum / v.size();
}

// The smallest, over scorers, lower confidence bound (mean - z * SE) of the
// paired per-episode gain of `rewards` over `bar`.
double WorstLowerBound(const Rewards& rewards, const Rewards& bar, double z) {
  double worst = std::numeric_limits<double>::infinity();
  for (size_t s = 0; s < rewards.size(); ++s) {
    std::vector<double> gain(rewards[s].size());
    for (size_t e = 0; e < gain.size(); ++e) gain[e] = rewards[s][e] - bar[s][e];
    const double mean = Mean(gain);
    double var = 0;
    for (double g : gain) var += (g - mean) * (g - mean);
    const double se = gain.size() > 1 ? std::sqrt(var / (gain.size() - 1) / gain.size()) : 0;
    worst = std::min(worst, mean - z * se);
  }
  return worst;
}

int NumActions(const Scorer& scorer) { return static_cast<int>(scorer.primary().actions().size()); }

// Every fixed action's rewards; under each scorer the best one is the bar,
// and the best single action is the one with the largest worst-case margin
// over the bars (`best_single_margin`).
struct FixedActions {
  std::vector<Rewards> rewards;  // [action]
  Rewards bar;
  int best_single = 0;
  double best_single_margin = 0;
};
FixedActions ScoreFixedActions(const std::vector<std::shared_ptr<const Scorer>>& scorers,
                               const data::Dataset& dataset, const std::vector<int>& episodes,
                               int num_tasks, const EvalOptions& options) {
  const int num_actions = NumActions(*scorers.front());
  FixedActions out;
  for (int a = 0; a < num_actions; ++a)
    out.rewards.push_back(
        Evaluate(scorers, dataset, episodes, TaskRule{std::vector<int>(num_tasks, a)}, options));
  out.bar.resize(scorers.size());
  for (size_t s = 0; s < scorers.size(); ++s) {
    int best = 0;
    for (int a = 1; a < num_actions; ++a)
      if (Mean(out.rewards[a][s]) > Mean(out.rewards[best][s])) best = a;
    out.bar[s] = out.rewards[best][s];
  }
  out.best_single_margin = WorstLowerBound(out.rewards[0], out.bar, 0);
  for (int a = 1; a < num_actions; ++a) {
    const double margin = WorstLowerBound(out.rewards[a], out.bar, 0);
    if (margin > out.best_single_margin) {
      out.best_single = a;
      out.best_single_margin = margin;
    }
  }
  return out;
}

// A selection that starts from the best single action.
TaskRuleSelection StartFrom(const FixedActions& fixed, int num_tasks) {
  TaskRuleSelection out;
  out.evaluations = static_cast<int>(fixed.rewards.size());
  out.rule.action_of_task.assign(num_tasks, fixed.best_single);
  out.start_worst_margin = out.worst_margin = fixed.best_single_margin;
  return out;
}

}  // namespace

absl::StatusOr<TaskRuleSelection> SelectTaskRule(const data::Dataset& dataset,
                                                 const std::vector<int>& episodes,
                                                 const SimulatorConfig& config,
                                                 const EvalOptions& options, uint64_t seed) {
  if (episodes.size() < 2)
    return absl::InvalidArgumentError(
        absl::StrCat("task rule: ", episodes.size(), " selection episodes; at least 2 are needed"));
  auto fitted = HeldOutScorersFittedOn(dataset, episodes, config, seed);
  if (!fitted.ok()) return fitted.status();
  const std::vector<std::shared_ptr<const Scorer>>& scorers = *fitted;
  const int num_actions = NumActions(*scorers.front());
  const int num_tasks = static_cast<int>(dataset.tasks.size());

  const FixedActions fixed = ScoreFixedActions(scorers, dataset, episodes, num_tasks, options);
  TaskRuleSelection out = StartFrom(fixed, num_tasks);
  std::set<int> consulted(episodes.begin(), episodes.end());
  for (const auto& scorer : scorers)
    for (int e : scorer->FittedEpisodes()) consulted.insert(e);
  out.consulted_episodes.assign(consulted.begin(), consulted.end());
  Rewards current = fixed.rewards[fixed.best_single];

  // Coordinate ascent, task by task, until a full pass changes nothing. A
  // change must be a confident improvement over the current rule under every
  // scorer (paired lower bound above zero), not a gain the selection
  // episodes' noise can produce: with a few logged turns per task x action
  // cell, chasing the mean overfits badly.
  constexpr double kConfidenceZ = 1.0;
  constexpr int kMaxPasses = 8;
  for (int pass = 0; pass < kMaxPasses; ++pass) {
    bool changed = false;
    for (int t = 0; t < num_tasks; ++t) {
      for (int a = 0; a < num_actions; ++a) {
        if (a == out.rule.action_of_task[t]) continue;
        TaskRule trial = out.rule;
        trial.action_of_task[t] = a;
        Rewards rewards = Evaluate(scorers, dataset, episodes, trial, options);
        ++out.evaluations;
        if (WorstLowerBound(rewards, current, kConfidenceZ) > 0) {
          out.rule = std::move(trial);
          current = std::move(rewards);
          out.worst_margin = WorstLowerBound(current, fixed.bar, 0);
          changed = true;
        }
      }
    }
    if (!changed) break;
  }
  return out;
}

absl::StatusOr<TaskRuleSelection> BestTaskRuleInHindsight(
    const std::vector<std::shared_ptr<const Scorer>>& scorers, const data::Dataset& dataset,
    const std::vector<int>& episodes, const EvalOptions& options) {
  if (scorers.empty()) return absl::InvalidArgumentError("task rule in hindsight: no scorers");
  if (episodes.empty()) return absl::InvalidArgumentError("task rule in hindsight: no episodes");
  const int num_actions = NumActions(*scorers.front());
  const int num_tasks = static_cast<int>(dataset.tasks.size());
  int64_t rules = 1;  // stops growing once past the limit: no overflow
  for (int t = 0; t < num_tasks && rules <= kMaxHindsightRules; ++t) rules *= num_actions;
  if (rules > kMaxHindsightRules)
    return absl::InvalidArgumentError(absl::StrCat("task rule in hindsight: ", num_actions,
                                                   " actions ^ ", num_tasks, " tasks is more than ",
                                                   kMaxHindsightRules, " rules to search"));
  const FixedActions fixed = ScoreFixedActions(scorers, dataset, episodes, num_tasks, options);
  TaskRuleSelection out = StartFrom(fixed, num_tasks);
  // Every rule, counted like an odometer; the single actions are among them,
  // and ties keep the first found (the best single action was found first).
  TaskRule trial{std::vector<int>(num_tasks, 0)};
  for (;;) {
    const bool single = std::all_of(trial.action_of_task.begin(), trial.action_of_task.end(),
                                    [&](int a) { return a == trial.action_of_task.front(); });
    if (!single) {
      const double margin =
          WorstLowerBound(Evaluate(scorers, dataset, episodes, trial, options), fixed.bar, 0);
      ++out.evaluations;
      if (margin > out.worst_margin) {
        out.worst_margin = margin;
        out.rule = trial;
      }
    }
    int t = 0;
    while (t < num_tasks && ++trial.action_of_task[t] == num_actions) trial.action_of_task[t++] = 0;
    if (t == num_tasks) break;
  }
  return out;
}

}  // namespace lcio::env
