#include "lcio/env/evaluator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lcio/env/shield.h"
#include "lcio/env/split.h"
#include "nlohmann/json.hpp"

namespace lcio::env {

PolicyResult EvaluatePolicy(const Simulator& simulator, const data::Dataset& dataset,
                            const std::vector<int>& test_episodes, Policy& policy,
                            const EvalOptions& options) {
  // Non-owning: the scorer lives only for this call.
  const auto scorer = Scorer::Single(
      "simulator", std::shared_ptr<const Simulator>(std::shared_ptr<void>(), &simulator));
  return EvaluatePolicy(*scorer, dataset, test_episodes, policy, options);
}

absl::Status CheckDecisionModelHeldOut(const Policy& policy,
                                       const std::vector<int>& test_episodes) {
  if (policy.is_bound()) return absl::OkStatus();
  // Sorted here: a policy may declare its episodes in any order (a task
  // rule declared the shuffled training side, and the binary search missed
  // 167 of 200 planted test episodes).
  std::vector<int> fitted = policy.DecisionModelEpisodes();
  std::sort(fitted.begin(), fitted.end());
  for (int e : test_episodes)
    if (std::binary_search(fitted.begin(), fitted.end(), e))
      return absl::FailedPreconditionError(absl::StrCat(
          "decision maker \"", policy.name(), "\" consults a model fitted on test ",
          "episode index ", e, ": decision models must be fitted on the training ", "side only"));
  return absl::OkStatus();
}

PairedDifference Compare(const AggregateResult& a, const AggregateResult& b) {
  PairedDifference out;
  const size_t n = std::min(a.reward_by_split.size(), b.reward_by_split.size());
  if (n == 0) return out;
  double sum = 0, sum2 = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = a.reward_by_split[i] - b.reward_by_split[i];
    sum += d;
    sum2 += d * d;
  }
  out.mean = sum / n;
  if (n > 1) out.standard_error = std::sqrt(std::max(0.0, (sum2 - sum * sum / n) / (n - 1)) / n);
  return out;
}

PolicyResult EvaluatePolicy(const Scorer& scorer, const data::Dataset& dataset,
                            const std::vector<int>& test_episodes, Policy& policy,
                            const EvalOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  PolicyResult result;
  result.name = policy.name();
  result.shielded = options.shield;
  std::vector<std::unique_ptr<CachedEstimator>> caches;
  for (int i = 0; i < scorer.num_simulators(); ++i)
    caches.push_back(std::make_unique<CachedEstimator>(scorer.simulator(i).estimator()));
  std::vector<double> scores;
  double excess_latency = 0, excess_money = 0;
  int over_latency = 0, over_money = 0;
  for (int index : test_episodes) {
    const data::Episode& episode = dataset.episodes[index];
    policy.BeginEpisode(episode, options.budget, MixSeed(options.seed, episode.id));
    const int scored_by = scorer.IndexFor(episode);
    const Simulator& simulator = scorer.simulator(scored_by);
    EpisodeRun run(simulator, episode, options.budget, caches[scored_by].get());
    EpisodeResult e;
    e.id = episode.id;
    e.turns = run.num_turns();
    while (!run.done()) {
      scores.clear();
      int action = policy.Act(run.context(), &scores);
      e.shield_overrides += policy.TakeShieldOverrides();
      if (options.shield) {
        const DecisionContext& c = run.context();
        ShieldDecision d = Shield(simulator.costs(), action, scores.empty() ? nullptr : &scores,
                                  c.remaining_latency_s, c.remaining_money_usd);
        if (d.overridden) ++e.shield_overrides;
        action = d.action;
      }
      e.actions.push_back(action);
      run.Step(action);
    }
    if (e.turns > 0) {
      e.response = run.sum_response() / e.turns;
      e.association = run.sum_association() / e.turns;
      e.reward = run.sum_reward() / e.turns;
    }
    e.latency_s = run.spent_time_s();
    e.money_usd = run.spent_money_usd();
    if (!WithinBudget(e.latency_s, options.budget.latency_s)) {
      ++over_latency;
      excess_latency += e.latency_s - options.budget.latency_s;
    }
    if (!WithinBudget(e.money_usd, options.budget.money_usd)) {
      ++over_money;
      excess_money += e.money_usd - options.budget.money_usd;
    }
    result.response += e.response;
    result.association += e.association;
    result.latency_s += e.latency_s;
    result.money_usd += e.money_usd;
    result.reward += e.reward;
    result.shield_overrides += e.shield_overrides;
    result.decisions += e.turns;
    result.episodes.push_back(std::move(e));
  }
  const double n = static_cast<double>(result.episodes.size());
  if (n > 0) {
    result.response /= n;
    result.association /= n;
    result.latency_s /= n;
    result.money_usd /= n;
    result.reward /= n;
    result.share_over_latency = over_latency / n;
    result.share_over_money = over_money / n;
  }
  result.mean_excess_latency_s = over_latency ? excess_latency / over_latency : 0.0;
  result.mean_excess_money_usd = over_money ? excess_money / over_money : 0.0;
  result.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

std::vector<AggregateResult> Aggregate(const std::vector<std::vector<PolicyResult>>& results) {
  std::vector<AggregateResult> rows;
  if (results.empty()) return rows;
  const size_t policies = results.front().size();
  for (size_t p = 0; p < policies; ++p) {
    AggregateResult row;
    row.name = results.front()[p].name;
    row.shielded = results.front()[p].shielded;
    row.splits = static_cast<int>(results.size());
    auto mean_sd = [&](auto field, double& mean, double& sd) {
      double sum = 0, sum2 = 0;
      for (const auto& split : results) {
        const double v = field(split[p]);
        sum += v;
        sum2 += v * v;
      }
      const double n = results.size();
      mean = sum / n;
      sd = n > 1 ? std::sqrt(std::max(0.0, (sum2 - sum * sum / n) / (n - 1))) : 0.0;
    };
    mean_sd([](const PolicyResult& r) { return r.response; }, row.response, row.response_sd);
    mean_sd([](const PolicyResult& r) { return r.association; }, row.association,
            row.association_sd);
    mean_sd([](const PolicyResult& r) { return r.latency_s; }, row.latency_s, row.latency_sd);
    mean_sd([](const PolicyResult& r) { return r.money_usd; }, row.money_usd, row.money_sd);
    mean_sd([](const PolicyResult& r) { return r.reward; }, row.reward, row.reward_sd);
    for (const auto& split : results) row.reward_by_split.push_back(split[p].reward);
    // Pooled over every split's episodes: a split with no episode over budget
    // adds none, rather than an excess of 0 to average in.
    double episodes = 0, over_l = 0, over_m = 0, excess_l = 0, excess_m = 0;
    for (const auto& split : results) {
      const PolicyResult& r = split[p];
      const double n = r.episodes.size();
      const double split_over_l = std::round(r.share_over_latency * n);
      const double split_over_m = std::round(r.share_over_money * n);
      episodes += n;
      over_l += split_over_l;
      over_m += split_over_m;
      excess_l += r.mean_excess_latency_s * split_over_l;
      excess_m += r.mean_excess_money_usd * split_over_m;
      row.shield_overrides += r.shield_overrides;
      row.decisions += r.decisions;
    }
    row.share_over_latency = episodes ? over_l / episodes : 0;
    row.share_over_money = episodes ? over_m / episodes : 0;
    row.mean_excess_latency_s = over_l ? excess_l / over_l : 0;
    row.mean_excess_money_usd = over_m ? excess_m / over_m : 0;
    rows.push_back(row);
  }
  return rows;
}

std::string ToMarkdown(const std::vector<AggregateResult>& rows, double oracle_reward) {
  std::string out =
      "| method | shield | response | association | latency s | usage USD | reward | "
      "% of Oracle | over latency | over money | excess s | excess USD | overrides |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  const bool sd = !rows.empty() && rows.front().splits > 1;
  for (const auto& r : rows) {
    auto with_sd = [&](double mean, double s, int digits) {
      return sd ? absl::StrFormat("%.*f ± %.*f", digits, mean, digits, s)
                : absl::StrFormat("%.*f", digits, mean);
    };
    const std::string share =
        oracle_reward > 0 ? absl::StrFormat("%.1f%%", 100.0 * r.reward / oracle_reward) : "-";
    absl::StrAppend(
        &out, "| ", r.name, " | ", r.shielded ? "on" : "off", " | ",
        with_sd(r.response, r.response_sd, 3), " | ", with_sd(r.association, r.association_sd, 3),
        " | ", with_sd(r.latency_s, r.latency_sd, 2), " | ", with_sd(r.money_usd, r.money_sd, 4),
        " | ", with_sd(r.reward, r.reward_sd, 3), " | ", share, " | ",
        absl::StrFormat("%.1f%%", 100 * r.share_over_latency), " | ",
        absl::StrFormat("%.1f%%", 100 * r.share_over_money), " | ",
        absl::StrFormat("%.2f", r.mean_excess_latency_s), " | ",
        absl::StrFormat("%.4f", r.mean_excess_money_usd), " | ", r.shield_overrides, " |\n");
  }
  return out;
}

const char* MethodRoleName(MethodRole role) {
  switch (role) {
    case MethodRole::kBaseline:
      return "baseline";
    case MethodRole::kReference:
      return "reference";
    case MethodRole::kCandidate:
      return "candidate";
    case MethodRole::kBound:
      return "bound";
    case MethodRole::kHindsight:
      return "hindsight";
    case MethodRole::kNotHeldOut:
      return "not held out";
  }
  return "unknown";
}

std::vector<WorstCaseRow> WorstCase(const std::vector<ScoredRows>& scorers, bool shielded) {
  // Over a budget in some episode: such a row's reward is not comparable
  // (the reward carries no penalty for the excess).
  auto over_budget = [](const AggregateResult& r) {
    return r.share_over_latency > 0 || r.share_over_money > 0;
  };
  std::vector<WorstCaseRow> out;
  const ScoredRows* first = nullptr;
  for (const auto& s : scorers)
    if (s.held_out) {
      first = &s;
      break;
    }
  if (first == nullptr) return out;
  for (size_t m = 0; m < first->rows.size(); ++m) {
    const MethodRole role = first->roles[m];
    if (first->rows[m].shielded != shielded ||
        (role != MethodRole::kBaseline && role != MethodRole::kCandidate &&
         role != MethodRole::kHindsight))
      continue;
    const std::string& name = first->rows[m].name;
    std::optional<WorstCaseRow> worst;
    for (const auto& s : scorers) {
      if (!s.held_out) continue;
      int self = -1, best = -1;
      for (size_t r = 0; r < s.rows.size(); ++r) {
        if (s.rows[r].shielded != shielded) continue;
        if (s.rows[r].name == name) self = static_cast<int>(r);
      }
      if (self < 0) continue;
      for (size_t r = 0; r < s.rows.size(); ++r) {
        // A baseline's other name for the same decisions (Local is Fixed 0) is
        // not its rival; a candidate that decides like a baseline ties with it.
        if (s.rows[r].shielded != shielded || static_cast<int>(r) == self ||
            (role == MethodRole::kBaseline &&
             s.rows[r].reward_by_split == s.rows[self].reward_by_split))
          continue;
        if (s.roles[r] == MethodRole::kBaseline && !over_budget(s.rows[r]) &&
            (best < 0 || s.rows[r].reward > s.rows[best].reward))
          best = static_cast<int>(r);
      }
      if (best < 0) continue;
      WorstCaseRow row;
      row.name = name;
      row.role = role;
      row.shielded = shielded;
      row.scorer = s.scorer;
      row.reward = s.rows[self].reward;
      row.has_oracle = s.oracle_reward() > 0;
      row.percent_of_oracle = row.has_oracle ? 100.0 * row.reward / s.oracle_reward() : 0.0;
      row.best_baseline = s.rows[best].name;
      row.margin = Compare(s.rows[self], s.rows[best]);
      row.over_budget = over_budget(s.rows[self]);
      if (!worst || row.margin.mean < worst->margin.mean) worst = row;
    }
    if (!worst) continue;
    worst->verdict = worst->over_budget                                    ? "over budget"
                     : worst->margin.mean > 0                              ? "ahead"
                     : worst->margin.mean >= -worst->margin.standard_error ? "tie"
                                                                           : "behind";
    out.push_back(*worst);
  }
  return out;
}

std::string WorstCaseMarkdown(const std::vector<WorstCaseRow>& rows) {
  std::string out =
      "| method | role | shield | worst scorer | reward | % of its Oracle | best baseline there | "
      "margin ± SE | verdict |\n|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : rows)
    absl::StrAppend(
        &out, "| ", r.name, " | ", MethodRoleName(r.role), " | ", r.shielded ? "on" : "off", " | ",
        r.scorer, " | ", absl::StrFormat("%.3f", r.reward), " | ",
        r.has_oracle ? absl::StrFormat("%.1f%%", r.percent_of_oracle) : "-", " | ", r.best_baseline,
        " | ", absl::StrFormat("%+.3f ± %.3f", r.margin.mean, r.margin.standard_error), " | ",
        r.verdict, " |\n");
  return out;
}

namespace {
nlohmann::json MethodsJson(const ScoredRows& scored) {
  nlohmann::json methods = nlohmann::json::array();
  for (size_t i = 0; i < scored.rows.size(); ++i) {
    const AggregateResult& r = scored.rows[i];
    methods.push_back({{"name", r.name},
                       {"role", i < scored.roles.size() ? MethodRoleName(scored.roles[i]) : ""},
                       {"shield", r.shielded},
                       {"splits", r.splits},
                       {"response", r.response},
                       {"response_sd", r.response_sd},
                       {"association", r.association},
                       {"association_sd", r.association_sd},
                       {"latency_s", r.latency_s},
                       {"latency_sd", r.latency_sd},
                       {"usage_usd", r.money_usd},
                       {"usage_sd", r.money_sd},
                       {"reward", r.reward},
                       {"reward_sd", r.reward_sd},
                       {"share_over_latency", r.share_over_latency},
                       {"share_over_money", r.share_over_money},
                       {"mean_excess_latency_s", r.mean_excess_latency_s},
                       {"mean_excess_money_usd", r.mean_excess_money_usd},
                       {"shield_overrides", r.shield_overrides},
                       {"decisions", r.decisions},
                       {"reward_by_split", r.reward_by_split}});
  }
  return methods;
}
}  // namespace

std::string ToJson(const std::vector<ScoredRows>& scorers,
                   const std::vector<WorstCaseRow>& worst_case, const std::string& settings_json) {
  nlohmann::json root;
  root["settings"] = nlohmann::json::parse(settings_json, nullptr, false);
  root["scorers"] = nlohmann::json::array();
  for (const auto& s : scorers)
    root["scorers"].push_back({{"scorer", s.scorer},
                               {"held_out", s.held_out},
                               {"oracle_reward", s.oracle_reward()},
                               {"methods", MethodsJson(s)}});
  root["worst_case"] = nlohmann::json::array();
  for (const auto& r : worst_case)
    root["worst_case"].push_back({{"name", r.name},
                                  {"role", MethodRoleName(r.role)},
                                  {"shield", r.shielded},
                                  {"scorer", r.scorer},
                                  {"reward", r.reward},
                                  {"percent_of_oracle", r.percent_of_oracle},
                                  {"has_oracle", r.has_oracle},
                                  {"best_baseline", r.best_baseline},
                                  {"margin", r.margin.mean},
                                  {"margin_se", r.margin.standard_error},
                                  {"over_budget", r.over_budget},
                                  {"verdict", r.verdict}});
  return root.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace lcio::env
