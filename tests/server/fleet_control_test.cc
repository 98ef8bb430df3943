// The fleet target's parser, the PI controller (bounded, anti-windup,
// converging on a monotone plant) and the FleetController's measurement and
// control on simulated traffic (docs/ope.md, Calibration).
#include "lcio/server/fleet_control.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "lcio/env/action_table.h"
#include "lcio/env/shield.h"

namespace lcio::server {
namespace {

TEST(FleetTargetTest, ParsesTheTwoKindsAndRefusesTheRest) {
  auto none = FleetTarget::Parse("none");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->enabled());
  auto share = FleetTarget::Parse("cloud_share:0.3");
  ASSERT_TRUE(share.ok()) << share.status();
  EXPECT_EQ(share->kind, FleetTarget::Kind::kCloudShare);
  EXPECT_DOUBLE_EQ(share->value, 0.3);
  auto spend = FleetTarget::Parse("spend_usd:0.01");
  ASSERT_TRUE(spend.ok()) << spend.status();
  EXPECT_EQ(spend->kind, FleetTarget::Kind::kSpendUsd);
  EXPECT_STREQ(spend->KindName(), "spend_usd");
  for (const char* bad : {"cloud_share:0", "cloud_share:1", "cloud_share:1.5", "cloud_share:nan",
                          "cloud_share", "spend_usd:0", "spend_usd:-1", "spend_usd:inf",
                          "spend_usd:2e6", "spend:0.01", "cloud_share:0.3x"}) {
    auto parsed = FleetTarget::Parse(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_TRUE(absl::StrContains(parsed.status().message(), "fleet_target")) << parsed.status();
    EXPECT_TRUE(absl::StrContains(parsed.status().message(), bad)) << parsed.status();
  }
  // A long value is quoted bounded.
  auto long_value = FleetTarget::Parse(std::string(10000, 'x'));
  ASSERT_FALSE(long_value.ok());
  EXPECT_LT(long_value.status().message().size(), 200u);
}

TEST(FleetControlOptionsTest, ValidatesTheNumbers) {
  FleetControlOptions options;
  EXPECT_TRUE(options.Validate().ok());
  EXPECT_TRUE(*FleetControlOptions::ParseControl("pi"));
  EXPECT_FALSE(*FleetControlOptions::ParseControl("off"));
  EXPECT_FALSE(FleetControlOptions::ParseControl("pid").ok());
  auto bad = [](auto edit) {
    FleetControlOptions o;
    edit(o);
    return o.Validate();
  };
  EXPECT_FALSE(bad([](FleetControlOptions& o) { o.kp = -1; }).ok());
  EXPECT_FALSE(bad([](FleetControlOptions& o) { o.ki = std::nan(""); }).ok());
  EXPECT_FALSE(bad([](FleetControlOptions& o) { o.min_scale = 0; }).ok());
  EXPECT_FALSE(bad([](FleetControlOptions& o) { o.min_scale = 1.5; }).ok());
  EXPECT_FALSE(bad([](FleetControlOptions& o) { o.initial_scale = 1.5; }).ok());
  EXPECT_FALSE(bad([](FleetControlOptions& o) { o.initial_scale = std::nan(""); }).ok());
  const absl::Status below = bad([](FleetControlOptions& o) {
    o.min_scale = 0.01;
    o.initial_scale = 0.005;
  });
  EXPECT_TRUE(absl::StrContains(below.message(), "fleet_control_initial_scale = 0.005")) << below;
  EXPECT_TRUE(bad([](FleetControlOptions& o) {
                o.pi = true;
                o.initial_scale = o.min_scale;
              }).ok());
  const absl::Status unused = bad([](FleetControlOptions& o) { o.initial_scale = 0.5; });
  EXPECT_TRUE(absl::StrContains(unused.message(), "needs --fleet_control=pi")) << unused;
  EXPECT_FALSE(bad([](FleetControlOptions& o) { o.update_every = 0; }).ok());
  const absl::Status window = bad([](FleetControlOptions& o) { o.window = o.update_every - 1; });
  EXPECT_TRUE(absl::StrContains(window.message(), "fleet_window = 199")) << window;
}

// The cloud share a budget-conditioned policy answers with at money-budget
// scale s = exp(u): monotone in u, from 15% (nothing but the cheapest cloud
// action fits) to 80%, steepest near s = 0.2 (like the default policy on
// the M4A1 traffic, docs/ope.md).
double PlantShare(double u) { return 0.15 + 0.65 / (1 + std::exp(-3 * (u + 1.6))); }

TEST(PiControllerTest, ConvergesOnAMonotonePlant) {
  const FleetControlOptions defaults;
  for (const double target : {0.2, 0.3, 0.5, 0.75}) {
    PiController pi(defaults.kp, defaults.ki, std::log(defaults.min_scale), 0);
    double share = PlantShare(pi.output());
    for (int step = 0; step < 300; ++step) {
      share = PlantShare(pi.output());
      pi.Step(std::clamp((target - share) / target, -1.0, 1.0));
    }
    EXPECT_NEAR(PlantShare(pi.output()), target, 0.002) << "target " << target;
  }
}

TEST(PiControllerTest, OutputStaysWithinItsBoundsWhateverTheError) {
  PiController pi(2.0, 5.0, std::log(0.01), 0);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> error(-50, 50);
  for (int step = 0; step < 10000; ++step) {
    double e = error(rng);
    if (step % 97 == 0) e = std::numeric_limits<double>::quiet_NaN();
    if (step % 101 == 0) e = std::numeric_limits<double>::infinity();
    const double u = pi.Step(e);
    ASSERT_TRUE(u >= std::log(0.01) && u <= 0) << "step " << step << " u " << u;
    ASSERT_TRUE(pi.integral() >= std::log(0.01) && pi.integral() <= 0);
  }
}

TEST(PiControllerTest, AntiWindupLeavesTheBoundAtOnceWhenTheErrorTurns) {
  // An unreachable target holds the output at its upper bound for a long
  // time; the integral must not keep growing, so that the first error of
  // the other sign moves the output off the bound.
  PiController pi(0.05, 0.25, std::log(0.01), 0);
  for (int step = 0; step < 1000; ++step) pi.Step(1.0);
  EXPECT_EQ(pi.output(), 0);
  EXPECT_GE(pi.integral(), -0.05 - 1e-12);
  // Off the bound by at least the integral step and the proportional term.
  EXPECT_LE(pi.Step(-0.2), -0.25 * 0.2 - 0.05 * 0.2 + 1e-12);
  // The same at the lower bound.
  for (int step = 0; step < 1000; ++step) pi.Step(-1.0);
  EXPECT_DOUBLE_EQ(pi.output(), std::log(0.01));
  EXPECT_GE(pi.Step(0.2), std::log(0.01) + 0.25 * 0.2 + 0.05 * 0.2 - 1e-12);
}

// Simulated traffic: conversations of 4 turns; each decision answers in the
// cloud with the plant's probability at the controller's current scale and
// then costs 0.004 USD.
struct Traffic {
  std::mt19937_64 rng{11};
  std::uniform_real_distribution<double> u01{0, 1};
  int64_t decisions = 0, cloud = 0, starts = 0;
  double money = 0;
  void Run(FleetController& fleet, int n) {
    for (int i = 0; i < n; ++i) {
      const bool start = decisions % 4 == 0;
      const bool c = u01(rng) < PlantShare(std::log(fleet.Scale()));
      const double cost = c ? 0.004 : 0;
      fleet.Observe(c, cost, start);
      ++decisions;
      cloud += c;
      starts += start;
      money += cost;
    }
  }
};

TEST(FleetControllerTest, MonitorOnlyMeasuresAndNeverLowersTheBudget) {
  FleetControlOptions options;
  options.target = *FleetTarget::Parse("cloud_share:0.3");
  FleetController fleet(options, nullptr);
  EXPECT_FALSE(fleet.state().measured);
  Traffic traffic;
  traffic.Run(fleet, 20000);
  const FleetController::State state = fleet.state();
  EXPECT_EQ(fleet.Scale(), 1);
  EXPECT_EQ(fleet.EffectiveMoney(0.05), 0.05);
  EXPECT_TRUE(state.measured);
  EXPECT_EQ(state.updates, 20000 / options.update_every);
  EXPECT_NEAR(state.achieved, PlantShare(0), 0.02);
}

TEST(FleetControllerTest, PiHoldsTheCloudShareFromFarAway) {
  FleetControlOptions options;
  options.target = *FleetTarget::Parse("cloud_share:0.3");
  options.pi = true;
  FleetController fleet(options, nullptr);
  Traffic traffic;
  traffic.Run(fleet, 20000);  // settle (the plant starts at 80%)
  Traffic measured;
  measured.rng.seed(12);
  measured.Run(fleet, 40000);
  const double share = static_cast<double>(measured.cloud) / measured.decisions;
  EXPECT_NEAR(share, 0.3, 0.02);
  EXPECT_NEAR(fleet.state().achieved, 0.3, 0.02);
  EXPECT_LT(fleet.Scale(), 1);
  EXPECT_GE(fleet.Scale(), options.min_scale);
  EXPECT_LT(fleet.EffectiveMoney(0.05), 0.05);
}

// A warm start: s begins at the given scale exactly (and the integral at
// its logarithm), and the controller stays near it where it is already
// right; a cold start from s = 1 is still far off after as many decisions.
// Monitoring alone never lowers s.
TEST(FleetControllerTest, AWarmStartBeginsAtTheInitialScale) {
  FleetControlOptions options;
  options.target = *FleetTarget::Parse("cloud_share:0.3");
  options.initial_scale = 0.135;  // about where the plant gives 30%
  FleetController monitor(options, nullptr);
  EXPECT_EQ(monitor.Scale(), 1);
  EXPECT_EQ(monitor.state().scale, 1);
  EXPECT_EQ(monitor.state().integral, 0);
  options.pi = true;
  FleetController warm(options, nullptr);
  EXPECT_EQ(warm.Scale(), 0.135);
  EXPECT_EQ(warm.state().scale, 0.135);
  EXPECT_DOUBLE_EQ(warm.state().integral, std::log(0.135));
  options.initial_scale = 1;
  FleetController cold(options, nullptr);
  Traffic warm_traffic, cold_traffic;
  warm_traffic.Run(warm, 600);  // three updates
  cold_traffic.Run(cold, 600);
  EXPECT_LT(std::abs(std::log(warm.Scale() / 0.135)), 0.3) << warm.Scale();
  EXPECT_GT(std::abs(std::log(cold.Scale() / 0.135)), 0.6) << cold.Scale();
  Traffic measured;  // no settling: it starts settled
  measured.Run(warm, 20000);
  EXPECT_NEAR(static_cast<double>(measured.cloud) / measured.decisions, 0.3, 0.02);
  // At the floor, s is the floor itself (exp(log(s)) can round below it).
  options.min_scale = options.initial_scale = 0.003;
  FleetController floor(options, nullptr);
  EXPECT_EQ(floor.Scale(), 0.003);
}

TEST(FleetControllerTest, PiHoldsTheSpendPerConversation) {
  // 0.006 USD per 4-turn conversation: a cloud share of 37.5%.
  FleetControlOptions options;
  options.target = *FleetTarget::Parse("spend_usd:0.006");
  options.pi = true;
  FleetController fleet(options, nullptr);
  Traffic traffic;
  traffic.Run(fleet, 20000);
  Traffic measured;
  measured.rng.seed(13);
  measured.Run(fleet, 40000);
  const double spend = measured.money / measured.starts;
  EXPECT_NEAR(spend / 0.006, 1, 0.05);
}

TEST(FleetControllerTest, ASpendBlockWaitsForAFirstTurn) {
  FleetControlOptions options;
  options.target = *FleetTarget::Parse("spend_usd:0.01");
  FleetController fleet(options, nullptr);
  // Turns of conversations begun before: money but no first turn.
  for (int i = 0; i < 3 * options.update_every; ++i) fleet.Observe(true, 0.002, false);
  EXPECT_FALSE(fleet.state().measured);
  // The block is extended by whole blocks until one holds a first turn.
  fleet.Observe(false, 0, true);
  for (int i = 1; i < options.update_every; ++i) fleet.Observe(false, 0, false);
  const FleetController::State state = fleet.state();
  EXPECT_TRUE(state.measured);
  EXPECT_EQ(state.updates, 1);
  EXPECT_NEAR(state.achieved_block, 3 * options.update_every * 0.002, 1e-9);
}

TEST(FleetControllerTest, AnUnreachableTargetPinsTheScaleAtItsBound) {
  FleetControlOptions options;
  options.target = *FleetTarget::Parse("cloud_share:0.05");  // below the plant's 15%
  options.pi = true;
  options.min_scale = 0.05;
  FleetController fleet(options, nullptr);
  Traffic traffic;
  traffic.Run(fleet, 20000);
  EXPECT_DOUBLE_EQ(fleet.Scale(), 0.05);
  EXPECT_NEAR(fleet.EffectiveMoney(0.02), 0.001, 1e-12);
}

TEST(FleetControllerTest, ConcurrentObserversCountEveryDecision) {
  FleetControlOptions options;
  options.target = *FleetTarget::Parse("cloud_share:0.5");
  options.update_every = 10;
  options.window = 10;  // the achieved figure is the last block's
  FleetController fleet(options, nullptr);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&fleet, t] {
      for (int i = 0; i < 25000; ++i) fleet.Observe(t % 2 == 0, 0, i % 5 == 0);
    });
  for (std::thread& t : threads) t.join();
  const FleetController::State state = fleet.state();
  // No observation is lost, though updaters skip while another holds the lock.
  EXPECT_EQ(state.decisions, 100000);
  EXPECT_EQ(state.cloud_decisions, 50000);
  EXPECT_EQ(state.conversation_starts, 20000);
  EXPECT_GT(state.updates, 0);
  EXPECT_LE(state.updates, 100000 / 10);
  // Threads 0 and 2 observe only cloud decisions, 1 and 3 only local ones:
  // a block's share is anywhere in [0, 1], but the totals are exact.
  EXPECT_GE(state.achieved, 0);
  EXPECT_LE(state.achieved, 1);
}

}  // namespace
}  // namespace lcio::server
