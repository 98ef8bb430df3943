#include <cmath>
#include <random>
#include <sstream>

#include "gtest/gtest.h"
#include "lcio/env/baselines.h"
#include "lcio/env/evaluator.h"
#include "lcio/ope/calibrate.h"
#include "lcio/ope/estimators.h"
#include "lcio/ope/joined_log.h"
#include "lcio/ope/off_policy.h"
#include "test_support.h"

namespace lcio::ope {
namespace {

using testing::EmbeddedDataset;

IntervalOptions Normal() {
  IntervalOptions o;
  o.method = IntervalMethod::kNormal;
  return o;
}

constexpr IntervalMethod kAllMethods[] = {IntervalMethod::kNormal,    IntervalMethod::kJackknife,
                                          IntervalMethod::kEffective, IntervalMethod::kPercentile,
                                          IntervalMethod::kBca,       IntervalMethod::kStudentized};

TEST(Estimators, HandComputedValues) {
  // Two conversations; the candidate agrees with the log on turns 0 and 2.
  std::vector<OpeTurn> t = {
      {0, 2.0, 0.5, true, 1.0, 1.5},
      {0, 1.0, 0.25, false, 0.5, 1.0},
      {1, 3.0, 1.0, true, 2.0, 2.5},
  };
  const Estimates e = Estimate(t, Normal());
  EXPECT_DOUBLE_EQ(e.ips.estimate, (2.0 / 0.5 + 3.0) / 3);
  EXPECT_DOUBLE_EQ(e.snips.estimate, (2.0 / 0.5 + 3.0) / (1 / 0.5 + 1.0));
  EXPECT_DOUBLE_EQ(e.dr.estimate, ((1.0 + 2 * (2.0 - 1.5)) + 0.5 + (2.0 + (3.0 - 2.5))) / 3);
  EXPECT_DOUBLE_EQ(e.dm.estimate, (1.0 + 0.5 + 2.0) / 3);
  EXPECT_EQ(e.matches, 2);
  EXPECT_EQ(e.deterministic, 1);
  EXPECT_EQ(e.clusters, 2);
  EXPECT_DOUBLE_EQ(e.min_propensity, 0.25);
  EXPECT_DOUBLE_EQ(e.effective_turns, 9.0 / 5.0);
  // Clustered: conversation sums of (a - estimate), scaled by 2 / (2 - 1).
  const double est = e.ips.estimate;
  const double r0 = (4.0 - est) + (0.0 - est), r1 = 3.0 - est;
  EXPECT_NEAR(e.ips.standard_error, std::sqrt((r0 * r0 + r1 * r1) * 2) / 3, 1e-12);
  EXPECT_NEAR(e.ips.high - e.ips.low, 2 * 1.959964 * e.ips.standard_error, 1e-6);
}

TEST(Estimators, OnPolicyEveryEstimatorIsTheLoggedMean) {
  std::vector<OpeTurn> t;
  for (int i = 0; i < 10; ++i) t.push_back({i, 0.1 * i, 1.0, true, 0.7, 0.7});
  const Estimates e = Estimate(t);
  EXPECT_NEAR(e.ips.estimate, 0.45, 1e-12);
  EXPECT_NEAR(e.snips.estimate, 0.45, 1e-12);
  EXPECT_NEAR(e.dr.estimate, 0.45, 1e-12);
  EXPECT_EQ(e.deterministic, 10);
}

// A propensity of 0.999999 (epsilon 1e-6) is no more evidence about other
// actions than 1: both count as logged without exploration, 0.99 does not.
TEST(Estimators, NearlyCertainPropensitiesCountAsWithoutExploration) {
  std::vector<OpeTurn> t;
  for (double p : {1.0, 0.999999, 0.9995, 0.99, 0.5}) t.push_back({0, 1.0, p, true, 0.7, 0.7});
  EXPECT_EQ(Estimate(t).deterministic, 3);
}

TEST(Estimators, NoAgreementLeavesSnipsUndefined) {
  std::vector<OpeTurn> t = {{0, 1.0, 1.0, false, 0.2, 0.9}, {1, 1.0, 1.0, false, 0.2, 0.9}};
  const Estimates e = Estimate(t);
  EXPECT_EQ(e.ips.estimate, 0.0);  // counts every disagreement as reward 0
  EXPECT_TRUE(std::isnan(e.snips.estimate));
  EXPECT_DOUBLE_EQ(e.dr.estimate, 0.2);  // only the model speaks
}

// A sample that cannot show a spread used to get a zero-wide interval: a
// task with no agreeing turn read IPS 0.000 [0.000, 0.000], and SNIPS
// agreeing in one conversation only read its ratio with no width.
TEST(Estimators, ASampleThatShowsNoSpreadHasAnUndefinedIntervalNotAZeroWideOne) {
  auto undefined = [](const Interval& i) {
    return std::isinf(i.standard_error) && i.low == -INFINITY && i.high == INFINITY;
  };
  //                                cluster reward p   match dm_c dm_l
  const std::vector<OpeTurn> none = {{0, 1.0, 0.5, false, 0.3, 0.4},
                                     {1, 2.0, 0.5, false, 0.6, 0.4},
                                     {2, 0.5, 0.5, false, 0.9, 0.4}};
  const std::vector<OpeTurn> one = {{0, 1.0, 0.5, true, 0.3, 0.4},
                                    {1, 2.0, 0.5, false, 0.6, 0.4},
                                    {2, 0.5, 0.5, false, 0.9, 0.4}};
  const std::vector<OpeTurn> single = {{0, 1.0, 0.5, true, 0.3, 0.4},
                                       {0, 2.0, 0.5, true, 0.6, 0.4}};
  for (IntervalMethod method : kAllMethods) {
    IntervalOptions o;
    o.method = method;
    const Estimates e_none = Estimate(none, o), e_one = Estimate(one, o),
                    e_single = Estimate(single, o);
    EXPECT_EQ(e_none.ips.estimate, 0.0);
    EXPECT_TRUE(undefined(e_none.ips)) << IntervalMethodName(method);
    EXPECT_DOUBLE_EQ(e_one.snips.estimate, 1.0);
    EXPECT_TRUE(undefined(e_one.snips)) << IntervalMethodName(method);
    EXPECT_FALSE(undefined(e_one.ips)) << IntervalMethodName(method);  // 2 vs 0 vs 0: a spread
    EXPECT_FALSE(undefined(e_none.dr)) << IntervalMethodName(method);  // the model's spread
    for (const Interval* i : {&e_single.ips, &e_single.snips, &e_single.dr, &e_single.dm})
      EXPECT_TRUE(undefined(*i)) << IntervalMethodName(method);
  }
}

// Rounding left SNIPS agreeing in one conversation a plug-in standard error
// of about 1e-17 instead of 0, and with it a zero-wide interval (seen on a
// real joined log: 1.180 [1.180, 1.180]).
TEST(Estimators, RoundingLeftoversAreNoSpread) {
  //                                   cluster reward p    match dm_c dm_l
  const std::vector<OpeTurn> rounded = {{0, 0.1, 0.15, true, 0.3, 0.4},
                                        {0, 0.1, 0.6, true, 0.3, 0.4},
                                        {0, 0.1, 0.7, true, 0.3, 0.4},
                                        {1, 2.0, 0.5, false, 0.6, 0.4},
                                        {2, 0.5, 0.5, false, 0.9, 0.4}};
  for (IntervalMethod method : kAllMethods) {
    IntervalOptions o;
    o.method = method;
    const Estimates e = Estimate(rounded, o);
    EXPECT_NEAR(e.snips.estimate, 0.1, 1e-15);
    EXPECT_TRUE(std::isinf(e.snips.standard_error) && e.snips.low == -INFINITY &&
                e.snips.high == INFINITY)
        << IntervalMethodName(method) << " " << e.snips.standard_error << " [" << e.snips.low
        << ", " << e.snips.high << "]";
  }
}

// Propensities down to kMinPropensity are accepted; the effective degrees
// of freedom took fourth powers of the influences, which overflowed below
// about 1e-77 and left the intervals NaN (null in JSON).
TEST(Estimators, TheSmallestAcceptedPropensityStillGetsAFiniteInterval) {
  std::vector<OpeTurn> t;
  for (int i = 0; i < 6; ++i) t.push_back({i, 0.5 + 0.1 * i, 0.5, i % 2 == 0, 0.4, 0.5});
  // Four conversations carry the weight: about 3 effective degrees of freedom.
  for (int i = 6; i < 10; ++i) t.push_back({i, 0.2 * i, kMinPropensity, true, 0.4, 0.5});
  const Estimates e = Estimate(t);  // the effective-df interval, the default
  for (const Interval* i : {&e.ips, &e.snips, &e.dr})
    EXPECT_TRUE(std::isfinite(i->low) && std::isfinite(i->high)) << i->low << " " << i->high;
  for (const Interval* i : {&e.ips, &e.dr}) {
    EXPECT_LT(i->low, i->estimate);
    EXPECT_GT(i->high, i->estimate);
    // t at df 3 is 3.18; at df 1 (what an overflow would fall back to) 12.7.
    EXPECT_LT((i->high - i->low) / (2 * i->standard_error), 5) << i->standard_error;
  }
}

TEST(Differences, IdenticalPoliciesDifferByExactlyZero) {
  std::vector<OpeTurn> t;
  for (int i = 0; i < 40; ++i)
    t.push_back({i / 4, 0.3 * (i % 7), i % 3 == 0 ? 0.2 : 0.9, i % 2 == 0, 0.1 * (i % 5),
                 0.05 * (i % 4), i % 5});
  for (IntervalMethod method : kAllMethods) {
    IntervalOptions o;
    o.method = method;
    auto d = EstimateDifference(t, t, o);
    ASSERT_TRUE(d.ok()) << d.status();
    for (const Interval* i : {&d->ips, &d->snips, &d->dr, &d->dm}) {
      EXPECT_EQ(i->estimate, 0.0) << IntervalMethodName(method);
      EXPECT_EQ(i->standard_error, 0.0) << IntervalMethodName(method);
      EXPECT_EQ(i->low, 0.0) << IntervalMethodName(method);
      EXPECT_EQ(i->high, 0.0) << IntervalMethodName(method);
    }
    EXPECT_EQ(d->turns, 40);
    EXPECT_EQ(d->clusters, 10);
    EXPECT_EQ(d->disagreements, 0);
  }
  // Each estimate alone has a real interval: the pairing is what cancels it.
  EXPECT_GT(Estimate(t).dr.standard_error, 0.01);
  // Alike but never agreeing with the log: each SNIPS is undefined, so their
  // difference is too, not 0 [0, 0].
  for (OpeTurn& o : t) o.match = false;
  auto never = EstimateDifference(t, t);
  ASSERT_TRUE(never.ok()) << never.status();
  EXPECT_TRUE(std::isnan(Estimate(t).snips.estimate));
  EXPECT_TRUE(std::isnan(never->snips.estimate));
  EXPECT_TRUE(std::isnan(never->snips.low) && std::isnan(never->snips.high));
  EXPECT_EQ(never->ips.estimate, 0.0);
  EXPECT_EQ(never->ips.high, 0.0);
}

TEST(Differences, HandComputedValues) {
  // Two conversations; the logged action and reward are shared.
  //                 cluster reward p  match dm_cand dm_logged action
  std::vector<OpeTurn> c = {{0, 2.0, 0.5, true, 1.0, 1.5, 1},
                            {0, 1.0, 0.25, false, 0.5, 1.0, 2},
                            {1, 3.0, 1.0, true, 2.0, 2.5, 0}};
  std::vector<OpeTurn> b = {{0, 2.0, 0.5, false, 0.0, 1.5, 3},
                            {0, 1.0, 0.25, true, 1.0, 1.0, 4},
                            {1, 3.0, 1.0, false, 0.9, 2.5, 5}};
  auto d = EstimateDifference(c, b, Normal());
  ASSERT_TRUE(d.ok()) << d.status();
  const Estimates ec = Estimate(c), eb = Estimate(b);
  EXPECT_DOUBLE_EQ(d->ips.estimate, ec.ips.estimate - eb.ips.estimate);
  EXPECT_DOUBLE_EQ(d->snips.estimate, ec.snips.estimate - eb.snips.estimate);
  EXPECT_DOUBLE_EQ(d->dr.estimate, ec.dr.estimate - eb.dr.estimate);
  EXPECT_DOUBLE_EQ(d->dm.estimate, ec.dm.estimate - eb.dm.estimate);
  EXPECT_EQ(d->disagreements, 3);
  // IPS: the clustered standard error of the per-turn difference of the
  // weighted rewards: (4 - 0), (0 - 4), (3 - 0) per turn.
  const double diff = d->ips.estimate;
  EXPECT_DOUBLE_EQ(diff, 1.0);
  const double r0 = (4.0 - diff) + (-4.0 - diff), r1 = 3.0 - diff;
  EXPECT_NEAR(d->ips.standard_error, std::sqrt((r0 * r0 + r1 * r1) * 2) / 3, 1e-12);
  EXPECT_NEAR(d->dr.high - d->dr.low, 2 * 1.959964 * d->dr.standard_error, 1e-6);
}

// A hand-made log with a known truth: conversations with a shared random
// level, 5 actions, action a worth 0.1·a more. The logging policy takes
// action 1 and explores uniformly with probability 0.3; the baseline is the
// logging policy; the candidate takes action 3 on turns of kind 0 (a third of
// them) and action 1 elsewhere, so the true difference is 0.2 / 3.
TEST(Differences, PairedRecoversAKnownDifferenceWithANarrowerInterval) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> level(2.0, 1.0), noise(0.0, 0.3);
  std::uniform_real_distribution<double> unit(0, 1);
  const int num_actions = 5;
  const double epsilon = 0.3;
  auto value = [](int action) { return 0.1 * action; };
  std::vector<OpeTurn> candidate, baseline;
  for (int c = 0; c < 600; ++c) {
    const double u = level(rng);
    for (int t = 0; t < 6; ++t) {
      const int proposed = 1;
      int logged = proposed;
      if (unit(rng) < epsilon) logged = static_cast<int>(unit(rng) * num_actions);
      const double p = epsilon / num_actions + (logged == proposed ? 1 - epsilon : 0);
      const double reward = u + value(logged) + noise(rng);
      // A direct method that knows the action values but not the level.
      const int cand = t == 0 ? 3 : 1;
      candidate.push_back(
          {c, reward, p, cand == logged, 2.0 + value(cand), 2.0 + value(logged), cand});
      baseline.push_back(
          {c, reward, p, proposed == logged, 2.0 + value(proposed), 2.0 + value(logged), proposed});
    }
  }
  const double truth = 0.2 / 6;
  auto d = EstimateDifference(candidate, baseline);
  ASSERT_TRUE(d.ok()) << d.status();
  const Estimates ec = Estimate(candidate), eb = Estimate(baseline);
  const std::pair<const Interval*, std::pair<const Interval*, const Interval*>> pairs[] = {
      {&d->ips, {&ec.ips, &eb.ips}},
      {&d->snips, {&ec.snips, &eb.snips}},
      {&d->dr, {&ec.dr, &eb.dr}}};
  for (const auto& [paired, single] : pairs) {
    EXPECT_GT(paired->standard_error, 0);
    EXPECT_LT(std::abs(paired->estimate - truth), 3 * paired->standard_error)
        << paired->estimate << " vs " << truth;
    // The unpaired interval treats the two estimates as independent.
    const double unpaired = std::hypot(single.first->standard_error, single.second->standard_error);
    EXPECT_LT(paired->standard_error, 0.85 * unpaired) << paired->estimate;
  }
  // The gate's estimator: the agreeing turns' shared noise cancels; here the
  // paired interval is less than half as wide.
  EXPECT_LT(d->dr.standard_error, 0.5 * std::hypot(ec.dr.standard_error, eb.dr.standard_error));
  EXPECT_EQ(d->disagreements, 600);
}

// A side whose own estimate has no evidence (an IPS that agrees with the log
// nowhere, a SNIPS that agrees in one conversation) gave the difference the
// other side's spread alone: a narrow interval claiming a difference the log
// cannot show.
TEST(Differences, AreUndefinedWhereEitherSidesOwnIntervalIs) {
  auto undefined = [](const Interval& i) {
    return std::isinf(i.standard_error) && i.low == -INFINITY && i.high == INFINITY;
  };
  //   cluster reward p match dm_c dm_l action
  std::vector<OpeTurn> baseline, never, once;
  for (int c = 0; c < 6; ++c) {
    const double reward = 0.5 + 0.3 * c;
    baseline.push_back({c, reward, 0.8, true, 0.4, 0.4, 0});
    never.push_back({c, reward, 0.8, false, 0.1 + 0.05 * c, 0.4, 1});
    once.push_back({c, reward, 0.8, c == 2, 0.1 + 0.05 * c, 0.4, c == 2 ? 0 : 1});
  }
  for (IntervalMethod method : {IntervalMethod::kNormal, IntervalMethod::kEffective}) {
    IntervalOptions o;
    o.method = method;
    auto d = EstimateDifference(never, baseline, o);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_DOUBLE_EQ(d->ips.estimate, -Estimate(baseline, o).ips.estimate);
    EXPECT_TRUE(undefined(d->ips)) << IntervalMethodName(method);
    EXPECT_FALSE(undefined(d->dr)) << IntervalMethodName(method);  // the model's terms spread
    auto s = EstimateDifference(once, baseline, o);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_TRUE(undefined(s->snips)) << IntervalMethodName(method);
    EXPECT_FALSE(undefined(s->ips)) << IntervalMethodName(method);
  }
}

TEST(Differences, RefusesTurnsOfDifferentLogs) {
  std::vector<OpeTurn> c = {{0, 2.0, 0.5, true, 1.0, 1.5, 1}, {1, 1.0, 0.5, true, 1.0, 1.5, 1}};
  std::vector<OpeTurn> b = c;
  b[1].propensity = 0.25;
  auto d = EstimateDifference(c, b);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("turn 1"), std::string::npos) << d.status();
  EXPECT_NE(d.status().message().find("'propensity'"), std::string::npos) << d.status();
  b.pop_back();
  auto shorter = EstimateDifference(c, b);
  ASSERT_FALSE(shorter.ok());
  EXPECT_NE(shorter.status().message().find("2 turns, the baseline on 1"), std::string::npos)
      << shorter.status();
}

// Three conversations of an on-policy log (every weight 1, the model 0), so
// that IPS and DR are the mean reward: rewards {1}, {2}, {3, 5}; 11 / 4.
TEST(Intervals, JackknifeByHand) {
  std::vector<OpeTurn> t = {{0, 1.0, 1.0, true, 0, 0},
                            {1, 2.0, 1.0, true, 0, 0},
                            {2, 3.0, 1.0, true, 0, 0},
                            {2, 5.0, 1.0, true, 0, 0}};
  IntervalOptions o;
  o.method = IntervalMethod::kJackknife;
  const Estimates e = Estimate(t, o);
  EXPECT_DOUBLE_EQ(e.dr.estimate, 11.0 / 4);
  // Leaving out each conversation: 10/3, 9/3, 3/2; their mean 47/18;
  // deviations 13/18, 7/18, -20/18; (C-1)/C Σ dev² = 2/3 · 618/324 = 103/81.
  const double se = std::sqrt(103.0) / 9;
  EXPECT_NEAR(e.dr.standard_error, se, 1e-12);
  EXPECT_NEAR(e.ips.standard_error, se, 1e-12);
  // t quantile with C - 1 = 2 degrees of freedom: 4.302653 (tables).
  EXPECT_NEAR(e.dr.high - e.dr.estimate, 4.302653 * se, 1e-5);
  EXPECT_NEAR(e.dr.estimate - e.dr.low, 4.302653 * se, 1e-5);
  // The plug-in standard error of the same log is smaller: influences
  // (1 - 2.75) / 4, (2 - 2.75) / 4, (8 - 5.5) / 4, scaled by 3 / 2.
  const double plug_in = std::sqrt((0.4375 * 0.4375 + 0.1875 * 0.1875 + 0.625 * 0.625) * 1.5);
  EXPECT_NEAR(Estimate(t, Normal()).dr.standard_error, plug_in, 1e-12);
  EXPECT_GT(se, plug_in);
}

// Six one-turn conversations of an on-policy log, rewards 1 to 6: residuals
// R_c = (r_c - 3.5) / 6, so (Σ R²)² / Σ R⁴ = 17.5² / 88.375 = 3.47 and the
// t quantile has floor(2.47) = 2 degrees of freedom.
TEST(Intervals, EffectiveDegreesOfFreedomByHand) {
  std::vector<OpeTurn> t;
  for (int c = 0; c < 6; ++c) t.push_back({c, 1.0 + c, 1.0, true, 0, 0});
  const Estimates e = Estimate(t);  // the default: kEffective
  EXPECT_DOUBLE_EQ(e.dr.estimate, 3.5);
  // Plug-in: sqrt(6/5 · Σ R²) = sqrt(6/5 · 17.5 / 36).
  const double se = std::sqrt(6.0 / 5 * 17.5 / 36);
  EXPECT_NEAR(e.dr.standard_error, se, 1e-12);
  EXPECT_NEAR(e.dr.high - e.dr.estimate, 4.302653 * se, 1e-5);  // t(0.975, 2)
  EXPECT_NEAR(e.dr.estimate - e.dr.low, 4.302653 * se, 1e-5);
  // One conversation that carries nearly all the variance: 1 degree of
  // freedom, t(0.975, 1) = 12.7062.
  t[5].reward = 60;
  const Estimates heavy = Estimate(t);
  EXPECT_NEAR(heavy.dr.high - heavy.dr.estimate, 12.706205 * heavy.dr.standard_error, 1e-5);
  // The normal interval of the same log: 1.96 plug-in standard errors.
  EXPECT_NEAR(Estimate(t, Normal()).dr.high - heavy.dr.estimate, 1.959964 * heavy.dr.standard_error,
              1e-5);
}

// A log whose weighted estimates rest on a few heavy turns: 9 actions,
// `epsilon` uniform exploration, conversations of 1 to 5 turns, a candidate
// that agrees with the log only where the log explored its action (weight
// 9 / epsilon) or, on one turn in ten, where the serving policy chose the
// same. The candidate's action is worth 1.5 where the serving policy's
// differs and 1.0 where they agree; the direct method says 1.0 everywhere.
std::vector<OpeTurn> HeavyWeightLog(uint64_t seed, int conversations, double epsilon) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0, 1);
  std::normal_distribution<double> noise(0, 0.3);
  const int num_actions = 9;
  std::vector<OpeTurn> turns;
  for (int c = 0; c < conversations; ++c) {
    const int length = 1 + static_cast<int>(unit(rng) * 5);
    for (int i = 0; i < length; ++i) {
      const bool same = unit(rng) < 0.1;
      const bool explored = unit(rng) < epsilon;
      const int logged = explored ? static_cast<int>(unit(rng) * num_actions) : 0;
      const int candidate = same ? 0 : 4;
      const double p = epsilon / num_actions + (logged == 0 ? 1 - epsilon : 0);
      const double reward = (logged == candidate ? (same ? 1.0 : 1.5) : 0.5) + noise(rng);
      turns.push_back({c, reward, p, logged == candidate, 1.0, 1.0, candidate});
    }
  }
  return turns;
}
constexpr double kHeavyWeightTruth = 0.9 * 1.5 + 0.1 * 1.0;

TEST(Intervals, JackknifeIsWiderThanThePlugInWithHeavyWeights) {
  const std::vector<OpeTurn> t = HeavyWeightLog(3, 300, 0.05);
  IntervalOptions jackknife;
  jackknife.method = IntervalMethod::kJackknife;
  const Estimates plug_in = Estimate(t, Normal()), jack = Estimate(t, jackknife);
  ASSERT_GT(plug_in.matches, 0);
  for (const auto& [p, j] : {std::pair{plug_in.ips, jack.ips}, std::pair{plug_in.snips, jack.snips},
                             std::pair{plug_in.dr, jack.dr}}) {
    EXPECT_GT(p.standard_error, 0);
    EXPECT_GE(j.standard_error, p.standard_error);
    EXPECT_GT(j.high - j.low, p.high - p.low);
  }
  // SNIPS's denominator is the weights' sum: leaving out a conversation with
  // a heavy turn moves it, which the plug-in's linearisation misses.
  EXPECT_GT(jack.snips.standard_error, 1.1 * plug_in.snips.standard_error);
}

// Over 200 seeded logs of the kind above (5% exploration, 400 conversations,
// about 6 heavy turns each), the default interval covers the truth at least
// 90% of the time and the normal one does not: a log that drew fewer heavy
// turns has both a lower estimate and a smaller plug-in standard error.
TEST(Intervals, DefaultCoversWhereTheNormalIntervalDoesNot) {
  IntervalOptions fallback;
  ASSERT_NE(fallback.method, IntervalMethod::kNormal);
  int normal_covers = 0, default_covers = 0, only_default = 0;
  const int logs = 200;
  for (int seed = 0; seed < logs; ++seed) {
    const std::vector<OpeTurn> t = HeavyWeightLog(100 + seed, 400, 0.05);
    const Interval n = Estimate(t, Normal()).dr;
    fallback.seed = seed;
    const Interval d = Estimate(t, fallback).dr;
    const bool nc = n.low <= kHeavyWeightTruth && kHeavyWeightTruth <= n.high;
    const bool dc = d.low <= kHeavyWeightTruth && kHeavyWeightTruth <= d.high;
    normal_covers += nc;
    default_covers += dc;
    only_default += dc && !nc;
  }
  EXPECT_GE(default_covers, 0.9 * logs) << "normal: " << normal_covers;
  EXPECT_LT(normal_covers, 0.9 * logs) << "default: " << default_covers;
  EXPECT_GT(only_default, 0);
}

TEST(Intervals, ParsesAndValidatesOptions) {
  for (IntervalMethod m : kAllMethods) {
    auto back = ParseIntervalMethod(IntervalMethodName(m));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, m);
  }
  auto bad = ParseIntervalMethod("wald");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("\"wald\""), std::string::npos) << bad.status();
  IntervalOptions o;
  o.level = 1.0;
  auto level = ValidateIntervalOptions(o);
  ASSERT_FALSE(level.ok());
  EXPECT_NE(level.message().find("level = 1"), std::string::npos) << level;
  o.level = 0.95;
  o.method = IntervalMethod::kStudentized;
  o.resamples = 10;
  auto resamples = ValidateIntervalOptions(o);
  ASSERT_FALSE(resamples.ok());
  EXPECT_NE(resamples.message().find("resamples = 10"), std::string::npos) << resamples;
  // The paired comparison refuses them; Estimate, which returns no status,
  // gives an unbounded interval rather than crash.
  std::vector<OpeTurn> t = {{0, 1.0, 0.5, true, 0, 0}, {1, 2.0, 0.5, true, 0, 0}};
  auto d = EstimateDifference(t, t, o);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("resamples = 10"), std::string::npos) << d.status();
  o.resamples = 0;
  EXPECT_TRUE(std::isinf(Estimate(t, o).dr.high));
  o.method = IntervalMethod::kJackknife;  // resamples do not matter there
  EXPECT_TRUE(ValidateIntervalOptions(o).ok());
}

TEST(Estimators, TurnsForHalfWidth) {
  // 9 actions, 10% exploration, E[r^2] = 1: variance 90 per turn.
  EXPECT_EQ(TurnsForHalfWidth(0.1, 0.1, 9, 1.0), std::ceil(1.96 * 1.96 * 90 / 0.01));
  EXPECT_TRUE(std::isinf(TurnsForHalfWidth(0.1, 0.0, 9, 1.0)));
}

JoinedLog SmallJoined() {
  JoinedLog log;
  log.dataset = testing::SmallDataset();
  for (const data::Episode& e : log.dataset.episodes) {
    log.propensity.emplace_back(e.turns.size(), 0.5);
    log.budget.push_back({});
  }
  log.budget[1].latency_s = 12.5;
  log.budget[1].money_usd = 0.02;
  return log;
}

TEST(JoinedLog, RoundTrips) {
  const JoinedLog log = SmallJoined();
  std::ostringstream out;
  ASSERT_TRUE(WriteJoinedLog(log, out).ok());
  auto back = ParseJoinedLog(out.str(), "<test>");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->propensity, log.propensity);
  EXPECT_EQ(back->budget[1].latency_s, 12.5);
  EXPECT_EQ(back->budget[1].money_usd, 0.02);
  EXPECT_FALSE(back->budget[0].money_usd.has_value());
  EXPECT_EQ(data::ToM4A1Json(back->dataset), data::ToM4A1Json(log.dataset));
  // A joined log is M4A1 data too.
  EXPECT_TRUE(data::ParseM4A1(out.str(), "<test>").ok());
}

// The serving policy's vocabulary travels with the episodes: a log in which
// a task never came up still reads with every task, in the policy's order.
TEST(JoinedLog, KeepsTheTaskVocabularyItWasWrittenWith) {
  JoinedLog log = SmallJoined();
  std::vector<std::string> vocabulary = log.dataset.tasks;
  vocabulary.push_back("Never Seen");
  std::reverse(vocabulary.begin(), vocabulary.end());
  log.dataset.tasks = vocabulary;
  for (data::Episode& e : log.dataset.episodes)
    for (data::Turn& t : e.turns)
      t.task_index = static_cast<int>(std::find(vocabulary.begin(), vocabulary.end(), t.task) -
                                      vocabulary.begin());
  std::ostringstream out;
  ASSERT_TRUE(WriteJoinedLog(log, out).ok());
  auto back = ParseJoinedLog(out.str(), "f.json");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->dataset.tasks, vocabulary);
  const std::string text = out.str();
  const std::string first = "\"Never Seen\"";
  std::string other = text;
  other.replace(other.rfind(first), first.size(), "\"Other\"");  // the last episode's list
  auto mixed = ParseJoinedLog(other, "f.json");
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(mixed.status().message().find("field 'tasks'"), std::string::npos) << mixed.status();
  EXPECT_NE(mixed.status().message().find("the same list in every episode"), std::string::npos)
      << mixed.status();
}

TEST(JoinedLog, RefusesBadPropensitiesAndBudgets) {
  std::ostringstream out;
  ASSERT_TRUE(WriteJoinedLog(SmallJoined(), out).ok());
  const std::string text = out.str();
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = text;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  for (const std::string bad : {"0", "1.5", "-0.1", "1e-300", "\"x\"", "null"}) {
    auto r = ParseJoinedLog(replace("\"propensity\":0.5", "\"propensity\":" + bad), "f.json");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("'propensity'"), std::string::npos) << r.status();
    EXPECT_NE(r.status().message().find("[1e-100, 1]"), std::string::npos) << r.status();
    EXPECT_NE(r.status().message().find("episode 0, turn 0"), std::string::npos) << r.status();
  }
  auto missing = ParseJoinedLog(replace(",\"propensity\":0.5", ""), "f.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("required"), std::string::npos);
  auto defaulted = ParseJoinedLog(replace(",\"propensity\":0.5", ""), "f.json", 1.0);
  ASSERT_TRUE(defaulted.ok()) << defaulted.status();
  EXPECT_EQ(defaulted->propensity[0][0], 1.0);
  auto budget =
      ParseJoinedLog(replace("\"money_budget_usd\":0.02", "\"money_budget_usd\":-1"), "f.json");
  ASSERT_FALSE(budget.ok());
  EXPECT_NE(budget.status().message().find("'money_budget_usd' = -1"), std::string::npos);
}

struct World {
  std::shared_ptr<const env::Simulator> truth;
  std::vector<int> episodes;
};

World MakeWorld() {
  const data::Dataset& d = EmbeddedDataset();
  World w;
  for (size_t i = 0; i < d.episodes.size(); ++i) w.episodes.push_back(static_cast<int>(i));
  auto sim = env::Simulator::Create(d, w.episodes, env::SimulatorConfig());
  EXPECT_TRUE(sim.ok()) << sim.status();
  w.truth = *sim;
  return w;
}

TEST(OffPolicy, OnPolicyWithoutExplorationIsExact) {
  const World w = MakeWorld();
  env::FixedPolicy base(2, "Fixed 2");
  ExplorationOptions x;
  x.epsilon = 0;
  auto log = SimulateExploringLog(*w.truth, EmbeddedDataset(), w.episodes, base, x);
  ASSERT_TRUE(log.ok()) << log.status();
  env::FixedPolicy candidate(2, "Fixed 2");
  auto r = EvaluateOffPolicy(*log, candidate, OpeOptions(), w.truth.get());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->overall.deterministic, r->overall.turns);
  EXPECT_NEAR(r->overall.ips.estimate, r->true_value, 1e-9);
  EXPECT_NEAR(r->overall.dr.estimate, r->true_value, 1e-9);
  EXPECT_NEAR(r->logged_value, r->true_value, 1e-9);
  EXPECT_NEAR(r->cloud_share, r->logged_cloud_share, 1e-12);
  // Another candidate is never seen: IPS says 0, SNIPS nothing.
  env::FixedPolicy local(0, "Local");
  auto other = EvaluateOffPolicy(*log, local, OpeOptions(), w.truth.get());
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->overall.matches, 0);
  EXPECT_EQ(other->overall.ips.estimate, 0.0);
  EXPECT_TRUE(std::isnan(other->overall.snips.estimate));
  EXPECT_EQ(other->cloud_share, 0.0);
  // Local spends only the device's electricity.
  EXPECT_LT(other->spend_per_conversation_usd, 1e-3 * r->spend_per_conversation_usd);
}

// A conversation is priced under the profile it was served for: a log whose
// episodes name Raspberry Pi-4B / 4G replays as a run at that profile does,
// whatever the run's own --device and --network; a profile the catalog
// lacks is named in the error.
TEST(OffPolicy, EachConversationIsPricedUnderTheProfileItWasServedFor) {
  const World w = MakeWorld();
  env::FixedPolicy base(0, "Local");
  ExplorationOptions x;
  x.epsilon = 0.5;
  auto log = SimulateExploringLog(*w.truth, EmbeddedDataset(), w.episodes, base, x);
  ASSERT_TRUE(log.ok()) << log.status();
  OpeOptions there;
  there.config.device = "Raspberry Pi-4B";
  there.config.network = "4G";
  JoinedLog named = *log;
  named.profile.assign(named.dataset.episodes.size(), {"Raspberry Pi-4B", "4G"});
  std::ostringstream out;  // and the profile survives the file
  ASSERT_TRUE(WriteJoinedLog(named, out).ok());
  auto read = ParseJoinedLog(out.str(), "f.json");
  ASSERT_TRUE(read.ok()) << read.status();
  for (int action : {0, 4}) {
    env::FixedPolicy candidate(action, "Fixed");
    auto at_profile = EvaluateOffPolicy(*log, candidate, there);
    auto served = EvaluateOffPolicy(*read, candidate, OpeOptions());
    auto default_profile = EvaluateOffPolicy(*log, candidate, OpeOptions());
    ASSERT_TRUE(at_profile.ok() && served.ok() && default_profile.ok()) << served.status();
    EXPECT_DOUBLE_EQ(served->logged_value, at_profile->logged_value);
    EXPECT_DOUBLE_EQ(served->overall.dr.estimate, at_profile->overall.dr.estimate);
    EXPECT_DOUBLE_EQ(served->overall.ips.estimate, at_profile->overall.ips.estimate);
    EXPECT_NE(served->logged_value, default_profile->logged_value);
  }
  named.profile[0] = {"Toaster", "4G"};
  env::FixedPolicy local(0, "Local");
  auto unknown = EvaluateOffPolicy(named, local, OpeOptions());
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("was served for Toaster / 4G"), std::string::npos)
      << unknown.status();
}

TEST(OffPolicy, ExploringLogCoversTheTrueValue) {
  const World w = MakeWorld();
  env::FixedPolicy base(0, "Local");
  ExplorationOptions x;
  x.epsilon = 0.5;
  x.copies = 4;
  auto log = SimulateExploringLog(*w.truth, EmbeddedDataset(), w.episodes, base, x);
  ASSERT_TRUE(log.ok()) << log.status();
  for (int action : {1, 4}) {
    env::FixedPolicy candidate(action, "fixed");
    auto r = EvaluateOffPolicy(*log, candidate, OpeOptions(), w.truth.get());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_GT(r->overall.matches, 0);
    // Generous: four standard errors, so that the test is not a coin toss.
    for (const Interval* i : {&r->overall.ips, &r->overall.snips, &r->overall.dr}) {
      EXPECT_GT(i->standard_error, 0);
      EXPECT_LT(std::abs(i->estimate - r->true_value), 4 * i->standard_error)
          << "action " << action << " estimate " << i->estimate << " truth " << r->true_value;
    }
    EXPECT_EQ(r->per_task.size(), EmbeddedDataset().tasks.size());
  }
}

// One action on one task, another elsewhere.
class TaskSwitchPolicy : public env::Policy {
 public:
  TaskSwitchPolicy(int task, int on_task, int elsewhere)
      : task_(task), on_task_(on_task), elsewhere_(elsewhere) {}
  std::string name() const override { return "task switch"; }
  int Act(const env::DecisionContext& context, std::vector<double>*) override {
    return context.task_index == task_ ? on_task_ : elsewhere_;
  }

 private:
  int task_, on_task_, elsewhere_;
};

TEST(OffPolicy, PairedComparisonWithTheServingPolicy) {
  const World w = MakeWorld();
  env::FixedPolicy serving(2, "Fixed 2");
  ExplorationOptions x;
  x.epsilon = 0.3;
  x.copies = 4;
  auto log = SimulateExploringLog(*w.truth, EmbeddedDataset(), w.episodes, serving, x);
  ASSERT_TRUE(log.ok()) << log.status();
  // The candidate differs from the serving policy on task 0 only.
  TaskSwitchPolicy candidate(0, 4, 2);
  auto c = EvaluateOffPolicy(*log, candidate, OpeOptions(), w.truth.get());
  auto b = EvaluateOffPolicy(*log, serving, OpeOptions(), w.truth.get());
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(b.ok()) << b.status();
  auto p = ComparePaired(*log, *c, *b);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(p->true_difference, c->true_value - b->true_value, 1e-9);
  EXPECT_NE(p->true_difference, 0.0);
  for (const Interval* i : {&p->overall.ips, &p->overall.snips, &p->overall.dr}) {
    EXPECT_GT(i->standard_error, 0);
    EXPECT_LT(std::abs(i->estimate - p->true_difference), 4 * i->standard_error)
        << i->estimate << " vs " << p->true_difference;
  }
  EXPECT_LT(p->overall.dr.standard_error,
            std::hypot(c->overall.dr.standard_error, b->overall.dr.standard_error));
  EXPECT_GT(p->overall.disagreements, 0);
  ASSERT_EQ(p->per_task.size(), EmbeddedDataset().tasks.size());
  for (const TaskDifferences& t : p->per_task) {
    if (t.task == EmbeddedDataset().tasks[0]) {
      EXPECT_LT(std::abs(t.differences.dr.estimate - t.true_difference),
                4 * t.differences.dr.standard_error);
      EXPECT_EQ(t.differences.disagreements, t.differences.turns);
    } else {  // the same choices: exactly no difference
      EXPECT_EQ(t.differences.dr.estimate, 0.0) << t.task;
      EXPECT_EQ(t.differences.dr.high, 0.0) << t.task;
      EXPECT_EQ(t.true_difference, 0.0) << t.task;
    }
  }
  // Reports of another log do not pair.
  x.seed = 2;
  auto other = SimulateExploringLog(*w.truth, EmbeddedDataset(), w.episodes, serving, x);
  ASSERT_TRUE(other.ok());
  auto b2 = EvaluateOffPolicy(*other, serving, OpeOptions(), w.truth.get());
  ASSERT_TRUE(b2.ok());
  auto mismatch = ComparePaired(*log, *c, *b2);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("same log"), std::string::npos) << mismatch.status();
}

// Under fleet control the server's remaining money budget is the scaled
// remainder, s * (m - spent), which the conversation's budget minus the
// spend (s * m - spent) cannot give. The replay used the latter, so the
// logged policy itself, replayed, was refused the cloud calls it made.
// With the remaining budgets lcio-join logs per turn, it matches the log.
TEST(OffPolicy, TheReplayUsesTheRemainingBudgetsTheServerSaw) {
  const World w = MakeWorld();
  env::FixedPolicy cloud(1, "Fixed 1");
  ExplorationOptions x;
  x.epsilon = 0;
  auto log = SimulateExploringLog(*w.truth, EmbeddedDataset(), w.episodes, cloud, x);
  ASSERT_TRUE(log.ok()) << log.status();
  // One cloud call's money, and a little more, left before every turn.
  const double call = w.truth->costs().money_usd(1);
  for (size_t e = 0; e < log->budget.size(); ++e) {
    const size_t turns = log->dataset.episodes[e].turns.size();
    log->budget[e].money_usd = 1.05 * call;
    log->budget[e].remaining_money_usd.assign(turns, 1.05 * call);
  }
  auto replayed = EvaluateOffPolicy(*log, cloud, OpeOptions(), w.truth.get());
  ASSERT_TRUE(replayed.ok()) << replayed.status();
  EXPECT_EQ(replayed->overall.matches, replayed->overall.turns);
  EXPECT_EQ(replayed->cloud_share, replayed->logged_cloud_share);
  // Without them, the budget minus the logged spend leaves no second call.
  for (ConversationBudget& b : log->budget) b.remaining_money_usd.clear();
  auto computed = EvaluateOffPolicy(*log, cloud, OpeOptions(), w.truth.get());
  ASSERT_TRUE(computed.ok()) << computed.status();
  EXPECT_LT(computed->overall.matches, computed->overall.turns / 2);
  EXPECT_LT(computed->cloud_share, 0.6);
  // And they survive the file.
  log->budget[0].remaining_money_usd.assign(log->dataset.episodes[0].turns.size(), 0.25);
  std::ostringstream out;
  ASSERT_TRUE(WriteJoinedLog(*log, out).ok());
  auto back = ParseJoinedLog(out.str(), "<test>");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->budget[0].remaining_money_usd, log->budget[0].remaining_money_usd);
  EXPECT_FALSE(back->budget[1].remaining_money_usd.front().has_value());
}

// Under fleet control, when nothing fits the lowered money budget the
// server takes the action cheapest in money that fits the request's own
// budget (env::ShieldWithinRequestBudget). On a Raspberry Pi-4B over WiFi the
// shield's own cheapest action (by normalised time + money) is a cloud call,
// past the request's budget; the replay took it, as if the server had.
TEST(OffPolicy, TheReplayFallsBackToTheRequestsOwnBudgetAsTheServerDoes) {
  const World w = MakeWorld();
  env::FixedPolicy cloud(1, "Fixed 1");
  ExplorationOptions x;
  x.epsilon = 0;
  auto log = SimulateExploringLog(*w.truth, EmbeddedDataset(), w.episodes, cloud, x);
  ASSERT_TRUE(log.ok()) << log.status();
  const double lowered = 1e-7, request = 1e-4;  // local costs about 4e-7 USD there
  log->profile.assign(log->dataset.episodes.size(), ServedProfile{"Raspberry Pi-4B", "WiFi"});
  for (size_t e = 0; e < log->budget.size(); ++e) {
    const size_t turns = log->dataset.episodes[e].turns.size();
    log->budget[e].remaining_money_usd.assign(turns, lowered);
    log->budget[e].remaining_request_money_usd.assign(turns, request);
  }
  auto within = EvaluateOffPolicy(*log, cloud, OpeOptions());
  ASSERT_TRUE(within.ok()) << within.status();
  EXPECT_EQ(within->cloud_share, 0);  // local, the one action the request's budget pays for
  // The request's budget survives the file, and is never below the lowered one.
  std::ostringstream out;
  ASSERT_TRUE(WriteJoinedLog(*log, out).ok());
  auto back = ParseJoinedLog(out.str(), "<test>");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->budget[0].remaining_request_money_usd,
            log->budget[0].remaining_request_money_usd);
  std::string bad = out.str();
  const std::string field = "\"remaining_request_money_usd\":0.0001";
  ASSERT_NE(bad.find(field), std::string::npos) << bad.substr(0, 400);
  bad.replace(bad.find(field), field.size(), "\"remaining_request_money_usd\":5e-08");
  auto refused = ParseJoinedLog(bad, "<test>");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("'remaining_request_money_usd' = 5e-08: must be >= "
                                            "remaining_money_usd"),
            std::string::npos)
      << refused.status();
  // Without it, the shield's cheapest action under the lowered budget.
  for (ConversationBudget& b : log->budget) b.remaining_request_money_usd.clear();
  auto past = EvaluateOffPolicy(*log, cloud, OpeOptions());
  ASSERT_TRUE(past.ok()) << past.status();
  EXPECT_EQ(past->cloud_share, 1);
}

TEST(OffPolicy, RefusesTooSmallLogs) {
  JoinedLog log = SmallJoined();
  log.dataset.episodes.resize(1);
  log.propensity.resize(1);
  log.budget.resize(1);
  env::FixedPolicy candidate(0, "Local");
  OpeOptions o;
  o.config = testing::TwoViewConfig();
  auto r = EvaluateOffPolicy(log, candidate, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("at least 2"), std::string::npos);
}

TEST(Calibrate, MeetsACloudShareTargetOnHeldOutConversations) {
  const World w = MakeWorld();
  // Always the costliest action; the shield sends turns that do not fit to
  // cheaper ones, so the cloud share grows with the money budget.
  env::FixedPolicy policy(w.truth->actions().size() - 1, "all views");
  CalibrationOptions o;
  o.target = 0.5;
  o.grid = 48;
  auto r = Calibrate(*w.truth, EmbeddedDataset(), policy, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->fit_conversations + r->holdout_conversations,
            static_cast<int>(EmbeddedDataset().episodes.size()));
  // A fixed action's share moves in steps of whole conversations (50 here).
  EXPECT_NEAR(r->fit_achieved, 0.5, 1e-9);  // mixing the budgets beside a step
  EXPECT_GE(r->low_share, 0);
  EXPECT_LT(r->low_share, 1);
  EXPECT_LT(std::abs(r->holdout_error), 0.15);
  // Served independently of the calibration's own tally: the evaluator runs
  // every conversation at each of the two budgets (shield on), and the mix
  // of their cloud shares (low_share at the low budget) lands on the target;
  // over all conversations, half of them fitted exactly, so within half the
  // held-out tolerance.
  auto cloud_share = [&](double money) {
    env::FixedPolicy served(w.truth->actions().size() - 1, "all views");
    const env::PolicyResult result = env::EvaluatePolicy(
        *w.truth, EmbeddedDataset(), w.episodes, served, {{o.latency_budget_s, money}, true, 1});
    int64_t cloud = 0, decisions = 0;
    for (const env::EpisodeResult& e : result.episodes)
      for (int a : e.actions) {
        cloud += a != 0;
        ++decisions;
      }
    return static_cast<double>(cloud) / static_cast<double>(decisions);
  };
  const double served = (1 - r->low_share) * cloud_share(r->money_budget_usd) +
                        r->low_share * cloud_share(r->low_money_budget_usd);
  EXPECT_NEAR(served, 0.5, 0.075) << "high " << r->money_budget_usd << " USD, low "
                                  << r->low_money_budget_usd << " USD at " << r->low_share;
  EXPECT_NEAR(
      served,
      (r->fit_achieved * r->fit_conversations + r->holdout_achieved * r->holdout_conversations) /
          (r->fit_conversations + r->holdout_conversations),
      0.05);
}

TEST(Calibrate, AnErrorRelativeToATargetOfZeroIsUndefined) {
  const World w = MakeWorld();
  env::FixedPolicy policy(0, "Local");  // a cloud share of 0 at every budget
  CalibrationOptions o;
  o.target = 0;
  auto r = Calibrate(*w.truth, EmbeddedDataset(), policy, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->holdout_achieved, 0);
  EXPECT_EQ(r->holdout_error, 0);
  EXPECT_TRUE(std::isnan(r->holdout_relative_error)) << r->holdout_relative_error;
  o.target = 0.5;  // defined for any other target
  o.grid = 48;
  env::FixedPolicy cloud(w.truth->actions().size() - 1, "all views");
  auto half = Calibrate(*w.truth, EmbeddedDataset(), cloud, o);
  ASSERT_TRUE(half.ok()) << half.status();
  EXPECT_NEAR(half->holdout_relative_error, half->holdout_error / 0.5, 1e-12);
}

// The geometric grid overflowed for [1e-308, 1e308] and recommended a budget
// of inf USD.
TEST(Calibrate, TheWidestRangeGivesFiniteBudgets) {
  const World w = MakeWorld();
  env::FixedPolicy policy(w.truth->actions().size() - 1, "all views");
  CalibrationOptions o;
  o.target = 0.5;
  o.grid = 64;
  o.min_money_usd = 1e-308;
  o.max_money_usd = 1e308;
  auto r = Calibrate(*w.truth, EmbeddedDataset(), policy, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(std::isfinite(r->money_budget_usd)) << r->money_budget_usd;
  EXPECT_TRUE(std::isfinite(r->low_money_budget_usd)) << r->low_money_budget_usd;
  for (const CalibrationPoint& p : r->curve) EXPECT_TRUE(std::isfinite(p.money_budget_usd));
  EXPECT_EQ(r->curve.back().money_budget_usd, 1e308);
}

TEST(Calibrate, RefusesImpossibleSettings) {
  const World w = MakeWorld();
  env::FixedPolicy policy(0, "Local");
  CalibrationOptions o;
  o.target = 1.5;
  auto r = Calibrate(*w.truth, EmbeddedDataset(), policy, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("target cloud share = 1.5"), std::string::npos);
  o.metric = CalibrationMetric::kSpendPerConversation;
  o.target = 0;
  EXPECT_FALSE(Calibrate(*w.truth, EmbeddedDataset(), policy, o).ok());
  o.target = 10;  // USD per conversation: more than any action costs on M4A1
  auto unreachable = Calibrate(*w.truth, EmbeddedDataset(), policy, o);
  ASSERT_FALSE(unreachable.ok());
  EXPECT_NE(unreachable.status().message().find("not reachable"), std::string::npos);
  o.target = 0.01;
  o.holdout_share = 1;
  EXPECT_FALSE(Calibrate(*w.truth, EmbeddedDataset(), policy, o).ok());
}

}  // namespace
}  // namespace lcio::ope
