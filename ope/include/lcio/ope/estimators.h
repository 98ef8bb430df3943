// Off-policy estimators of a deterministic candidate's mean per-turn reward
// from turns logged under a stochastic (exploring) policy: IPS, self-normalised
// IPS and doubly robust, with normal-approximation confidence intervals.
//
// Turns of one conversation share a history, so they are not independent:
// every standard error here is clustered by conversation (each estimator is a
// ratio of sums, linearised, and its residuals summed per conversation).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace lcio::ope {

// One logged turn, seen from the candidate.
struct OpeTurn {
  int64_t cluster = 0;      // conversation: turns of one cluster are correlated
  double reward = 0;        // logged reward of the logged action
  double propensity = 1;    // probability the logging policy gave the logged action, (0, 1]
  bool match = false;       // the candidate takes the logged action here
  double dm_candidate = 0;  // direct method: the model's reward for the candidate's action
  double dm_logged = 0;     // the model's reward for the logged action
  int action = -1;          // the candidate's action (-1: not recorded)
};

struct Interval {
  double estimate = 0;
  double standard_error = 0;  // clustered by conversation; 0 with fewer than 2 conversations
  double low = 0, high = 0;   // estimate -/+ z * standard_error
};

struct Estimates {
  Interval ips, snips, dr;
  // The direct method alone: its interval is sampling error only and says
  // nothing about the model's own bias.
  Interval dm;
  int64_t turns = 0;
  int64_t clusters = 0;
  int64_t matches = 0;        // turns where the candidate agrees with the log
  int64_t deterministic = 0;  // turns logged with propensity 1 (no exploration)
  double min_propensity = 1;
  // (sum w)^2 / sum w^2 over the importance weights w = match / propensity:
  // how many turns the weighted estimates are worth.
  double effective_turns = 0;
};

// z = 1.96 for 95% intervals. Propensities must be in (0, 1] (the caller
// validates them where they are read).
Estimates Estimate(const std::vector<OpeTurn>& turns, double z = 1.96);

// Paired comparison: candidate - baseline, both evaluated on the same logged
// turns (the same order, conversations, rewards and propensities). Each
// estimator's difference is a difference of two ratio estimators; its
// linearised residual, (a_c - θ_c·b_c) / Σb_c - (a_b - θ_b·b_b) / Σb_b, is the
// per-turn difference of the two policies' contributions, summed per
// conversation for the clustered standard error. Noise the two estimates share
// (the same conversations, the same explored turns) cancels there, so the
// interval is far narrower than one built from the two estimates' own
// standard errors as if they were independent. Identical policies give a
// difference of 0 with a zero-width interval.
struct Differences {
  Interval ips, snips, dr, dm;  // SNIPS: NaN when either policy never agrees with the log
  int64_t turns = 0;
  int64_t clusters = 0;
  // Turns where the two policies choose different actions (both recorded).
  int64_t disagreements = 0;
};
// Errors when the two lists are not the same logged turns.
absl::StatusOr<Differences> EstimateDifference(const std::vector<OpeTurn>& candidate,
                                               const std::vector<OpeTurn>& baseline,
                                               double z = 1.96);

// Turns needed for an IPS interval of half-width `half_width` for a candidate
// that the logging policy agrees with only through exploration: epsilon of
// the traffic explores uniformly over `num_actions` actions, so a matching
// turn has weight num_actions / epsilon and the per-turn variance is at most
// (num_actions / epsilon) * mean_square_reward.
double TurnsForHalfWidth(double half_width, double epsilon, int num_actions,
                         double mean_square_reward, double z = 1.96);

}  // namespace lcio::ope
