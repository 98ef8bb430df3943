#include "lcio/ope/estimators.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "lcio/data/message.h"
#include "lcio/env/split.h"

namespace lcio::ope {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// The standard normal distribution function and its inverse (bisection:
// exact to double precision, and only called a few times per interval).
double NormalCdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }
double NormalQuantile(double p) {
  if (p <= 0) return -kInf;
  if (p >= 1) return kInf;
  double lo = -40, hi = 40;
  for (int i = 0; i < 200 && hi - lo > 1e-15; ++i) {
    const double mid = 0.5 * (lo + hi);
    (NormalCdf(mid) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

// Student's t quantile with `df` degrees of freedom: exact for 1 and 2,
// otherwise the Cornish-Fisher expansion in 1/df (Abramowitz & Stegun
// 26.7.5; at the 97.5% point 3.8e-3 below the exact value at df = 3 (3.1786
// against 3.1824), 1e-5 from df = 10).
double TQuantile(double p, double df) {
  if (df == 1) return std::tan(M_PI * (p - 0.5));
  if (df == 2) return (2 * p - 1) / std::sqrt(2 * p * (1 - p));
  const double z = NormalQuantile(p), z2 = z * z;
  const double g1 = z * (z2 + 1) / 4;
  const double g2 = z * ((5 * z2 + 16) * z2 + 3) / 96;
  const double g3 = z * (((3 * z2 + 19) * z2 + 17) * z2 - 15) / 384;
  const double g4 = z * ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) / 92160;
  return z + (g1 + (g2 + (g3 + g4 / df) / df) / df) / df;
}

// The q-quantile of sorted values (linear between order statistics).
double Quantile(const std::vector<double>& sorted, double q) {
  const double at = std::clamp(q, 0.0, 1.0) * static_cast<double>(sorted.size() - 1);
  const size_t i = static_cast<size_t>(std::floor(at));
  if (i + 1 >= sorted.size()) return sorted.back();
  const double f = at - static_cast<double>(i);
  // (Also when both are infinite: a bootstrap-t resample without spread.)
  if (f == 0 || sorted[i] == sorted[i + 1]) return sorted[i];
  return sorted[i] + f * (sorted[i + 1] - sorted[i]);
}

// A statistic of per-conversation sums: with dim 2, the ratio S0 / S1; with
// dim 4, the difference of ratios S0 / S1 - S2 / S3. `sums` holds each
// conversation's `dim` sums, one after the other.
struct Statistic {
  int dim = 2;
  std::vector<double> sums;

  size_t clusters() const { return sums.size() / dim; }
  const double* cluster(size_t c) const { return sums.data() + c * dim; }
  // NaN when a denominator is not positive (e.g. SNIPS with no agreement).
  double Value(const double* total) const {
    if (total[1] <= 0 || (dim == 4 && total[3] <= 0)) return kNaN;
    double v = total[0] / total[1];
    if (dim == 4) v -= total[2] / total[3];
    return v;
  }
  // A conversation's linearised contribution: the gradient of Value at
  // `total` times the conversation's sums. Sums to 0 over the conversations
  // that make up `total`.
  double Influence(const double* total, const double* s) const {
    double v = (s[0] - total[0] / total[1] * s[1]) / total[1];
    if (dim == 4) v -= (s[2] - total[2] / total[3] * s[3]) / total[3];
    return v;
  }
  // The size of the terms a conversation's influence is computed from: the
  // scale its rounding error is relative to.
  double InfluenceScale(const double* total, const double* s) const {
    double v = (std::abs(s[0]) + std::abs(total[0] / total[1] * s[1])) / total[1];
    if (dim == 4) v += (std::abs(s[2]) + std::abs(total[2] / total[3] * s[3])) / total[3];
    return v;
  }
  // sqrt(C/(C-1) Σ_c influence²) over the conversations `which` (all when
  // null) whose sums add up to `total`.
  double PlugInStandardError(const double* total, const std::vector<size_t>* which) const {
    const size_t n = which ? which->size() : clusters();
    if (n < 2) return 0;
    double ss = 0;
    for (size_t k = 0; k < n; ++k) {
      const double r = Influence(total, cluster(which ? (*which)[k] : k));
      ss += r * r;
    }
    const double c = static_cast<double>(n);
    return std::sqrt(ss * c / (c - 1));
  }
};

// Builds the statistic from per-turn terms: each turn adds terms[k][i] to
// its conversation's k-th sum.
Statistic Gather(const std::vector<OpeTurn>& turns,
                 std::initializer_list<const std::vector<double>*> terms) {
  Statistic st;
  st.dim = static_cast<int>(terms.size());
  std::map<int64_t, size_t> index;
  for (size_t i = 0; i < turns.size(); ++i) {
    auto [it, added] = index.emplace(turns[i].cluster, index.size());
    if (added) st.sums.resize(st.sums.size() + st.dim, 0.0);
    int k = 0;
    for (const std::vector<double>* t : terms) st.sums[it->second * st.dim + k++] += (*t)[i];
  }
  return st;
}

// A sample in which every conversation's influence is 0 shows no spread:
// one conversation, a weighted estimator whose candidate agrees with the log
// nowhere or in one conversation only (SNIPS is then that conversation's own
// ratio), or a task seen once. Its interval is undefined, not zero-wide;
// identical policies' difference (exactly 0) is answered before this.
// "0" is up to rounding: a standard error below 1e-12 of the terms' scale
// (times sqrt(C)) is what floating point leaves of an exact 0 (about 1e-17
// for SNIPS agreeing in one conversation), not a spread.
Interval Build(const Statistic& st, const IntervalOptions& options) {
  Interval out;
  const int dim = st.dim;
  const size_t C = st.clusters();
  std::vector<double> total(dim, 0.0);
  for (size_t c = 0; c < C; ++c)
    for (int k = 0; k < dim; ++k) total[k] += st.cluster(c)[k];
  out.estimate = st.Value(total.data());
  if (std::isnan(out.estimate)) {
    out.low = out.high = kNaN;
    out.standard_error = kInf;
    return out;
  }
  const double plug_in = st.PlugInStandardError(total.data(), nullptr);
  out.standard_error = plug_in;
  out.low = out.high = out.estimate;
  auto undefined = [&out] {
    out.standard_error = kInf;
    out.low = -kInf;
    out.high = kInf;
    return out;
  };
  double scale = 0;
  for (size_t c = 0; c < C; ++c)
    scale = std::max(scale, st.InfluenceScale(total.data(), st.cluster(c)));
  if (plug_in <= 1e-12 * std::sqrt(static_cast<double>(C)) * scale) return undefined();
  const double alpha = 1 - options.level;

  if (options.method == IntervalMethod::kNormal) {
    const double z = NormalQuantile(1 - alpha / 2);
    out.low = out.estimate - z * plug_in;
    out.high = out.estimate + z * plug_in;
    return out;
  }
  if (options.method == IntervalMethod::kEffective) {
    double s2 = 0, s4 = 0;
    // Whole degrees of freedom, rounded down (the wider interval). The
    // influences are scaled by the largest first (df does not depend on
    // their scale): their fourth powers overflow from about 1e77, which a
    // propensity down to kMinPropensity reaches.
    double largest = 0;
    for (size_t c = 0; c < C; ++c)
      largest = std::max(largest, std::abs(st.Influence(total.data(), st.cluster(c))));
    for (size_t c = 0; c < C; ++c) {
      const double r = st.Influence(total.data(), st.cluster(c)) / largest;
      s2 += r * r;
      s4 += r * r * r * r;
    }
    const double ratio = s2 * s2 / s4;  // in [1, C]; NaN only if every term is (then 1)
    const double df = std::clamp(std::isnan(ratio) ? 1.0 : std::floor(ratio - 1), 1.0,
                                 static_cast<double>(C - 1));
    const double t = TQuantile(1 - alpha / 2, df);
    out.low = out.estimate - t * plug_in;
    out.high = out.estimate + t * plug_in;
    return out;
  }

  // The jackknife: every conversation left out once (kJackknife; kBca's
  // acceleration).
  std::vector<double> left_out(C);
  double mean_left_out = 0;
  std::vector<double> rest(dim);
  for (size_t c = 0; c < C; ++c) {
    for (int k = 0; k < dim; ++k) rest[k] = total[k] - st.cluster(c)[k];
    left_out[c] = st.Value(rest.data());
    mean_left_out += left_out[c] / static_cast<double>(C);
  }
  const bool jackknife_defined = !std::isnan(mean_left_out);
  if (options.method == IntervalMethod::kJackknife) {
    // A conversation without which the estimate is undefined (the only one
    // where SNIPS's candidate agrees with the log): no variance to give.
    if (!jackknife_defined) return undefined();
    double ss = 0;
    for (double v : left_out) ss += (v - mean_left_out) * (v - mean_left_out);
    const double c = static_cast<double>(C);
    out.standard_error = std::sqrt(ss * (c - 1) / c);
    const double t = TQuantile(1 - alpha / 2, c - 1);
    out.low = out.estimate - t * out.standard_error;
    out.high = out.estimate + t * out.standard_error;
    return out;
  }

  // The bootstrap: C conversations drawn with replacement, `resamples` times.
  std::mt19937_64 rng(options.seed);
  std::vector<double> estimates, studentized;
  std::vector<size_t> drawn(C);
  std::vector<double> resampled(dim);
  for (int b = 0; b < options.resamples; ++b) {
    std::fill(resampled.begin(), resampled.end(), 0.0);
    for (size_t k = 0; k < C; ++k) {
      drawn[k] = static_cast<size_t>(env::UniformIndex(rng, C));
      for (int j = 0; j < dim; ++j) resampled[j] += st.cluster(drawn[k])[j];
    }
    const double v = st.Value(resampled.data());
    if (std::isnan(v)) continue;  // e.g. no agreeing turn drawn: SNIPS undefined there
    estimates.push_back(v);
    if (options.method == IntervalMethod::kStudentized) {
      const double se = st.PlugInStandardError(resampled.data(), &drawn);
      const double d = v - out.estimate;
      studentized.push_back(se > 0 ? d / se : d == 0 ? 0.0 : std::copysign(kInf, d));
    }
  }
  // Fewer than half the resamples define the estimate: no interval to trust.
  if (estimates.empty() || 2 * estimates.size() < static_cast<size_t>(options.resamples))
    return undefined();
  if (options.method == IntervalMethod::kStudentized) {
    std::sort(studentized.begin(), studentized.end());
    out.low = out.estimate - Quantile(studentized, 1 - alpha / 2) * plug_in;
    out.high = out.estimate - Quantile(studentized, alpha / 2) * plug_in;
    return out;
  }
  double mean = 0, ss = 0;
  for (double v : estimates) mean += v / static_cast<double>(estimates.size());
  for (double v : estimates) ss += (v - mean) * (v - mean);
  out.standard_error = std::sqrt(ss / std::max<double>(1, estimates.size() - 1));
  std::sort(estimates.begin(), estimates.end());
  double q_low = alpha / 2, q_high = 1 - alpha / 2;
  if (options.method == IntervalMethod::kBca) {
    if (!jackknife_defined) return undefined();
    // Bias correction: where the estimate sits among the resampled ones.
    const double below = static_cast<double>(
        std::lower_bound(estimates.begin(), estimates.end(), out.estimate) - estimates.begin());
    const double ties =
        static_cast<double>(std::upper_bound(estimates.begin(), estimates.end(), out.estimate) -
                            estimates.begin()) -
        below;
    const double share = (below + 0.5 * ties) / static_cast<double>(estimates.size());
    const double z0 =
        NormalQuantile(std::clamp(share, 0.5 / estimates.size(), 1 - 0.5 / estimates.size()));
    // Acceleration: the skewness of the jackknife influences.
    double s2 = 0, s3 = 0;
    for (double v : left_out) {
      const double u = mean_left_out - v;
      s2 += u * u;
      s3 += u * u * u;
    }
    const double a = s2 > 0 ? s3 / (6 * std::pow(s2, 1.5)) : 0;
    auto adjusted = [&](double q) {
      const double z = z0 + NormalQuantile(q);
      return NormalCdf(z0 + z / (1 - a * z));
    };
    q_low = adjusted(alpha / 2);
    q_high = adjusted(1 - alpha / 2);
  }
  out.low = Quantile(estimates, q_low);
  out.high = Quantile(estimates, q_high);
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

}  // namespace

absl::StatusOr<Differences> EstimateDifference(const std::vector<OpeTurn>& candidate,
                                               const std::vector<OpeTurn>& baseline,
                                               const IntervalOptions& interval) {
  if (auto s = ValidateIntervalOptions(interval); !s.ok()) return s;
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
  // Policies that choose alike on every turn differ by exactly zero, however
  // few the conversations.
  const bool alike = std::all_of(candidate.begin(), candidate.end(),
                                 [](const OpeTurn& o) { return o.action >= 0; }) &&
                     std::all_of(baseline.begin(), baseline.end(),
                                 [](const OpeTurn& o) { return o.action >= 0; }) &&
                     d.disagreements == 0;
  if (alike) {  // every interval 0 [0, 0], but SNIPS is undefined when no turn agrees
    if (std::none_of(candidate.begin(), candidate.end(), [](const OpeTurn& o) { return o.match; }))
      d.snips = {std::nan(""), std::nan(""), std::nan(""), std::nan("")};
    return d;
  }
  const Terms tc = TermsOf(candidate), tb = TermsOf(baseline);
  auto undefined = [](const Interval& i) {
    return !std::isfinite(i.standard_error) || !std::isfinite(i.low) || !std::isfinite(i.high);
  };
  // sum(a_c) / sum(b_c) - sum(a_b) / sum(b_b), per conversation. Undefined
  // when either side's own estimate is: a side without evidence (an IPS that
  // agrees with the log nowhere) would lend the difference the other side's
  // spread alone, a narrow interval that claims what the log cannot show.
  auto difference = [&](const std::vector<double>& ac, const std::vector<double>& bc,
                        const std::vector<double>& ab, const std::vector<double>& bb) {
    Interval d = Build(Gather(candidate, {&ac, &bc, &ab, &bb}), interval);
    if (undefined(Build(Gather(candidate, {&ac, &bc}), interval)) ||
        undefined(Build(Gather(baseline, {&ab, &bb}), interval))) {
      d.standard_error = std::numeric_limits<double>::infinity();
      d.low = -d.standard_error;
      d.high = d.standard_error;
    }
    return d;
  };
  d.ips = difference(tc.wr, tc.ones, tb.wr, tb.ones);
  d.snips = difference(tc.wr, tc.w, tb.wr, tb.w);
  d.dr = difference(tc.dr, tc.ones, tb.dr, tb.ones);
  d.dm = difference(tc.dm, tc.ones, tb.dm, tb.ones);
  return d;
}

Estimates Estimate(const std::vector<OpeTurn>& turns, const IntervalOptions& interval) {
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
    e.deterministic += t.propensity > 1.0 - Estimates::kMinExploration;
    e.min_propensity = std::min(e.min_propensity, t.propensity);
  }
  e.clusters = static_cast<int64_t>(clusters.size());
  e.effective_turns = sww > 0 ? sw * sw / sww : 0;
  if (turns.empty()) return e;
  // sum(a) / sum(b), per conversation (with b = 1, a clustered mean).
  auto ratio = [&](const std::vector<double>& a, const std::vector<double>& b) {
    return Build(Gather(turns, {&a, &b}), interval);
  };
  e.ips = ratio(terms.wr, terms.ones);
  e.snips = ratio(terms.wr, terms.w);
  e.dr = ratio(terms.dr, terms.ones);
  e.dm = ratio(terms.dm, terms.ones);
  return e;
}

const char* IntervalMethodName(IntervalMethod method) {
  switch (method) {
    case IntervalMethod::kNormal:
      return "normal";
    case IntervalMethod::kJackknife:
      return "jackknife";
    case IntervalMethod::kEffective:
      return "effective";
    case IntervalMethod::kPercentile:
      return "percentile";
    case IntervalMethod::kBca:
      return "bca";
    case IntervalMethod::kStudentized:
      return "studentized";
  }
  return "?";
}

absl::StatusOr<IntervalMethod> ParseIntervalMethod(std::string_view name) {
  for (IntervalMethod m :
       {IntervalMethod::kNormal, IntervalMethod::kJackknife, IntervalMethod::kEffective,
        IntervalMethod::kPercentile, IntervalMethod::kBca, IntervalMethod::kStudentized})
    if (name == IntervalMethodName(m)) return m;
  return absl::InvalidArgumentError(
      absl::StrCat("interval method \"", data::Shorten(name, 64),
                   "\": must be normal, jackknife, effective, percentile, bca or studentized"));
}

absl::Status ValidateIntervalOptions(const IntervalOptions& interval) {
  if (!(interval.level > 0 && interval.level < 1))
    return absl::InvalidArgumentError(
        absl::StrCat("interval level = ", interval.level, ": must be in (0, 1)"));
  const bool bootstrap = interval.method == IntervalMethod::kPercentile ||
                         interval.method == IntervalMethod::kBca ||
                         interval.method == IntervalMethod::kStudentized;
  if (bootstrap && (interval.resamples < 99 || interval.resamples > IntervalOptions::kMaxResamples))
    return absl::InvalidArgumentError(absl::StrCat("interval resamples = ", interval.resamples,
                                                   ": a bootstrap needs 99 to ",
                                                   IntervalOptions::kMaxResamples));
  return absl::OkStatus();
}

double TurnsForHalfWidth(double half_width, double epsilon, int num_actions,
                         double mean_square_reward, double z) {
  if (half_width <= 0 || epsilon <= 0 || num_actions <= 0)
    return std::numeric_limits<double>::infinity();
  const double variance = num_actions / epsilon * mean_square_reward;
  return std::ceil(z * z * variance / (half_width * half_width));
}

}  // namespace lcio::ope
