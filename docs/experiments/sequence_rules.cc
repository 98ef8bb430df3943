// Experiment (docs/experiments.md, section 6): rules that decide from the
// conversation's own course rather than from the task, over Local, the plain
// cloud call and cloud+{0} (the actions that lead some held-out scorer at the
// defaults):
//   position: one action per turn position (the fifth for any later turn), 3^5 rules;
//   previous: the first turn's action and the action after each of the three, 3^4 rules.
// Each split keeps the rule of highest worst case, over the held-out scorers,
// of its margin over the best fixed action, chosen on the whole training side,
// on four 20-episode folds of it (each scored by scorers fitted on that fold,
// the test side's sample size) or in hindsight on the test side itself (an
// upper bound for the family, biased upward). The test side is pooled as
// docs/results.md pools it: per scorer, the paired margin over the fixed action
// of highest mean over the splits.
//
// Usage: sequence_rules (Jetson TX2, Wired, 30 s, 0.05 USD)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "lcio/data/m4a1.h"
#include "lcio/env/baselines.h"
#include "lcio/env/evaluator.h"
#include "lcio/env/scorer.h"
#include "lcio/env/split.h"

using namespace lcio;

namespace {

constexpr int kSplits = 10;
constexpr int kActions[3] = {0, 1, 2};  // Local, cloud, cloud+{0}
enum Family { kPosition, kPrevious };

class RulePolicy : public env::Policy {
 public:
  RulePolicy(Family family, int code) : family_(family), code_(code) {}
  std::string name() const override { return "rule"; }
  int Act(const env::DecisionContext& context, std::vector<double>*) override {
    const int turn = context.turn_index();
    if (family_ == kPosition) return kActions[Digit(std::min(turn, 4))];
    if (turn == 0) return kActions[Digit(0)];
    const int previous = context.previous_actions.back();
    return kActions[Digit(1 + std::min(previous, 2))];
  }

 private:
  int Digit(int i) const {
    int code = code_;
    for (int j = 0; j < i; ++j) code /= 3;
    return code % 3;
  }
  Family family_;
  int code_;
};

int NumRules(Family family) { return family == kPosition ? 243 : 81; }

struct Rewards {
  std::vector<std::vector<double>> rules, fixed;  // [scorer][rule or action]
};

Rewards Score(const data::Dataset& dataset, const std::vector<int>& episodes,
              const env::SimulatorConfig& config, env::Budget budget, Family family) {
  auto scorers = env::HeldOutScorersFittedOn(dataset, episodes, config, 1);
  if (!scorers.ok()) std::exit(1);
  const size_t num_scorers = scorers->size();
  const env::EvalOptions options{budget, true, 1};
  Rewards out{std::vector<std::vector<double>>(num_scorers),
              std::vector<std::vector<double>>(num_scorers)};
  const int num_actions = static_cast<int>(scorers->front()->primary().actions().size());
  for (int a = 0; a < num_actions; ++a) {
    env::FixedPolicy fixed(a, "fixed");
    for (size_t s = 0; s < num_scorers; ++s)
      out.fixed[s].push_back(
          env::EvaluatePolicy(*(*scorers)[s], dataset, episodes, fixed, options).reward);
  }
  for (int r = 0; r < NumRules(family); ++r) {
    RulePolicy rule(family, r);
    for (size_t s = 0; s < num_scorers; ++s)
      out.rules[s].push_back(
          env::EvaluatePolicy(*(*scorers)[s], dataset, episodes, rule, options).reward);
  }
  return out;
}

int BestRule(const Rewards& r) {
  int best = 0;
  double best_worst = -INFINITY;
  for (size_t rule = 0; rule < r.rules[0].size(); ++rule) {
    double worst = INFINITY;
    for (size_t s = 0; s < r.rules.size(); ++s)
      worst = std::min(worst,
                       r.rules[s][rule] - *std::max_element(r.fixed[s].begin(), r.fixed[s].end()));
    if (worst > best_worst) best_worst = worst, best = static_cast<int>(rule);
  }
  return best;
}

}  // namespace

int main() {
  auto dataset = data::LoadM4A1File("data/M4A1.json");
  if (!dataset.ok()) return 1;
  const env::SimulatorConfig config;
  const env::Budget budget{30, 0.05};
  for (Family family : {kPosition, kPrevious}) {
    for (const char* selection : {"whole", "folds4", "hindsight"}) {
      std::vector<Rewards> tests;
      std::vector<int> chosen;
      for (int seed = 1; seed <= kSplits; ++seed) {
        auto split = env::RandomSplit(static_cast<int>(dataset->episodes.size()), seed, 0.2);
        const Rewards test = Score(*dataset, split->test, config, budget, family);
        Rewards train;
        if (std::string(selection) == "whole") {
          train = Score(*dataset, split->train, config, budget, family);
        } else if (std::string(selection) == "hindsight") {
          train = test;
        } else {
          const std::vector<int> fold_of =
              env::DealFolds(split->train.size(), 4, env::MixSeed(seed, 77));
          for (int f = 0; f < 4; ++f) {
            std::vector<int> fold;
            for (size_t i = 0; i < split->train.size(); ++i)
              if (fold_of[i] == f) fold.push_back(split->train[i]);
            const Rewards r = Score(*dataset, fold, config, budget, family);
            if (train.rules.empty()) {
              train = r;
              for (auto* table : {&train.rules, &train.fixed})
                for (auto& row : *table) std::fill(row.begin(), row.end(), 0.0);
            }
            for (size_t s = 0; s < r.rules.size(); ++s) {
              for (size_t i = 0; i < r.rules[s].size(); ++i) train.rules[s][i] += r.rules[s][i] / 4;
              for (size_t i = 0; i < r.fixed[s].size(); ++i) train.fixed[s][i] += r.fixed[s][i] / 4;
            }
          }
        }
        chosen.push_back(BestRule(train));
        tests.push_back(test);
      }
      double worst = INFINITY;
      for (size_t s = 0; s < tests[0].rules.size(); ++s) {
        const size_t n = tests[0].fixed[s].size();
        std::vector<double> mean(n, 0);
        for (const Rewards& t : tests)
          for (size_t a = 0; a < n; ++a) mean[a] += t.fixed[s][a] / kSplits;
        const size_t best = std::max_element(mean.begin(), mean.end()) - mean.begin();
        double m = 0, var = 0;
        std::vector<double> margin;
        for (int i = 0; i < kSplits; ++i)
          margin.push_back(tests[i].rules[s][chosen[i]] - tests[i].fixed[s][best]);
        for (double v : margin) m += v / kSplits;
        for (double v : margin) var += (v - m) * (v - m) / (kSplits - 1);
        std::printf("%s rule, %s: scorer %zu, margin over action %zu: %+.3f (SE %.3f)\n",
                    family == kPosition ? "position" : "previous-action", selection, s, best, m,
                    std::sqrt(var / kSplits));
        worst = std::min(worst, m);
      }
      std::printf("%s rule, %s: worst case %+.3f\n\n",
                  family == kPosition ? "position" : "previous-action", selection, worst);
    }
  }
}
