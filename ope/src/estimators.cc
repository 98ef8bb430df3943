#include "lcio/ope/estimators.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "absl/strings/str_cat.h"

namespace lcio::ope {
namespace {

// estimate = sum(a) / sum(b), with the linearised residual a - estimate * b
// summed per cluster for the standard error (the ratio estimator's delta
// method; with b = 1 it is the clustered standard error of a mean).
Interval Ratio(const std::vector<OpeTurn>& turns, const std::vector<double>& a,
               const std::vector<double>& b, double z) {
  Interval out;
  double sa = 0, sb = 0;
  for (size_t i = 0; i < turns.size(); ++i) sa += a[i], sb += b[i];
  if (sb <= 0) {
    out.estimate = out.low = out.high = std::numeric_limits<double>::quiet_NaN();
    out.standard_error = std::numeric_limits<double>::infinity();
    return out;
  }
  out.estimate = sa / sb;
  std::map<int64_t, double> residual;
  for (size_t i = 0; i < turns.size(); ++i)
    residual[turns[i].cluster] += a[i] - out.estimate * b[i];
  const double clusters = static_cast<double>(residual.size());
  if (clusters >= 2) {
    double ss = 0;
    for (const auto& [cluster, r] : residual) ss += r * r;
    out.standard_error = std::sqrt(ss * clusters / (clusters - 1)) / sb;
  }
  out.low = out.estimate - z * out.standard_error;
  out.high = out.estimate + z * out.standard_error;
  return out;
}

// The four estimators as ratios of sums over turns: numerators and the
// denominators they do not share.
struct Terms {
  std::vector<double> ones, w, wr, dr, dm;
};

Terms TermsOf(const std::vector<OpeTurn>& turns) {
  const size_t n = turns.size();
  Terms t{std::vector<double>(n, 1.0), std::vector<double>(n), std::vector<double>(n),
          std::vector<double>(n), std::vector<double>(n)};
  for (size_t i = 0; i < n; ++i) {
    const OpeTurn& o = turns[i];
    t.w[i] = o.match ? 1.0 / o.propensity : 0.0;
    t.wr[i] = t.w[i] * o.reward;
    t.dm[i] = o.dm_candidate;
    t.dr[i] = o.dm_candidate + t.w[i] * (o.reward - o.dm_logged);
  }
  return t;
}

// sum(a_c) / sum(b_c) - sum(a_b) / sum(b_b): the per-turn influence
// (a_c - θ_c·b_c) / Σb_c - (a_b - θ_b·b_b) / Σb_b is summed per cluster.
Interval DifferenceOfRatios(const std::vector<OpeTurn>& turns, const std::vector<double>& ac,
                            const std::vector<double>& bc, const std::vector<double>& ab,
                            const std::vector<double>& bb, double z) {
  Interval out;
  double sac = 0, sbc = 0, sab = 0, sbb = 0;
  for (size_t i = 0; i < turns.size(); ++i) sac += ac[i], sbc += bc[i], sab += ab[i], sbb += bb[i];
  if (sbc <= 0 || sbb <= 0) {
    out.estimate = out.low = out.high = std::numeric_limits<double>::quiet_NaN();
    out.standard_error = std::numeric_limits<double>::infinity();
    return out;
  }
  const double tc = sac / sbc, tb = sab / sbb;
  out.estimate = tc - tb;
  std::map<int64_t, double> residual;
  for (size_t i = 0; i < turns.size(); ++i)
    residual[turns[i].cluster] += (ac[i] - tc * bc[i]) / sbc - (ab[i] - tb * bb[i]) / sbb;
  const double clusters = static_cast<double>(residual.size());
  if (clusters >= 2) {
    double ss = 0;
    for (const auto& [cluster, r] : residual) ss += r * r;
    out.standard_error = std::sqrt(ss * clusters / (clusters - 1));
  }
  out.low = out.estimate - z * out.standard_error;
  out.high = out.estimate + z * out.standard_error;
  return out;
}

}  // namespace

absl::StatusOr<Differences> EstimateDifference(const std::vector<OpeTurn>& candidate,
                                               const std::vector<OpeTurn>& baseline, double z) {
  if (candidate.size() != baseline.size())
    return absl::InvalidArgumentError(absl::StrCat(
        "paired comparison: the candidate was evaluated on ", candidate.size(),
        " turns, the baseline on ", baseline.size(), ": both must be evaluated on the same log"));
  Differences d;
  d.turns = static_cast<int64_t>(candidate.size());
  std::map<int64_t, int> clusters;
  for (size_t i = 0; i < candidate.size(); ++i) {
    const OpeTurn& c = candidate[i];
    const OpeTurn& b = baseline[i];
    const char* field = c.cluster != b.cluster         ? "cluster"
                        : c.reward != b.reward         ? "reward"
                        : c.propensity != b.propensity ? "propensity"
                                                       : nullptr;
    if (field != nullptr)
      return absl::InvalidArgumentError(
          absl::StrCat("paired comparison: turn ", i, ": the candidate's and the baseline's '",
                       field, "' differ: both must be evaluated on the same log"));
    clusters[c.cluster] = 1;
    d.disagreements += c.action >= 0 && b.action >= 0 && c.action != b.action;
  }
  d.clusters = static_cast<int64_t>(clusters.size());
  if (candidate.empty()) return d;
  const Terms tc = TermsOf(candidate), tb = TermsOf(baseline);
  d.ips = DifferenceOfRatios(candidate, tc.wr, tc.ones, tb.wr, tb.ones, z);
  d.snips = DifferenceOfRatios(candidate, tc.wr, tc.w, tb.wr, tb.w, z);
  d.dr = DifferenceOfRatios(candidate, tc.dr, tc.ones, tb.dr, tb.ones, z);
  d.dm = DifferenceOfRatios(candidate, tc.dm, tc.ones, tb.dm, tb.ones, z);
  return d;
}

Estimates Estimate(const std::vector<OpeTurn>& turns, double z) {
  Estimates e;
  e.turns = static_cast<int64_t>(turns.size());
  const Terms terms = TermsOf(turns);
  double sw = 0, sww = 0;
  std::map<int64_t, int> clusters;
  for (size_t i = 0; i < turns.size(); ++i) {
    const OpeTurn& t = turns[i];
    clusters[t.cluster] = 1;
    sw += terms.w[i];
    sww += terms.w[i] * terms.w[i];
    e.matches += t.match;
    e.deterministic += t.propensity >= 1.0;
    e.min_propensity = std::min(e.min_propensity, t.propensity);
  }
  e.clusters = static_cast<int64_t>(clusters.size());
  e.effective_turns = sww > 0 ? sw * sw / sww : 0;
  if (turns.empty()) return e;
  e.ips = Ratio(turns, terms.wr, terms.ones, z);
  e.snips = Ratio(turns, terms.wr, terms.w, z);
  e.dr = Ratio(turns, terms.dr, terms.ones, z);
  e.dm = Ratio(turns, terms.dm, terms.ones, z);
  return e;
}

double TurnsForHalfWidth(double half_width, double epsilon, int num_actions,
                         double mean_square_reward, double z) {
  if (half_width <= 0 || epsilon <= 0 || num_actions <= 0)
    return std::numeric_limits<double>::infinity();
  const double variance = num_actions / epsilon * mean_square_reward;
  return std::ceil(z * z * variance / (half_width * half_width));
}

}  // namespace lcio::ope
