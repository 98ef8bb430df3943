// Exploration (--explore): the server may take, with a known probability,
// an action other than its greedy choice, only among the actions the budget
// shield allows, so that logged decisions support off-policy evaluation.
// The draw is a function of the decision id, so every sample can be
// reproduced from the log.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lcio/env/profiles.h"

namespace lcio::server {

struct ExploreConfig {
  enum class Mode { kNone, kEpsilon, kSoftmax };
  Mode mode = Mode::kNone;
  double parameter = 0;  // epsilon in [0, 1], or the temperature > 0

  // "" or "none", "epsilon:E" (E in [0, 1]), "softmax:T" (T > 0, finite).
  static absl::StatusOr<ExploreConfig> Parse(absl::string_view flag);
  // "none", "epsilon", "softmax": the decision log's exploration.mode.
  const char* ModeName() const;
  bool enabled() const { return mode != Mode::kNone; }
};

// A uniform number in [0, 1) that depends only on `decision_id`.
double ExplorationDraw(absl::string_view decision_id);

struct ExploreChoice {
  int action = 0;
  std::vector<double> probabilities;  // one per action, summing to 1
  bool explored = false;              // action != greedy
};

// `allowed[a]`: the shield allows action a. `greedy`: the shield's choice
// (the best-scoring allowed action, or the cheapest when none is allowed).
// Epsilon: greedy with 1 - epsilon, else uniform over the allowed actions;
// softmax: allowed actions in proportion to exp(score / T). Without
// exploration, or when no action is allowed, `greedy` with probability 1.
// `u` in [0, 1) picks the action (ExplorationDraw). `allowed` may be empty
// without exploration.
ExploreChoice Explore(const ExploreConfig& config, const std::vector<float>& scores,
                      const std::vector<bool>& allowed, int greedy, double u);

// Where the artifact's fallback table answers with `fixed_action`, the
// decision's scores become the fallback's ranking, in place: the same values
// (the network's, so a softmax temperature keeps its meaning), reassigned so
// that `fixed_action` has the highest and the other actions follow cheapest
// first (the shield's order without scores: normalised time + money, ties
// to the lower index). The best allowed action under this ranking is then
// exactly what env::Shield(costs, fixed_action, nullptr, ...) takes whenever
// some action fits, so exploration, the explanation and the decision log
// treat a fallback decision as any other (docs/service.md, "Validated
// fallback"). When a network value is not finite the values are 0, -1, -2,
// ... by rank instead (finite, so the log can write them). Allocation-free
// once a thread has ranked one decision.
void FallbackRanking(const env::CostModel& costs, int fixed_action, std::vector<float>* scores);
// The values a fallback decision is ranked with when the network is not run
// (no softmax exploration needs its values' spread): 0, -1, -2, ...
std::vector<float> FallbackRankValues(int num_actions);
// Whether a fallback decision under `config` (for a request that did not opt
// out of exploration) needs the network's values: only a softmax draw does.
inline bool FallbackNeedsNetworkValues(const ExploreConfig& config, bool opted_out) {
  return config.mode == ExploreConfig::Mode::kSoftmax && !opted_out;
}

}  // namespace lcio::server
