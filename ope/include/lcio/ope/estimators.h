// Off-policy estimators of a deterministic candidate's mean per-turn reward
// from turns logged under a stochastic (exploring) policy: IPS, self-normalised
// IPS and doubly robust, with confidence intervals.
//
// Turns of one conversation share a history, so they are not independent:
// every interval here is clustered by conversation. Each estimator is a
// ratio of sums over turns; the per-conversation sums are what the interval
// methods (IntervalMethod) linearise, leave out or resample.
#pragma once

#include <cstdint>
#include <string_view>
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

// How an interval is built from the C conversations (docs/ope.md, "Intervals").
enum class IntervalMethod {
  // estimate -/+ z * the plug-in clustered standard error: each estimator
  // linearised, its residual summed per conversation, sqrt(C/(C-1) Σ R_c²).
  // Too narrow when a few heavy importance weights carry the estimate.
  kNormal,
  // Leave-one-conversation-out jackknife variance (CR3),
  // (C-1)/C Σ (θ_-c - mean θ_-c)², with a t quantile of C-1 degrees of freedom.
  kJackknife,
  // The plug-in standard error with a t quantile whose degrees of freedom
  // are the number of conversations the variance effectively rests on, less
  // one: Kish's effective sample size of the conversations' contributions to
  // it, (Σ R_c²)² / Σ R_c⁴ - 1 (at least 1). About C / 3 when they
  // contribute alike (normal residuals), so then t is within 1% of z from
  // C = 360 on; about k - 1 when k heavy turns carry the variance, which is
  // when the plug-in standard error is itself a noisy estimate from k values.
  // Conservative: the validation's coverage is 93.5-100% at 20% exploration.
  kEffective,
  // Conversations resampled with replacement; the percentile interval of the
  // resampled estimates.
  kPercentile,
  // The percentile interval corrected for bias and skewness (BCa: the bias
  // from the share of resampled estimates below the estimate, the
  // acceleration from the jackknife).
  kBca,
  // Bootstrap-t: the quantiles of (θ* - θ) / SE* over resamples, each with
  // its own plug-in standard error, scale the plug-in standard error. The
  // resamples' spread in SE* is what carries the skew of heavy weights: a
  // resample that draws fewer heavy turns has a lower estimate and a smaller
  // SE*, which stretches the interval on that side.
  kStudentized,
};
// "normal", "jackknife", "effective", "percentile", "bca", "studentized".
const char* IntervalMethodName(IntervalMethod method);
absl::StatusOr<IntervalMethod> ParseIntervalMethod(std::string_view name);

struct IntervalOptions {
  IntervalMethod method = IntervalMethod::kEffective;
  double level = 0.95;  // in (0, 1)
  static constexpr int kMaxResamples = 1000000;
  int resamples = 999;  // bootstrap methods, 99 to kMaxResamples
  uint64_t seed = 1;    // bootstrap methods: the resampling is reproducible
};

struct Interval {
  double estimate = 0;
  // Clustered by conversation. kNormal, kEffective, kStudentized: the
  // plug-in one; kJackknife: the jackknife's; kPercentile, kBca: the
  // resampled estimates' standard deviation. Infinite when the sample shows
  // no spread (every conversation's influence 0: one conversation, no or one
  // agreeing conversation), with low = -inf and high = +inf (null in JSON).
  double standard_error = 0;
  // The `level` interval of the method; exactly 0 [0, 0] for the difference
  // of policies that choose alike on every turn (SNIPS: NaN when they never
  // agree with the log).
  double low = 0, high = 0;
};

struct Estimates {
  Interval ips, snips, dr;
  // The direct method alone: its interval is sampling error only and says
  // nothing about the model's own bias.
  Interval dm;
  int64_t turns = 0;
  int64_t clusters = 0;
  int64_t matches = 0;  // turns where the candidate agrees with the log
  // Turns logged without exploration to speak of: the logged action's
  // propensity above 1 - kMinExploration (an epsilon of 1e-6 logs 0.999999,
  // which is no more evidence about other actions than 1 is).
  static constexpr double kMinExploration = 1e-3;
  int64_t deterministic = 0;
  double min_propensity = 1;
  // (sum w)^2 / sum w^2 over the importance weights w = match / propensity:
  // how many turns the weighted estimates are worth.
  double effective_turns = 0;
};

// Propensities must be in (0, 1] (the caller validates them where they are
// read). `interval` is assumed valid (ValidateIntervalOptions).
Estimates Estimate(const std::vector<OpeTurn>& turns, const IntervalOptions& interval = {});

// An error naming the field, its value and the rule.
absl::Status ValidateIntervalOptions(const IntervalOptions& interval);

// Paired comparison: candidate - baseline, both evaluated on the same logged
// turns (the same order, conversations, rewards and propensities). Each
// estimator's difference is a difference of two ratio estimators; its
// linearised residual, (a_c - θ_c·b_c) / Σb_c - (a_b - θ_b·b_b) / Σb_b, is the
// per-turn difference of the two policies' contributions, summed per
// conversation; the interval methods work on the four per-conversation sums. Noise the two
// estimates share (the same conversations, the same explored turns) cancels there, so the interval
// is far narrower than one built from the two estimates' own standard errors as if they were
// independent. Identical policies give a difference of 0 with a zero-width interval.
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
                                               const IntervalOptions& interval = {});

// Turns needed for an IPS interval of half-width `half_width` for a candidate
// that the logging policy agrees with only through exploration: epsilon of
// the traffic explores uniformly over `num_actions` actions, so a matching
// turn has weight num_actions / epsilon and the per-turn variance is at most
// (num_actions / epsilon) * mean_square_reward.
double TurnsForHalfWidth(double half_width, double epsilon, int num_actions,
                         double mean_square_reward, double z = 1.96);

}  // namespace lcio::ope
