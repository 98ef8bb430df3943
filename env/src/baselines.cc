#include "lcio/env/baselines.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "lcio/env/shield.h"
#include "lcio/env/split.h"

namespace lcio::env {

int RandomPolicy::Act(const DecisionContext&, std::vector<double>*) {
  if (num_actions_ <= 1) return 0;
  if (UniformUnit(rng_) < local_share_) return 0;
  return 1 + static_cast<int>(UniformIndex(rng_, num_actions_ - 1));
}

namespace {
std::vector<std::unique_ptr<CachedEstimator>> CachesFor(const Scorer& scorer) {
  std::vector<std::unique_ptr<CachedEstimator>> caches;
  for (int i = 0; i < scorer.num_simulators(); ++i)
    caches.push_back(std::make_unique<CachedEstimator>(scorer.simulator(i).estimator()));
  return caches;
}
}  // namespace

GreedyPolicy::GreedyPolicy(std::shared_ptr<const Simulator> simulator)
    : GreedyPolicy(Scorer::Single("decision model", std::move(simulator)), "Greedy", false) {}

GreedyPolicy::GreedyPolicy(std::shared_ptr<const Scorer> model, std::string name, bool clairvoyant)
    : model_(std::move(model)),
      name_(std::move(name)),
      clairvoyant_(clairvoyant),
      caches_(CachesFor(*model_)) {}

void GreedyPolicy::BeginEpisode(const data::Episode& episode, const Budget&, uint64_t) {
  current_ = model_->IndexFor(episode);
}

int GreedyPolicy::Act(const DecisionContext& context, std::vector<double>* scores) {
  const Simulator& simulator = model_->simulator(current_);
  const int n = simulator.actions().size();
  std::vector<double> rewards(n);
  for (int a = 0; a < n; ++a)
    rewards[a] = simulator.Evaluate(context, a, caches_[current_].get()).reward;
  // The best immediate reward the shield admits (the same notion of fitting).
  int best = -1;
  for (int a = 0; a < n; ++a)
    if (best < 0 || rewards[a] > rewards[best]) best = a;
  const ShieldDecision shielded = Shield(simulator.costs(), best, &rewards,
                                         context.remaining_latency_s, context.remaining_money_usd);
  overrides_ += shielded.overridden;
  best = shielded.action;
  if (scores) *scores = rewards;
  return best;
}

// Depth-first branch and bound over action sequences.
struct OraclePolicy::Search {
  Search(const Simulator& s, const data::Episode& e, const Budget& b, CachedEstimator& c,
         int64_t limit)
      : sim(s), episode(e), budget(b), cache(c), node_limit(limit) {}
  const Simulator& sim;
  const data::Episode& episode;
  const Budget& budget;
  CachedEstimator& cache;
  int64_t node_limit;
  int64_t nodes = 0;
  bool truncated = false;
  std::vector<double> bound_after;  // best possible reward of turns t..end
  std::vector<int> current, best;
  double best_reward = -std::numeric_limits<double>::infinity();
  double min_time_s = 0, min_money_usd = 0;

  void Run() {
    const int turns = static_cast<int>(episode.turns.size());
    const ActionTable& actions = sim.actions();
    const CostModel& costs = sim.costs();
    min_time_s = costs.time_s(0);
    min_money_usd = costs.money_usd(0);
    for (int a = 1; a < actions.size(); ++a) {
      min_time_s = std::min(min_time_s, costs.time_s(a));
      min_money_usd = std::min(min_money_usd, costs.money_usd(a));
    }
    // Upper bound per turn: the best response any point can give, plus the
    // best association-minus-cost term of any action.
    const double max_response = sim.max_response();
    bound_after.assign(turns + 1, 0.0);
    for (int t = turns - 1; t >= 0; --t) {
      double best_turn = -std::numeric_limits<double>::infinity();
      for (int a = 0; a < actions.size(); ++a) {
        double assoc = 0;
        for (int v : actions.views(a)) assoc += episode.association[t][v];
        best_turn = std::max(best_turn, sim.Reward(max_response, assoc, a));
      }
      bound_after[t] = bound_after[t + 1] + best_turn;
    }
    DecisionContext context;
    Recurse(context, 0, 0.0, 0.0, 0.0);
  }

  void Recurse(DecisionContext& context, int t, double time_s, double money_usd, double reward) {
    const int turns = static_cast<int>(episode.turns.size());
    if (t == turns) {
      if (reward > best_reward) {
        best_reward = reward;
        best = current;
      }
      return;
    }
    if (reward + bound_after[t] <= best_reward) return;
    if (++nodes > node_limit) {
      truncated = true;
      return;
    }
    context.task_index = episode.turns[t].task_index;
    context.association = episode.association[t];
    const ActionTable& actions = sim.actions();
    const CostModel& costs = sim.costs();
    const int later = turns - 1 - t;
    // Try the best immediate rewards first so a good incumbent prunes early.
    std::vector<std::pair<double, int>> order;
    for (int a = 0; a < actions.size(); ++a) {
      const double t_after = time_s + costs.time_s(a), m_after = money_usd + costs.money_usd(a);
      if (t_after + later * min_time_s > budget.latency_s * (1 + 1e-12)) continue;
      if (m_after + later * min_money_usd > budget.money_usd * (1 + 1e-12)) continue;
      order.emplace_back(-sim.Evaluate(context, a, &cache).reward, a);
    }
    std::sort(order.begin(), order.end());
    for (const auto& [neg_reward, a] : order) {
      if (truncated) return;
      current.push_back(a);
      context.previous_actions.push_back(a);
      context.previous_tasks.push_back(episode.turns[t].task_index);
      Recurse(context, t + 1, time_s + costs.time_s(a), money_usd + costs.money_usd(a),
              reward - neg_reward);
      context.previous_actions.pop_back();
      context.previous_tasks.pop_back();
      current.pop_back();
      // Recurse overwrote the per-turn fields; restore them for the next action.
      context.task_index = episode.turns[t].task_index;
      context.association = episode.association[t];
    }
  }
};

OraclePolicy::OraclePolicy(std::shared_ptr<const Simulator> simulator,
                           int64_t node_limit_per_episode)
    : OraclePolicy(Scorer::Single("Oracle", std::move(simulator)), node_limit_per_episode) {}

OraclePolicy::OraclePolicy(std::shared_ptr<const Scorer> scorer, int64_t node_limit_per_episode)
    : scorer_(std::move(scorer)),
      node_limit_(node_limit_per_episode),
      caches_(CachesFor(*scorer_)) {}

void OraclePolicy::BeginEpisode(const data::Episode& episode, const Budget& budget, uint64_t) {
  current_ = scorer_->IndexFor(episode);
  const Simulator& simulator = scorer_->simulator(current_);
  Search search(simulator, episode, budget, *caches_[current_], node_limit_);
  search.Run();
  ++stats_.episodes;
  stats_.nodes += search.nodes;
  if (search.truncated) ++stats_.truncated_episodes;
  if (search.best.empty() && !episode.turns.empty()) {
    ++stats_.infeasible_episodes;
    plan_.assign(episode.turns.size(), CheapestAction(simulator.costs()));
    plan_reward_ = -std::numeric_limits<double>::infinity();
    return;
  }
  plan_ = search.best;
  plan_reward_ = search.best_reward;
}

int OraclePolicy::Act(const DecisionContext& context, std::vector<double>*) {
  const int t = context.turn_index();
  return t < static_cast<int>(plan_.size()) ? plan_[t] : CheapestAction(scorer_->primary().costs());
}

std::vector<std::unique_ptr<Policy>> MakeModelFreeBaselines(const ActionTable& actions,
                                                            bool include_fixed) {
  std::vector<std::unique_ptr<Policy>> out;
  out.push_back(std::make_unique<FixedPolicy>(0, "Local"));
  out.push_back(std::make_unique<RandomPolicy>("Cloud", actions.size(), 0.0));
  out.push_back(std::make_unique<RandomPolicy>("Random", actions.size(), 0.5));
  if (include_fixed)
    for (int a = 0; a < actions.size(); ++a)
      out.push_back(std::make_unique<FixedPolicy>(
          a, "Fixed " + std::to_string(a) + " (" + actions.Describe(a) + ")"));
  return out;
}

std::vector<std::unique_ptr<Policy>> MakeBaselines(std::shared_ptr<const Simulator> simulator,
                                                   bool include_fixed, bool include_oracle) {
  std::vector<std::unique_ptr<Policy>> out =
      MakeModelFreeBaselines(simulator->actions(), include_fixed);
  out.push_back(std::make_unique<GreedyPolicy>(simulator));
  if (include_oracle) out.push_back(std::make_unique<OraclePolicy>(simulator));
  return out;
}

}  // namespace lcio::env
