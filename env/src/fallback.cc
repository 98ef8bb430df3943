#include "lcio/env/fallback.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include "absl/base/casts.h"
#include "absl/strings/str_cat.h"
#include "lcio/data/json_parse.h"
#include "lcio/data/message.h"
#include "lcio/env/baselines.h"
#include "lcio/env/scorer.h"
#include "lcio/env/shield.h"
#include "nlohmann/json.hpp"

namespace lcio::env {
namespace {

using Json = nlohmann::json;

// A cost relative to its budget, clamped: past twice the budget an action
// cannot be afforded anyway, and an infinite budget makes everything cheap.
double Relative(double cost, double budget) {
  if (!(cost > 0)) return 0.0;  // free is free, whatever the budget
  if (!(budget > 0)) return 2.0;
  if (std::isinf(budget)) return 0.0;
  return std::clamp(cost / budget, 0.0, 2.0);
}

// A budget on a log scale, clamped so that 0 and infinity stay comparable.
double LogBudget(double budget) { return std::log(std::clamp(budget, 1e-6, 1e6)); }

// The same profile: every action's time and money equal within a relative
// 1e-9 (the table stores the catalog's own numbers).
bool SameCosts(const FallbackEntry& e, const std::vector<double>& time_s,
               const std::vector<double>& money_usd) {
  if (e.action_time_s.size() != time_s.size() || e.action_money_usd.size() != money_usd.size())
    return false;
  const auto near = [](double a, double b) {
    return std::abs(a - b) <= 1e-9 * std::max({1.0, std::abs(a), std::abs(b)});
  };
  for (size_t a = 0; a < time_s.size(); ++a)
    if (!near(e.action_time_s[a], time_s[a]) || !near(e.action_money_usd[a], money_usd[a]))
      return false;
  return true;
}

// The key: every action's time and money relative to the conversation's
// budgets, [time_0, money_0, time_1, money_1, ...].
void Key(const std::vector<double>& time_s, const std::vector<double>& money_usd,
         double latency_budget_s, double money_budget_usd, std::vector<double>* out) {
  const size_t n = std::min(time_s.size(), money_usd.size());
  out->resize(2 * n);
  for (size_t a = 0; a < n; ++a) {
    (*out)[2 * a] = Relative(time_s[a], latency_budget_s);
    (*out)[2 * a + 1] = Relative(money_usd[a], money_budget_usd);
  }
}

double Mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0 : sum / v.size();
}

// Paired per-episode gain of a over b: mean and standard error.
std::pair<double, double> PairedGain(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> gain(a.size());
  for (size_t e = 0; e < gain.size(); ++e) gain[e] = a[e] - b[e];
  const double mean = Mean(gain);
  double var = 0;
  for (double g : gain) var += (g - mean) * (g - mean);
  const double se = gain.size() > 1 ? std::sqrt(var / (gain.size() - 1) / gain.size()) : 0;
  return {mean, se};
}

using Rewards = std::vector<std::vector<double>>;  // [scorer][episode]

Rewards Evaluate(const std::vector<std::shared_ptr<const Scorer>>& scorers,
                 const data::Dataset& dataset, const std::vector<int>& episodes, Policy& policy,
                 const EvalOptions& options) {
  Rewards out;
  for (const auto& scorer : scorers) {
    const PolicyResult r = EvaluatePolicy(*scorer, dataset, episodes, policy, options);
    std::vector<double> per_episode;
    per_episode.reserve(r.episodes.size());
    for (const EpisodeResult& e : r.episodes) per_episode.push_back(e.reward);
    out.push_back(std::move(per_episode));
  }
  return out;
}

absl::Status Fail(const std::string& source, const std::string& rule) {
  return absl::InvalidArgumentError(absl::StrCat("fallback table of ", source, ": ", rule));
}

}  // namespace

FallbackTable::FallbackTable(std::vector<FallbackEntry> entries) : entries_(std::move(entries)) {
  keys_.resize(entries_.size());
  // Grouped by the costs' exact bits (a map: linear in the entries, whatever
  // a file holds, and NaN-safe); the lookup then compares the request with
  // every group within SameCosts's tolerance, as it compared every entry.
  std::map<std::vector<uint64_t>, size_t> group_of;
  std::vector<uint64_t> bits;
  for (size_t i = 0; i < entries_.size(); ++i) {
    const FallbackEntry& e = entries_[i];
    Key(e.action_time_s, e.action_money_usd, e.budget.latency_s, e.budget.money_usd, &keys_[i]);
    bits.clear();
    for (const std::vector<double>* costs : {&e.action_time_s, &e.action_money_usd}) {
      bits.push_back(costs->size());
      for (double c : *costs) bits.push_back(absl::bit_cast<uint64_t>(c));
    }
    const auto [it, added] = group_of.emplace(bits, profiles_.size());
    if (added) profiles_.push_back(Profile{&e, {}});
    profiles_[it->second].entries.push_back(i);
  }
}

FallbackTable::FallbackTable(const FallbackTable& other) : FallbackTable(other.entries_) {}

FallbackTable& FallbackTable::operator=(const FallbackTable& other) {
  if (this != &other) *this = FallbackTable(other.entries_);
  return *this;
}

const FallbackEntry* FallbackTable::Nearest(const DecisionContext& context,
                                            const std::vector<int>* earlier_actions) const {
  if (entries_.empty() || context.action_time_s.empty() ||
      context.action_time_s.size() != context.action_money_usd.size())
    return nullptr;
  const int num_actions = static_cast<int>(context.action_time_s.size());
  // The conversation's budgets: what is left plus what the earlier turns
  // cost under this profile (exact in simulation; in the server the device's
  // reported budget, so within the accuracy of the cost profile).
  double latency = context.remaining_latency_s, money = context.remaining_money_usd;
  for (int a : earlier_actions != nullptr ? *earlier_actions : context.previous_actions) {
    if (a < 0 || a >= num_actions) continue;
    latency += context.action_time_s[a];
    money += context.action_money_usd[a];
  }
  // A profile the table was selected for: its own entries, the nearest
  // budget on a log scale (a budget outside the table's range takes the
  // entry at that end).
  const FallbackEntry* best = nullptr;
  double best_distance = std::numeric_limits<double>::infinity();
  for (const Profile& profile : profiles_) {
    if (!SameCosts(*profile.first, context.action_time_s, context.action_money_usd)) continue;
    for (size_t i : profile.entries) {
      const FallbackEntry& e = entries_[i];
      const double dl = LogBudget(latency) - LogBudget(e.budget.latency_s);
      const double dm = LogBudget(money) - LogBudget(e.budget.money_usd);
      if (dl * dl + dm * dm < best_distance) best_distance = dl * dl + dm * dm, best = &e;
    }
  }
  if (best != nullptr) return best;
  // Another profile (from --profiles): the entry of most similar costs
  // relative to the conversation's budgets.
  thread_local std::vector<double> key;
  Key(context.action_time_s, context.action_money_usd, latency, money, &key);
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (keys_[i].size() != key.size()) continue;
    double d = 0;
    for (size_t j = 0; j < key.size(); ++j) d += (keys_[i][j] - key[j]) * (keys_[i][j] - key[j]);
    if (d < best_distance) best_distance = d, best = &entries_[i];
  }
  return best;
}

int FallbackTable::Lookup(const DecisionContext& context,
                          const std::vector<int>* earlier_actions) const {
  const FallbackEntry* entry = Nearest(context, earlier_actions);
  if (entry == nullptr || entry->serve_policy) return -1;
  return entry->fixed_action;
}

int FallbackTable::Decide(const DecisionContext& context, bool* overridden) const {
  if (overridden != nullptr) *overridden = false;
  const int fixed = Lookup(context);
  if (fixed < 0) return -1;
  const ShieldDecision d = ShieldByCost(context.action_time_s, context.action_money_usd, fixed,
                                        context.remaining_latency_s, context.remaining_money_usd);
  if (overridden != nullptr) *overridden = d.overridden;
  return d.action;
}

absl::Status FallbackTable::Validate(int num_actions, const std::string& source) const {
  if (entries_.size() > kMaxEntries)
    return Fail(source, absl::StrCat(entries_.size(), " entries: at most ", kMaxEntries,
                                     " (every decision may scan them)"));
  for (size_t i = 0; i < entries_.size(); ++i) {
    const FallbackEntry& e = entries_[i];
    const std::string where = absl::StrCat("entries[", i, "]");
    if (static_cast<int>(e.action_time_s.size()) != num_actions ||
        static_cast<int>(e.action_money_usd.size()) != num_actions)
      return Fail(source, absl::StrCat(where, " has ", e.action_time_s.size(), " times and ",
                                       e.action_money_usd.size(), " prices; the policy has ",
                                       num_actions, " actions"));
    for (int a = 0; a < num_actions; ++a)
      if (!std::isfinite(e.action_time_s[a]) || e.action_time_s[a] < 0 ||
          !std::isfinite(e.action_money_usd[a]) || e.action_money_usd[a] < 0)
        return Fail(source,
                    absl::StrCat(where, ": the costs of action ", a, " must be finite and >= 0"));
    if (e.fixed_action < 0 || e.fixed_action >= num_actions)
      return Fail(source, absl::StrCat(where, ".fixed_action = ", e.fixed_action,
                                       ": must be in [0, ", num_actions, ")"));
    if (!(e.budget.latency_s > 0) || !std::isfinite(e.budget.latency_s) ||
        !(e.budget.money_usd > 0) || !std::isfinite(e.budget.money_usd))
      return Fail(source, absl::StrCat(where, ".budget = (", e.budget.latency_s, " s, ",
                                       e.budget.money_usd, " USD): must be finite and > 0"));
  }
  return absl::OkStatus();
}

std::string FallbackTable::ToJson() const {
  Json entries = Json::array();
  for (const FallbackEntry& e : entries_)
    entries.push_back({{"device", e.device},
                       {"network", e.network},
                       {"latency_budget_s", e.budget.latency_s},
                       {"money_budget_usd", e.budget.money_usd},
                       {"action_time_s", e.action_time_s},
                       {"action_money_usd", e.action_money_usd},
                       {"fixed_action", e.fixed_action},
                       {"serve_policy", e.serve_policy},
                       {"validated_margin", e.validated_margin},
                       {"validated_lower_bound", e.validated_lower_bound}});
  return Json{{"method", kMethod}, {"entries", std::move(entries)}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<FallbackTable> FallbackTable::FromJson(const std::string& text,
                                                      const std::string& source) {
  absl::Status error;
  const Json json = data::ParseJson(text, "fallback", &error);
  if (!error.ok()) return Fail(source, std::string(error.message()));
  std::vector<FallbackEntry> entries;
  try {
    if (!json.is_object() || json.at("method").get<std::string>() != kMethod)
      return Fail(source, absl::StrCat("method must be \"", kMethod, "\""));
    const Json& listed = json.at("entries");
    if (!listed.is_array()) return Fail(source, "entries must be an array");
    if (listed.size() > kMaxEntries)
      return Fail(source, absl::StrCat(listed.size(), " entries: at most ", kMaxEntries,
                                       " (every decision may scan them)"));
    for (const Json& j : listed) {
      FallbackEntry e;
      e.device = j.at("device").get<std::string>();
      e.network = j.at("network").get<std::string>();
      e.budget.latency_s = j.at("latency_budget_s").get<double>();
      e.budget.money_usd = j.at("money_budget_usd").get<double>();
      e.action_time_s = j.at("action_time_s").get<std::vector<double>>();
      e.action_money_usd = j.at("action_money_usd").get<std::vector<double>>();
      const Json& fixed = j.at("fixed_action");
      if (!fixed.is_number_integer() || fixed.get<int64_t>() < 0 || fixed.get<int64_t>() > 1 << 20)
        return Fail(source, absl::StrCat("entries[", entries.size(),
                                         "].fixed_action must be an integer in [0, 2^20]"));
      e.fixed_action = static_cast<int>(fixed.get<int64_t>());
      e.serve_policy = j.at("serve_policy").get<bool>();
      e.validated_margin = j.at("validated_margin").get<double>();
      e.validated_lower_bound = j.at("validated_lower_bound").get<double>();
      if (e.action_time_s.size() != e.action_money_usd.size())
        return Fail(source,
                    absl::StrCat("entries[", entries.size(), "] has ", e.action_time_s.size(),
                                 " times and ", e.action_money_usd.size(), " prices"));
      entries.push_back(std::move(e));
    }
  } catch (const Json::exception& e) {
    return Fail(source, absl::StrCat("field missing or of the wrong type: ", e.what()));
  }
  return FallbackTable(std::move(entries));
}

FallbackPolicy::FallbackPolicy(std::unique_ptr<Policy> inner,
                               std::shared_ptr<const FallbackTable> table,
                               std::vector<int> decision_model_episodes)
    : inner_(std::move(inner)),
      table_(std::move(table)),
      decision_model_episodes_(std::move(decision_model_episodes)) {}

int FallbackPolicy::Act(const DecisionContext& context, std::vector<double>* scores) {
  if (table_ != nullptr) {
    bool overridden = false;
    if (const int fixed = table_->Decide(context, &overridden); fixed >= 0) {
      overrides_ += overridden;
      if (scores != nullptr) scores->clear();
      return fixed;
    }
  }
  return inner_->Act(context, scores);
}

int64_t FallbackPolicy::TakeShieldOverrides() {
  const int64_t n = overrides_ + inner_->TakeShieldOverrides();
  overrides_ = 0;
  return n;
}

absl::StatusOr<FixedActionRule> ParseFixedActionRule(const std::string& name) {
  if (name == "per_cell") return FixedActionRule::kPerCell;
  if (name == "anchored") return FixedActionRule::kAnchored;
  if (name == "anchored_per_network") return FixedActionRule::kAnchoredPerNetwork;
  if (name == "anchored_per_network_budget") return FixedActionRule::kAnchoredPerNetworkBudget;
  return absl::InvalidArgumentError(absl::StrCat(
      "fixed action rule \"", data::Shorten(name, 64),
      "\": not per_cell, anchored, anchored_per_network or anchored_per_network_budget"));
}

const char* FixedActionRuleName(FixedActionRule rule) {
  switch (rule) {
    case FixedActionRule::kAnchored:
      return "anchored";
    case FixedActionRule::kAnchoredPerNetwork:
      return "anchored_per_network";
    case FixedActionRule::kAnchoredPerNetworkBudget:
      return "anchored_per_network_budget";
    case FixedActionRule::kPerCell:
      break;
  }
  return "per_cell";
}

namespace {

// The fixed action of highest worst case, over the scorers, of its margin
// over the best fixed action under each (the first such on ties).
int BestFixedAction(const std::vector<std::shared_ptr<const Scorer>>& scorers,
                    const data::Dataset& dataset, const std::vector<int>& episodes,
                    const EvalOptions& eval, int num_actions) {
  std::vector<Rewards> fixed(num_actions);
  for (int a = 0; a < num_actions; ++a) {
    FixedPolicy policy(a, "fixed");
    fixed[a] = Evaluate(scorers, dataset, episodes, policy, eval);
  }
  std::vector<double> best_mean(scorers.size(), -std::numeric_limits<double>::infinity());
  for (size_t s = 0; s < scorers.size(); ++s)
    for (int a = 0; a < num_actions; ++a) best_mean[s] = std::max(best_mean[s], Mean(fixed[a][s]));
  double best_worst = -std::numeric_limits<double>::infinity();
  int best = 0;
  for (int a = 0; a < num_actions; ++a) {
    double worst = std::numeric_limits<double>::infinity();
    for (size_t s = 0; s < scorers.size(); ++s)
      worst = std::min(worst, Mean(fixed[a][s]) - best_mean[s]);
    if (worst > best_worst) best_worst = worst, best = a;
  }
  return best;
}

// Whether `a` beats `b` on `episodes` by z standard errors of the paired
// per-episode margin under every scorer (a NaN never does).
bool ConfidentlyAhead(const std::vector<std::shared_ptr<const Scorer>>& scorers,
                      const data::Dataset& dataset, const std::vector<int>& episodes, Policy& a,
                      Policy& b, const EvalOptions& eval, double z) {
  const Rewards ra = Evaluate(scorers, dataset, episodes, a, eval);
  const Rewards rb = Evaluate(scorers, dataset, episodes, b, eval);
  for (size_t s = 0; s < scorers.size(); ++s) {
    const auto [mean, se] = PairedGain(ra[s], rb[s]);
    if (!(mean - z * se > 0)) return false;
  }
  return true;
}

}  // namespace

std::vector<Budget> DefaultFallbackBudgets() {
  return {Budget{30.0, 0.05}, Budget{15.0, 0.02}, Budget{8.0, 0.01}};
}

absl::StatusOr<FallbackTable> SelectFallback(const data::Dataset& dataset,
                                             const std::vector<int>& fixed_selection_episodes,
                                             const std::vector<int>& validation_episodes,
                                             const SimulatorConfig& config, Policy& candidate,
                                             const FallbackSelectionOptions& options,
                                             std::vector<int>* consulted_episodes) {
  std::set<int> consulted;
  auto consult = [&](const std::vector<int>& episodes,
                     const std::vector<std::shared_ptr<const Scorer>>& scorers) {
    consulted.insert(episodes.begin(), episodes.end());
    for (const auto& scorer : scorers)
      for (int e : scorer->FittedEpisodes()) consulted.insert(e);
  };
  if (fixed_selection_episodes.size() < 2 || validation_episodes.size() < 2)
    return absl::InvalidArgumentError(absl::StrCat(
        "fallback selection: ", fixed_selection_episodes.size(), " selection and ",
        validation_episodes.size(), " validation episodes; at least 2 of each are needed"));
  if (options.budgets.empty())
    return absl::InvalidArgumentError("fallback selection: no budgets to select for");
  if (absl::Status s = CheckDecisionModelHeldOut(candidate, validation_episodes); !s.ok()) return s;
  const bool anchored = options.fixed_action_rule != FixedActionRule::kPerCell;
  // Anchored, the cells choose without the validation episodes, which then
  // judge a departure from the anchor.
  std::vector<int> cell_selection;
  if (anchored) {
    std::vector<int> validation = validation_episodes;
    std::sort(validation.begin(), validation.end());
    for (int e : fixed_selection_episodes)
      if (!std::binary_search(validation.begin(), validation.end(), e)) cell_selection.push_back(e);
    if (cell_selection.size() < 2)
      return absl::InvalidArgumentError(absl::StrCat(
          "fallback selection: ", cell_selection.size(),
          " selection episodes outside the validation ones; anchored needs at least 2"));
  } else {
    cell_selection = fixed_selection_episodes;
  }
  const std::vector<ProfilePair> pairs = AllProfilePairs(config.catalog);
  // Per pair x budget, in the order of the entries: each cell's own choice.
  std::vector<int> own_choice;
  std::vector<std::vector<std::shared_ptr<const Scorer>>> on_selection_by_pair;
  for (const ProfilePair& pair : pairs) {
    SimulatorConfig cell = config;
    cell.device = pair.device;
    cell.network = pair.network;
    auto on_selection = HeldOutScorersFittedOn(dataset, cell_selection, cell, options.seed);
    if (!on_selection.ok()) return on_selection.status();
    consult(cell_selection, *on_selection);
    const int num_actions = static_cast<int>(on_selection->front()->primary().actions().size());
    for (const Budget& budget : options.budgets)
      own_choice.push_back(BestFixedAction(*on_selection, dataset, cell_selection,
                                           EvalOptions{budget, options.shield, options.seed},
                                           num_actions));
    on_selection_by_pair.push_back(*std::move(on_selection));
  }
  // The anchor: the action most cells of a voting group choose (the lowest
  // on ties). The group: every cell; the network's cells; or the network x
  // budget's cells, the devices voting. anchor_of[cell], cells as own_choice.
  const size_t num_budgets = options.budgets.size();
  std::vector<int> anchor_of(own_choice.size(), -1);
  if (anchored) {
    const auto group = [&](size_t c) -> std::string {
      switch (options.fixed_action_rule) {
        case FixedActionRule::kAnchoredPerNetwork:
          return pairs[c / num_budgets].network;
        case FixedActionRule::kAnchoredPerNetworkBudget:
          return absl::StrCat(pairs[c / num_budgets].network, "\n", c % num_budgets);
        default:
          return std::string();
      }
    };
    std::map<std::string, std::map<int, int>> votes;  // [group][action]
    for (size_t c = 0; c < own_choice.size(); ++c) ++votes[group(c)][own_choice[c]];
    for (size_t c = 0; c < own_choice.size(); ++c) {
      int most = 0;
      for (const auto& [action, count] : votes[group(c)])
        if (count > most) most = count, anchor_of[c] = action;
    }
  }
  std::vector<FallbackEntry> entries;
  for (size_t p = 0; p < pairs.size(); ++p) {
    const ProfilePair& pair = pairs[p];
    SimulatorConfig cell = config;
    cell.device = pair.device;
    cell.network = pair.network;
    const std::vector<std::shared_ptr<const Scorer>>* on_selection = &on_selection_by_pair[p];
    auto on_validation = HeldOutScorersFittedOn(dataset, validation_episodes, cell, options.seed);
    if (!on_validation.ok()) return on_validation.status();
    consult(validation_episodes, *on_validation);
    const Simulator& simulator = on_selection->front()->primary();
    const int num_actions = static_cast<int>(simulator.actions().size());
    for (size_t b = 0; b < num_budgets; ++b) {
      const int anchor = anchor_of[p * num_budgets + b];
      const Budget& budget = options.budgets[b];
      const EvalOptions eval{budget, options.shield, options.seed};
      FallbackEntry entry;
      entry.device = pair.device;
      entry.network = pair.network;
      entry.budget = budget;
      for (int a = 0; a < num_actions; ++a) {
        entry.action_time_s.push_back(simulator.costs().time_s(a));
        entry.action_money_usd.push_back(simulator.costs().money_usd(a));
      }
      entry.fixed_action = own_choice[p * options.budgets.size() + b];
      if (anchored && entry.fixed_action != anchor) {
        FixedPolicy own(entry.fixed_action, "fixed"), base(anchor, "fixed");
        if (!ConfidentlyAhead(*on_validation, dataset, validation_episodes, own, base, eval,
                              options.confidence_z))
          entry.fixed_action = anchor;
      }
      // The candidate against it on episodes it never trained on.
      FixedPolicy bar(entry.fixed_action, "fixed");
      const Rewards bar_rewards = Evaluate(*on_validation, dataset, validation_episodes, bar, eval);
      const Rewards candidate_rewards =
          Evaluate(*on_validation, dataset, validation_episodes, candidate, eval);
      // Served only if every scorer's bound is a number above zero (a NaN
      // never serves the network).
      entry.serve_policy = true;
      entry.validated_lower_bound = std::numeric_limits<double>::infinity();
      for (size_t s = 0; s < on_validation->size(); ++s) {
        const auto [mean, se] = PairedGain(candidate_rewards[s], bar_rewards[s]);
        const double bound = mean - options.confidence_z * se;
        if (!(bound > 0)) entry.serve_policy = false;
        if (!(bound >= entry.validated_lower_bound)) {
          entry.validated_lower_bound = bound;
          entry.validated_margin = mean;
        }
      }
      entries.push_back(std::move(entry));
    }
  }
  if (consulted_episodes != nullptr) consulted_episodes->assign(consulted.begin(), consulted.end());
  return FallbackTable(std::move(entries));
}

std::string DescribeFallback(const FallbackTable& table, const ActionTable& actions) {
  int policy = 0;
  std::map<int, int> fixed;
  for (const FallbackEntry& e : table.entries()) {
    if (e.serve_policy)
      ++policy;
    else
      ++fixed[e.fixed_action];
  }
  std::string out = absl::StrCat("policy in ", policy, " of ", table.entries().size(), " cells");
  if (!fixed.empty()) {
    absl::StrAppend(&out, "; elsewhere");
    bool first = true;
    for (const auto& [action, n] : fixed) {
      absl::StrAppend(&out, first ? " " : ", ", actions.Describe(action), " (", n, ")");
      first = false;
    }
  }
  return out;
}

}  // namespace lcio::env
