// The validated fallback: safe policy improvement against the best fixed
// action (in the spirit of SPIBB, Laroche et al. 2019).
//
// Why it exists: on the M4A1 sample a learned policy's per-turn departures
// from the best fixed action are mostly selection noise, so scored by a model
// it did not train against it loses to that action (docs/results.md). The
// fallback table says, per profile and conversation budget, whether a
// validation on episodes the policy never trained on showed the policy
// two standard errors clear of the best fixed action under every held-out scorer;
// where it did not, the conversation is answered by that fixed action.
//
// The table is chosen at training time from the training side only (the
// fixed action on all of it, or anchored: on the rest and checked on the
// slice; the policy's validation on a slice held out of its training), stored in the artifact and
// applied wherever the artifact decides: lcio-eval, the server. The lookup is a pure function of
// the decision context, so training, evaluation and serving agree.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lcio/data/m4a1.h"
#include "lcio/env/evaluator.h"
#include "lcio/env/observation.h"
#include "lcio/env/policy_interface.h"
#include "lcio/env/simulator.h"

namespace lcio::env {

struct FallbackEntry {
  std::string device, network;  // the profile it was selected for (for people)
  Budget budget;                // the conversation budget it was selected for
  // The profile's per-action costs: with `budget`, the entry's key.
  std::vector<double> action_time_s, action_money_usd;
  int fixed_action = 0;       // the fixed action chosen on the training side
  bool serve_policy = false;  // validated: the policy beats fixed_action
  // On the validation episodes, the worst case over the held-out scorers of
  // the policy's paired per-episode margin over fixed_action: its mean and
  // its lower bound (mean - z * standard error) under that scorer.
  double validated_margin = 0, validated_lower_bound = 0;
};

class FallbackTable {
 public:
  static constexpr char kMethod[] = "validated_fixed_action_fallback";
  // A lookup for a profile the table does not know scans every entry, on
  // every decision: bounded (a catalog's most pairs, 64 x 64, times 4
  // budgets; the shipped table has 96).
  static constexpr size_t kMaxEntries = 16384;

  FallbackTable() = default;
  explicit FallbackTable(std::vector<FallbackEntry> entries);
  // profiles_ points into entries_: a copy rebuilds it (a move keeps the
  // entries where they are).
  FallbackTable(const FallbackTable& other);
  FallbackTable& operator=(const FallbackTable& other);
  FallbackTable(FallbackTable&&) = default;
  FallbackTable& operator=(FallbackTable&&) = default;

  const std::vector<FallbackEntry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }

  // The entry of the conversation of `context`. Its budgets are the
  // remaining ones plus what the earlier turns' actions cost under the
  // context's profile. Among the entries of the context's own profile (the
  // same cost per action) the nearest budget on a log scale; for a profile
  // the table has no entry of, the entry whose costs relative to its budgets
  // are nearest the context's relative to the conversation's. Null when the
  // table is empty or the context carries no per-action costs.
  // `earlier_actions`, when given, are every earlier turn's action of the
  // conversation (the server's stored history, which can reach further back
  // than the policy's window in context.previous_actions); they then stand
  // in for context.previous_actions in the budget.
  const FallbackEntry* Nearest(const DecisionContext& context,
                               const std::vector<int>* earlier_actions = nullptr) const;
  // The entry's fixed action, or -1 to let the policy decide.
  int Lookup(const DecisionContext& context,
             const std::vector<int>* earlier_actions = nullptr) const;
  // What the fallback answers: the entry's fixed action where it fits the
  // remaining budgets, else the cheapest action that does (the budget
  // shield's rule without scores, ShieldByCost), or -1 to let the policy
  // decide. The answer always fits when anything does, so the shield never
  // has to override the fallback, and the final action equals what the
  // shield makes of that fixed action. `*overridden` (optional): whether the
  // fixed action was replaced.
  int Decide(const DecisionContext& context, bool* overridden = nullptr) const;

  // Every entry's sizes match `num_actions`, actions in range, budgets
  // positive and finite. Errors name `source`, the entry and the rule.
  absl::Status Validate(int num_actions, const std::string& source) const;
  // {"method": kMethod, "entries": [...]}.
  std::string ToJson() const;
  static absl::StatusOr<FallbackTable> FromJson(const std::string& json, const std::string& source);

 private:
  std::vector<FallbackEntry> entries_;
  std::vector<std::vector<double>> keys_;  // [entry]: its key, made once
  // The entries of each profile (the same cost for every action), in table
  // order: a lookup compares the request's costs once per profile, not per
  // entry.
  struct Profile {
    const FallbackEntry* first;  // its costs
    std::vector<size_t> entries;
  };
  std::vector<Profile> profiles_;
};

// A policy behind a fallback table: where the table names a fixed action the
// conversation is answered by FallbackTable::Decide (no scores; the same
// final actions as env::FixedPolicy behind the shield); elsewhere `inner`
// decides.
class FallbackPolicy : public Policy {
 public:
  FallbackPolicy(std::unique_ptr<Policy> inner, std::shared_ptr<const FallbackTable> table,
                 std::vector<int> decision_model_episodes);
  std::string name() const override { return inner_->name(); }
  void BeginEpisode(const data::Episode& episode, const Budget& budget, uint64_t seed) override {
    inner_->BeginEpisode(episode, budget, seed);
  }
  int Act(const DecisionContext& context, std::vector<double>* scores) override;
  std::vector<int> DecisionModelEpisodes() const override { return decision_model_episodes_; }
  int64_t TakeShieldOverrides() override;

 private:
  std::unique_ptr<Policy> inner_;
  std::shared_ptr<const FallbackTable> table_;
  std::vector<int> decision_model_episodes_;
  int64_t overrides_ = 0;
};

// How each cell's fixed action is chosen (docs/training.md, "The validated
// fallback").
enum class FixedActionRule {
  // Each cell's best on the whole training side.
  kPerCell,
  // Each cell's best without the validation episodes; the action most cells
  // choose is the anchor, and a cell keeps its own only where it beats the
  // anchor on the validation episodes by confidence_z standard errors under
  // every held-out scorer. One choice for all cells leaves less room for
  // selection noise than one per cell.
  kAnchored,
  // As kAnchored with one anchor per network: the network sets every cloud
  // call's latency (on Wired the plain call, 6.46 s, is slower than one with
  // a view, 4.76 s; elsewhere it is the fastest), so cells of
  // different networks need not share their best action.
  kAnchoredPerNetwork,
  // One anchor per network x budget, the devices voting: the budget sets how
  // many cloud calls a conversation can pay for, so it too changes which
  // action is best; the devices mostly differ only in local's cost.
  kAnchoredPerNetworkBudget,
};
// "per_cell", "anchored", "anchored_per_network",
// "anchored_per_network_budget"; INVALID_ARGUMENT names the value and the
// choices.
absl::StatusOr<FixedActionRule> ParseFixedActionRule(const std::string& name);
const char* FixedActionRuleName(FixedActionRule rule);

struct FallbackSelectionOptions {
  // The conversation budgets of the table's entries; each is crossed with
  // every device x network of the configuration's catalog.
  std::vector<Budget> budgets;
  FixedActionRule fixed_action_rule = FixedActionRule::kPerCell;
  // The policy is served only where its lower bound (mean - z * SE of the
  // paired per-episode margin) is above zero under every held-out scorer.
  // 2, not 1: with a few dozen validation episodes and ~100 cells, a bound
  // one SE clear passed a barely trained policy in a quarter of the cells.
  double confidence_z = 2.0;
  bool shield = true;  // as the service decides
  uint64_t seed = 1;
};
// The budgets a table covers unless told otherwise: the reference defaults
// (30 s, 0.05 USD), an intermediate (15 s, 0.02 USD) and a tight one
// (8 s, 0.01 USD).
std::vector<Budget> DefaultFallbackBudgets();

// Selects the table. Per device x network x budget: the best fixed action is
// the one of highest worst-case margin over the best fixed action under each
// held-out scorer fitted on `fixed_selection_episodes` (a training side: a
// fixed action learns nothing, so all of it is used; kAnchored leaves the
// validation episodes out and anchors the choice, above); then `candidate`
// and that action are scored on `validation_episodes` by held-out scorers
// fitted on them, and the candidate is served where it is confidently ahead.
// `candidate` must not have trained on a validation episode
// (CheckDecisionModelHeldOut). `*consulted_episodes` (optional): every
// episode the selection scored on or fitted a scorer on, sorted: what a
// policy behind the table declares (Policy::DecisionModelEpisodes), taken
// from the selection itself so that the two cannot drift apart.
absl::StatusOr<FallbackTable> SelectFallback(const data::Dataset& dataset,
                                             const std::vector<int>& fixed_selection_episodes,
                                             const std::vector<int>& validation_episodes,
                                             const SimulatorConfig& config, Policy& candidate,
                                             const FallbackSelectionOptions& options,
                                             std::vector<int>* consulted_episodes = nullptr);

// "policy in 3 of 96 cells; elsewhere cloud (60), local (33)"-style summary.
std::string DescribeFallback(const FallbackTable& table, const ActionTable& actions);

}  // namespace lcio::env
