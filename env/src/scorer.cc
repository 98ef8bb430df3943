#include "lcio/env/scorer.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lcio/data/message.h"

namespace lcio::env {

namespace {
constexpr std::pair<ScorerKind, const char*> kNames[] = {{ScorerKind::kInSample, "in_sample"},
                                                         {ScorerKind::kHeldOut, "held_out"},
                                                         {ScorerKind::kCrossFit, "cross_fit"},
                                                         {ScorerKind::kTaskAction, "task_action"}};
}  // namespace

std::string ScorerKindName(ScorerKind kind) {
  for (const auto& [k, name] : kNames)
    if (k == kind) return name;
  return "unknown";
}

absl::StatusOr<ScorerKind> ParseScorerKind(std::string_view name) {
  std::vector<std::string> known;
  for (const auto& [k, n] : kNames) {
    if (name == n) return k;
    known.push_back(n);
  }
  return absl::InvalidArgumentError(absl::StrCat("scorer \"", data::Shorten(name, 64),
                                                 "\" is not one of ", absl::StrJoin(known, ", ")));
}

std::vector<ScorerKind> AllScorerKinds() {
  std::vector<ScorerKind> out;
  for (const auto& entry : kNames) out.push_back(entry.first);
  return out;
}

bool IsHeldOut(ScorerKind kind) { return kind != ScorerKind::kInSample; }

std::vector<int> DealFolds(size_t n, int folds, uint64_t seed) {
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  for (size_t i = order.size(); i > 1; --i)  // Fisher-Yates on portable draws
    std::swap(order[i - 1], order[UniformIndex(rng, i)]);
  std::vector<int> fold(n);
  for (size_t i = 0; i < n; ++i) fold[order[i]] = static_cast<int>(i % folds);
  return fold;
}

absl::StatusOr<CrossFit> FitCrossFolds(const data::Dataset& dataset,
                                       const std::vector<int>& episodes, int folds, uint64_t seed,
                                       const SimulatorConfig& config) {
  folds = std::min<int>(folds, static_cast<int>(episodes.size()));
  if (folds < 2)
    return absl::InvalidArgumentError(absl::StrCat("cross-fitting needs >= 2 episodes and folds; ",
                                                   episodes.size(), " episodes, ", folds,
                                                   " folds"));
  CrossFit out;
  out.fold_of = DealFolds(episodes.size(), folds, seed);
  for (int k = 0; k < folds; ++k) {
    std::vector<int> fit_on;
    for (size_t i = 0; i < episodes.size(); ++i)
      if (out.fold_of[i] != k) fit_on.push_back(episodes[i]);
    auto simulator = Simulator::Create(dataset, fit_on, config);
    if (!simulator.ok()) return simulator.status();
    out.simulators.push_back(*std::move(simulator));
  }
  return out;
}

absl::StatusOr<PredictionError> LoggedTurnError(const Simulator& model,
                                                const data::Dataset& dataset,
                                                const std::vector<int>& episodes) {
  std::vector<double> predicted, logged;
  const ActionTable& actions = model.actions();
  const data::RefusalRule& refusal = model.config().refusal;
  for (int e : episodes) {
    if (e < 0 || e >= static_cast<int>(dataset.episodes.size()))
      return absl::OutOfRangeError(absl::StrCat("episode index ", e, " out of range"));
    const data::Episode& episode = dataset.episodes[e];
    DecisionContext context;
    for (size_t t = 0; t < episode.turns.size(); ++t) {
      const data::Turn& turn = episode.turns[t];
      auto action = LoggedAction(actions, episode, static_cast<int>(t));
      if (!action.ok()) return action.status();
      context.task_index = turn.task_index;
      context.association = episode.association[t];
      predicted.push_back(model.Response(context, *action));
      logged.push_back(refusal.ResponseScore(turn));
      context.previous_actions.push_back(*action);
      context.previous_tasks.push_back(turn.task_index);
    }
  }
  PredictionError out;
  out.turns = static_cast<int>(logged.size());
  if (logged.empty()) return out;
  const double mean = model.estimator()->mean_value();
  double se = 0, se_mean = 0, concordant = 0, pairs = 0;
  for (size_t i = 0; i < logged.size(); ++i) {
    se += (predicted[i] - logged[i]) * (predicted[i] - logged[i]);
    se_mean += (mean - logged[i]) * (mean - logged[i]);
    for (size_t j = i + 1; j < logged.size(); ++j) {
      if (logged[i] == logged[j]) continue;
      pairs += 1;
      const double agree = (predicted[i] - predicted[j]) * (logged[i] - logged[j]);
      concordant += agree > 0 ? 1.0 : agree == 0 ? 0.5 : 0.0;
    }
  }
  out.rmse = std::sqrt(se / logged.size());
  out.rmse_of_mean = std::sqrt(se_mean / logged.size());
  out.concordance = pairs > 0 ? concordant / pairs : 0.5;
  return out;
}

absl::StatusOr<std::shared_ptr<const Scorer>> Scorer::Create(
    ScorerKind kind, const data::Dataset& dataset, const Split& split,
    const SimulatorConfig& config, uint64_t seed, std::shared_ptr<const Simulator> in_sample) {
  SimulatorConfig knn = config;
  knn.response_model = ResponseModelFamily::kKnn;
  std::shared_ptr<Scorer> scorer(new Scorer());
  scorer->name_ = ScorerKindName(kind);
  switch (kind) {
    case ScorerKind::kInSample: {
      if (!in_sample) {
        auto simulator = Simulator::Create(dataset, split.train, knn);
        if (!simulator.ok()) return simulator.status();
        in_sample = *std::move(simulator);
      }
      scorer->simulators_.push_back(std::move(in_sample));
      break;
    }
    case ScorerKind::kHeldOut:
    case ScorerKind::kTaskAction: {
      SimulatorConfig c = knn;
      if (kind == ScorerKind::kTaskAction) c.response_model = ResponseModelFamily::kTaskActionMeans;
      auto simulator = Simulator::Create(dataset, split.test, c);
      if (!simulator.ok()) return simulator.status();
      scorer->simulators_.push_back(*std::move(simulator));
      break;
    }
    case ScorerKind::kCrossFit: {
      auto folds = FitCrossFolds(dataset, split.test, kCrossFitFolds, seed, knn);
      if (!folds.ok())
        return absl::Status(folds.status().code(),
                            absl::StrCat("scorer cross_fit: ", folds.status().message()));
      scorer->simulators_ = std::move(folds->simulators);
      for (size_t i = 0; i < split.test.size(); ++i)
        scorer->simulator_of_episode_id_[dataset.episodes[split.test[i]].id] = folds->fold_of[i];
      break;
    }
  }
  return std::shared_ptr<const Scorer>(std::move(scorer));
}

std::shared_ptr<const Scorer> Scorer::Single(std::string name,
                                             std::shared_ptr<const Simulator> simulator) {
  std::shared_ptr<Scorer> scorer(new Scorer());
  scorer->name_ = std::move(name);
  scorer->simulators_.push_back(std::move(simulator));
  return scorer;
}

std::shared_ptr<const Scorer> Scorer::ByEpisode(
    std::string name, std::vector<std::shared_ptr<const Simulator>> simulators,
    absl::flat_hash_map<int64_t, int> simulator_of_episode_id) {
  std::shared_ptr<Scorer> scorer(new Scorer());
  scorer->name_ = std::move(name);
  scorer->simulators_ = std::move(simulators);
  scorer->simulator_of_episode_id_ = std::move(simulator_of_episode_id);
  return scorer;
}

int Scorer::IndexFor(const data::Episode& episode) const {
  if (simulator_of_episode_id_.empty()) return 0;
  auto it = simulator_of_episode_id_.find(episode.id);
  return it == simulator_of_episode_id_.end() ? 0 : it->second;
}

std::vector<int> Scorer::FittedEpisodes() const {
  std::vector<int> out;
  for (const auto& s : simulators_)
    out.insert(out.end(), s->fitted_episodes().begin(), s->fitted_episodes().end());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

absl::StatusOr<std::vector<std::shared_ptr<const Scorer>>> HeldOutScorersFittedOn(
    const data::Dataset& dataset, const std::vector<int>& episodes, const SimulatorConfig& config,
    uint64_t seed) {
  const Split fitted_on{{}, episodes};
  std::vector<std::shared_ptr<const Scorer>> scorers;
  for (ScorerKind kind : AllScorerKinds()) {
    if (!IsHeldOut(kind)) continue;
    auto scorer = Scorer::Create(kind, dataset, fitted_on, config, seed);
    if (!scorer.ok()) return scorer.status();
    scorers.push_back(*std::move(scorer));
  }
  return scorers;
}

}  // namespace lcio::env
