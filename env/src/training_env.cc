#include "lcio/env/training_env.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "lcio/data/message.h"
#include "lcio/env/shield.h"
#include "lcio/env/split.h"

namespace lcio::env {
namespace {

double StandardNormal(std::mt19937_64& rng) {
  // Box-Muller on portable uniforms: the same draws on every standard library.
  const double u1 = 1.0 - UniformUnit(rng), u2 = UniformUnit(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * M_PI * u2);
}

}  // namespace

Budget BudgetDistribution::Sample(std::mt19937_64& rng) const {
  auto uniform = [&](double lo, double hi) { return lo + (hi - lo) * UniformUnit(rng); };
  auto normal = [&](double mean, double sd, double lo, double hi) {
    return std::clamp(mean + sd * StandardNormal(rng), lo, hi);
  };
  switch (kind) {
    case Kind::kFixed:
      return fixed;
    case Kind::kUniform:
      return {uniform(low.latency_s, high.latency_s), uniform(low.money_usd, high.money_usd)};
    case Kind::kNormal:
      return {normal(fixed.latency_s, stddev.latency_s, low.latency_s, high.latency_s),
              normal(fixed.money_usd, stddev.money_usd, low.money_usd, high.money_usd)};
    case Kind::kMixture: {
      if (UniformUnit(rng) >= extreme_share)
        return {normal(fixed.latency_s, stddev.latency_s, low.latency_s, high.latency_s),
                normal(fixed.money_usd, stddev.money_usd, low.money_usd, high.money_usd)};
      // Extremes: each budget independently near its low or its high end.
      auto extreme = [&](double lo, double hi) {
        const double tenth = (hi - lo) / 10;
        return UniformUnit(rng) < 0.5 ? uniform(lo, lo + tenth) : uniform(hi - tenth, hi);
      };
      return {extreme(low.latency_s, high.latency_s), extreme(low.money_usd, high.money_usd)};
    }
  }
  return fixed;
}

absl::Status BudgetDistribution::Validate() const {
  auto ok = [](double v) { return std::isfinite(v) && v >= 0; };
  for (const auto& [name, b] :
       {std::pair{"fixed", &fixed}, {"low", &low}, {"high", &high}, {"stddev", &stddev}})
    for (const auto& [field, v] :
         {std::pair{"latency_s", b->latency_s}, std::pair{"money_usd", b->money_usd}})
      if (!ok(v))
        return absl::InvalidArgumentError(absl::StrCat("budget distribution: ", name, ".", field,
                                                       " = ", v, ": must be finite and >= 0"));
  if (kind != Kind::kFixed && (low.latency_s > high.latency_s || low.money_usd > high.money_usd))
    return absl::InvalidArgumentError(absl::StrCat(
        "budget distribution: low (", low.latency_s, " s, ", low.money_usd,
        " USD) must not exceed high (", high.latency_s, " s, ", high.money_usd, " USD)"));
  if (!(extreme_share >= 0 && extreme_share <= 1))
    return absl::InvalidArgumentError(
        absl::StrCat("extreme_share = ", extreme_share, ": must be in [0, 1]"));
  return absl::OkStatus();
}

absl::StatusOr<BudgetDistribution::Kind> BudgetDistribution::ParseKind(const std::string& name) {
  if (name == "fixed") return Kind::kFixed;
  if (name == "uniform") return Kind::kUniform;
  if (name == "normal") return Kind::kNormal;
  if (name == "mixture") return Kind::kMixture;
  return absl::InvalidArgumentError(
      absl::StrCat("budget distribution \"", data::Shorten(name, 64),
                   "\" is not known; known: fixed, uniform, normal, mixture"));
}

std::string BudgetDistribution::KindName(Kind kind) {
  switch (kind) {
    case Kind::kFixed:
      return "fixed";
    case Kind::kUniform:
      return "uniform";
    case Kind::kNormal:
      return "normal";
    case Kind::kMixture:
      return "mixture";
  }
  return "fixed";
}

absl::StatusOr<TrainingEnv> TrainingEnv::Create(std::shared_ptr<const Simulator> simulator,
                                                const data::Dataset& dataset,
                                                std::vector<int> episodes,
                                                const ObservationLayout& layout,
                                                const BudgetDistribution& budgets, uint64_t seed) {
  std::vector<int> scorers(episodes.size(), 0);
  return Create(std::vector<std::shared_ptr<const Simulator>>{std::move(simulator)}, dataset,
                std::move(episodes), std::move(scorers), layout, budgets, seed);
}

absl::StatusOr<TrainingEnv> TrainingEnv::Create(
    std::vector<std::shared_ptr<const Simulator>> simulators, const data::Dataset& dataset,
    std::vector<int> episodes, std::vector<int> scorer_of_episode, const ObservationLayout& layout,
    const BudgetDistribution& budgets, uint64_t seed, std::vector<ProfilePair> profiles) {
  if (episodes.empty()) return absl::InvalidArgumentError("no training episodes");
  if (simulators.empty()) return absl::InvalidArgumentError("no simulator");
  for (const auto& sim : simulators)
    if (sim == nullptr) return absl::InvalidArgumentError("a simulator is null");
  if (scorer_of_episode.size() != episodes.size())
    return absl::InvalidArgumentError(absl::StrCat("scorer_of_episode has ",
                                                   scorer_of_episode.size(), " entries for ",
                                                   episodes.size(), " episodes"));
  for (size_t i = 0; i < episodes.size(); ++i) {
    const int e = episodes[i];
    if (e < 0 || e >= static_cast<int>(dataset.episodes.size()) ||
        dataset.episodes[e].turns.empty())
      return absl::InvalidArgumentError(absl::StrCat("training episode index ", e, " is invalid"));
    if (scorer_of_episode[i] < 0 || scorer_of_episode[i] >= static_cast<int>(simulators.size()))
      return absl::InvalidArgumentError(
          absl::StrCat("scorer_of_episode[", i, "] = ", scorer_of_episode[i], ": must be in [0, ",
                       simulators.size() - 1, "]"));
  }
  const Simulator& primary = *simulators[0];
  for (const auto& sim : simulators)
    if (sim->num_views() != primary.num_views() ||
        sim->actions().size() != primary.actions().size() ||
        sim->config().time_span != primary.config().time_span)
      return absl::InvalidArgumentError("the cross-fitting simulators disagree on their shape");
  if (layout.num_views != primary.num_views() || layout.time_span != primary.config().time_span)
    return absl::InvalidArgumentError("observation layout disagrees with the simulator");
  if (auto s = budgets.Validate(); !s.ok()) return s;
  auto encoder = ObservationEncoder::Create(layout, primary.estimator());
  if (!encoder.ok()) return encoder.status();
  std::vector<std::vector<std::shared_ptr<const Simulator>>> by_profile;
  for (const ProfilePair& profile : profiles) {
    by_profile.emplace_back();
    for (const auto& sim : simulators) {
      auto costed = sim->WithProfile(profile);
      if (!costed.ok())
        return absl::InvalidArgumentError(
            absl::StrCat("training profile ", data::Shorten(profile.device, 64), " / ",
                         data::Shorten(profile.network, 64), ": ", costed.status().message()));
      by_profile.back().push_back(*std::move(costed));
    }
  }
  return TrainingEnv(std::move(simulators), dataset, std::move(episodes), std::move(by_profile),
                     std::move(scorer_of_episode), *std::move(encoder), budgets, seed);
}

TrainingEnv::TrainingEnv(std::vector<std::shared_ptr<const Simulator>> simulators,
                         const data::Dataset& dataset, std::vector<int> episodes,
                         std::vector<std::vector<std::shared_ptr<const Simulator>>> by_profile,
                         std::vector<int> scorer_of_episode, ObservationEncoder encoder,
                         BudgetDistribution budgets, uint64_t seed)
    : simulators_(std::move(simulators)),
      by_profile_(std::move(by_profile)),
      dataset_(&dataset),
      episodes_(std::move(episodes)),
      encoder_(std::move(encoder)),
      budgets_(budgets),
      rng_(seed) {
  for (size_t i = 0; i < episodes_.size(); ++i)
    scorer_by_episode_[episodes_[i]] = scorer_of_episode[i];
  for (const auto& sim : simulators_)
    caches_.push_back(std::make_unique<CachedEstimator>(sim->estimator()));
  Reset();
}

void TrainingEnv::Reset() {
  const int e = episodes_[UniformIndex(rng_, episodes_.size())];
  const Budget budget = budgets_.Sample(rng_);
  // Drawn only when there are profiles, so that without them the draws (and
  // the trained policy) are exactly those of a single-profile run.
  const int profile = by_profile_.empty() ? 0 : UniformIndex(rng_, by_profile_.size());
  ResetTo(e, budget, profile);
}

void TrainingEnv::ResetTo(int episode_index, const Budget& budget) {
  ResetTo(episode_index, budget, current_profile_);
}

void TrainingEnv::ResetTo(int episode_index, const Budget& budget, int profile) {
  budget_ = budget;
  const auto it = scorer_by_episode_.find(episode_index);
  current_scorer_ = it == scorer_by_episode_.end() ? 0 : it->second;
  current_profile_ = by_profile_.empty() ? 0 : std::clamp(profile, 0, num_profiles() - 1);
  // Every profile's simulator shares its scorer's response model, so the
  // scorer's kNN cache serves them all.
  const Simulator& sim = by_profile_.empty() ? *simulators_[current_scorer_]
                                             : *by_profile_[current_profile_][current_scorer_];
  current_simulator_ = &sim;
  run_.emplace(sim, dataset_->episodes[episode_index], budget_, caches_[current_scorer_].get());
}

StepResult TrainingEnv::Step(int action, const float* scores) {
  StepResult r;
  if (shield_penalty_ > 0) {
    const int n = current_simulator_->actions().size();
    if (scores != nullptr) ranking_.assign(scores, scores + n);
    const DecisionContext& c = run_->context();
    const ShieldDecision d =
        Shield(current_simulator_->costs(), action, scores != nullptr ? &ranking_ : nullptr,
               c.remaining_latency_s, c.remaining_money_usd);
    r.shield_overridden = d.overridden;
    action = d.action;
  }
  r.action = action;
  const double excess_l0 = std::max(0.0, run_->spent_time_s() - budget_.latency_s);
  const double excess_m0 = std::max(0.0, run_->spent_money_usd() - budget_.money_usd);
  r.outcome = run_->Step(action);
  r.reward = r.outcome.reward - (r.shield_overridden ? shield_penalty_ : 0.0);
  r.excess_latency_s = std::max(0.0, run_->spent_time_s() - budget_.latency_s) - excess_l0;
  r.excess_money_usd = std::max(0.0, run_->spent_money_usd() - budget_.money_usd) - excess_m0;
  r.crossed_latency_budget = excess_l0 == 0 && r.excess_latency_s > 0;
  r.crossed_money_budget = excess_m0 == 0 && r.excess_money_usd > 0;
  r.latency_fraction = budget_.latency_s > 0 ? r.outcome.time_s / budget_.latency_s : 0;
  r.money_fraction = budget_.money_usd > 0 ? r.outcome.money_usd / budget_.money_usd : 0;
  r.done = run_->done();
  return r;
}

}  // namespace lcio::env
