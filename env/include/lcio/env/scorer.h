// The evaluation protocol's scorers (docs/evaluation.md). A decision maker
// may consult only models fitted on a split's training side (its *decision
// model*); what scores its decisions on the test side is a *scorer*, chosen
// per run. A policy scored by the very model it optimised can look excellent
// and still be worse than always answering locally, so figures are reported
// per scorer and as the worst case over the held-out ones:
//
//   in_sample    the decision model fitted on the training side (lcio-eval's
//                --response_model: the kNN by default, the pessimistic model
//                in the shipped runs): what a policy trains against and
//                Greedy decides with. Figures under it decide nothing; they are
//                shown, labelled, beside the others.
//   held_out     the kNN fitted on the test side (the reference protocol). It
//                scores a turn whose history and action equal the logged ones
//                with the logged score itself.
//   cross_fit    the kNN fitted on the test side without the scored episode's
//                fold (5 folds): held out and never the episode's own turns.
//   task_action  per task x action means on the test side (task_action_means.h):
//                history-free, so it cannot be steered through the history
//                window that dominates the kNN's key.
//
// A Scorer maps each episode to the simulator that scores it; a single
// simulator is a Scorer too (Greedy's decision model, tests).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "lcio/data/m4a1.h"
#include "lcio/env/simulator.h"
#include "lcio/env/split.h"

namespace lcio::env {

enum class ScorerKind { kInSample, kHeldOut, kCrossFit, kTaskAction };

std::string ScorerKindName(ScorerKind kind);
absl::StatusOr<ScorerKind> ParseScorerKind(std::string_view name);
// In the order above.
std::vector<ScorerKind> AllScorerKinds();
// Every kind but kInSample.
bool IsHeldOut(ScorerKind kind);

// Deals n positions into `folds` folds from a seeded portable shuffle
// (Fisher-Yates): position order[i] gets fold i % folds. Returns the fold of
// each position.
std::vector<int> DealFolds(size_t n, int folds, uint64_t seed);

// One simulator per fold, each fitted on `episodes` without that fold.
struct CrossFit {
  std::vector<std::shared_ptr<const Simulator>> simulators;  // [fold]
  std::vector<int> fold_of;                                  // [position in episodes]
};
// folds is clamped to the number of episodes; at least 2 episodes are needed.
absl::StatusOr<CrossFit> FitCrossFolds(const data::Dataset& dataset,
                                       const std::vector<int>& episodes, int folds, uint64_t seed,
                                       const SimulatorConfig& config);

// How well a response model predicts logged turns it was not fitted on: each
// logged turn of `episodes` is queried with its logged history and action.
struct PredictionError {
  int turns = 0;
  double rmse = 0;
  // Over pairs of turns with different logged responses, the share the model
  // orders the same way (a tie in prediction counts one half); 0.5 is chance.
  double concordance = 0;
  // The RMSE of answering the fitting turns' mean response everywhere.
  double rmse_of_mean = 0;
};
absl::StatusOr<PredictionError> LoggedTurnError(const Simulator& model,
                                                const data::Dataset& dataset,
                                                const std::vector<int>& episodes);

class Scorer {
 public:
  static constexpr int kCrossFitFolds = 5;
  // The scorer of `kind` for `split`. `in_sample`, when given, is the
  // training side's simulator (reused for kInSample rather than refitted).
  static absl::StatusOr<std::shared_ptr<const Scorer>> Create(
      ScorerKind kind, const data::Dataset& dataset, const Split& split,
      const SimulatorConfig& config, uint64_t seed,
      std::shared_ptr<const Simulator> in_sample = nullptr);
  // One simulator scoring every episode.
  static std::shared_ptr<const Scorer> Single(std::string name,
                                              std::shared_ptr<const Simulator> simulator);
  // The simulator of each episode named by id (`simulators[0]` for any other):
  // the same model under each conversation's own profile, for instance.
  static std::shared_ptr<const Scorer> ByEpisode(
      std::string name, std::vector<std::shared_ptr<const Simulator>> simulators,
      absl::flat_hash_map<int64_t, int> simulator_of_episode_id);

  const std::string& name() const { return name_; }
  // Costs, actions and configuration (shared by every simulator).
  const Simulator& primary() const { return *simulators_.front(); }
  int num_simulators() const { return static_cast<int>(simulators_.size()); }
  const Simulator& simulator(int i) const { return *simulators_[i]; }
  // The simulator scoring `episode` (by id): its fold's for cross-fitting,
  // the first for an episode the scorer was not built for.
  int IndexFor(const data::Episode& episode) const;
  const Simulator& For(const data::Episode& episode) const {
    return *simulators_[IndexFor(episode)];
  }
  // Union of the simulators' fitted episodes (dataset indices, sorted).
  std::vector<int> FittedEpisodes() const;

 private:
  Scorer() = default;
  std::string name_;
  std::vector<std::shared_ptr<const Simulator>> simulators_;
  absl::flat_hash_map<int64_t, int> simulator_of_episode_id_;
};

// A scorer of every held-out kind (held_out, cross_fit, task_action), each
// fitted on `episodes`: what a selection on a training side judges with (the
// task rule, the validated fallback).
absl::StatusOr<std::vector<std::shared_ptr<const Scorer>>> HeldOutScorersFittedOn(
    const data::Dataset& dataset, const std::vector<int>& episodes, const SimulatorConfig& config,
    uint64_t seed);

}  // namespace lcio::env
