#include "lcio/ope/estimators.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

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

}  // namespace

Estimates Estimate(const std::vector<OpeTurn>& turns, double z) {
  Estimates e;
  e.turns = static_cast<int64_t>(turns.size());
  const size_t n = turns.size();
  std::vector<double> ones(n, 1.0), w(n), wr(n), dr(n), dm(n);
  double sw = 0, sww = 0;
  std::map<int64_t, int> clusters;
  for (size_t i = 0; i < n; ++i) {
    const OpeTurn& t = turns[i];
    clusters[t.cluster] = 1;
    w[i] = t.match ? 1.0 / t.propensity : 0.0;
    wr[i] = w[i] * t.reward;
    dm[i] = t.dm_candidate;
    dr[i] = t.dm_candidate + w[i] * (t.reward - t.dm_logged);
    sw += w[i];
    sww += w[i] * w[i];
    e.matches += t.match;
    e.deterministic += t.propensity >= 1.0;
    e.min_propensity = std::min(e.min_propensity, t.propensity);
  }
  e.clusters = static_cast<int64_t>(clusters.size());
  e.effective_turns = sww > 0 ? sw * sw / sww : 0;
  if (n == 0) return e;
  e.ips = Ratio(turns, wr, ones, z);
  e.snips = Ratio(turns, wr, w, z);
  e.dr = Ratio(turns, dr, ones, z);
  e.dm = Ratio(turns, dm, ones, z);
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
