// What the evaluator asks of every decision maker: baselines, the Oracle and
// trained policies alike.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lcio/data/m4a1.h"
#include "lcio/env/observation.h"
#include "lcio/env/simulator.h"

namespace lcio::env {

class Policy {
 public:
  virtual ~Policy() = default;
  virtual std::string name() const = 0;
  // Called before each evaluated episode. Only the Oracle may read `episode`
  // (it is the full-knowledge upper bound); every other policy decides from
  // what Act receives. `seed` makes randomised policies reproducible.
  virtual void BeginEpisode(const data::Episode& episode, const Budget& budget, uint64_t seed) {
    (void)episode, (void)budget, (void)seed;
  }
  // Chooses an action. May fill `scores` (one per action, higher preferred);
  // the shield then replaces an unaffordable choice by the best that fits.
  virtual int Act(const DecisionContext& context, std::vector<double>* scores) = 0;
  // The dataset episode indices of every model this policy consults when it
  // decides (its decision model), so the evaluator can refuse a decision
  // maker that has seen the episodes it is scored on. Empty for a policy that
  // consults none; the Oracle and the clairvoyant Greedy are bounds, not
  // decision makers, and declare themselves with is_bound().
  virtual std::vector<int> DecisionModelEpisodes() const { return {}; }
  // Choices the policy replaced inside Act by the shield's rule because they
  // did not fit (Greedy's best reward, a fallback table's fixed action)
  // since the last call; the evaluator counts them as shield overrides, which
  // they are, though the evaluator's own shield never sees them.
  virtual int64_t TakeShieldOverrides() { return 0; }
  virtual bool is_bound() const { return false; }
};

}  // namespace lcio::env
