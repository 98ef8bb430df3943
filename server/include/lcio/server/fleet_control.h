// Fleet targets held online (--fleet_target, --fleet_control; docs/ope.md
// "Calibration"). An operator sets a target for the fleet: the share of
// turns answered in the cloud, or the mean expected spend per conversation.
// The server measures the achieved figure over blocks of answered decisions
// and, with --fleet_control=pi, a PI controller sets a money-budget scale
// s in [min_scale, 1]: every Decide's policy and shield see s x the
// request's remaining money budget (never more than the request's, so the
// per-conversation shield still holds). Without the controller s stays 1
// and the target is only monitored.
//
// Hot path: Scale() is one atomic load, Observe() four relaxed atomic adds;
// once every `update_every` decisions one caller (TryLock, never waited
// for) updates the controller.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace lcio::server {

class Metrics;

struct FleetTarget {
  enum class Kind { kNone, kCloudShare, kSpendUsd };
  Kind kind = Kind::kNone;
  // Cloud share in (0, 1); spend in USD per conversation, > 0.
  double value = 0;

  // "" or "none", "cloud_share:S" (S in (0, 1)), "spend_usd:X" (X > 0,
  // finite, at most 1e6). Errors name the flag, the value and the rule.
  static absl::StatusOr<FleetTarget> Parse(absl::string_view flag);
  bool enabled() const { return kind != Kind::kNone; }
  const char* KindName() const;  // "none", "cloud_share", "spend_usd"
};

// A discrete PI controller with a bounded output and anti-windup (clamping:
// the integral moves at most as far as puts kp * error + integral on the
// output's bound, and stays within the bounds itself). Single-threaded.
class PiController {
 public:
  PiController(double kp, double ki, double min_output, double max_output, double initial = 0);
  // One step with `error` (> 0 raises the output): output =
  // clamp(kp * error + integral, min_output, max_output).
  double Step(double error);
  double output() const { return output_; }
  double integral() const { return integral_; }

 private:
  double kp_, ki_, min_, max_;
  double integral_, output_;
};

struct FleetControlOptions {
  FleetTarget target;
  bool pi = false;  // --fleet_control=pi; otherwise only monitored
  // Gains on the relative error (see FleetController), in units of ln(s).
  double kp = 0.05, ki = 0.25;
  double min_scale = 0.001;  // lower bound of s
  // s before the first update (with `pi`): a restarted pod can start where
  // the last one settled (its lcio_fleet_budget_scale_ratio) instead of at 1,
  // which matters where the policy's figure is flat in s (docs/ope.md).
  double initial_scale = 1;
  int64_t update_every = 200;  // answered decisions per controller update
  int64_t window = 5000;       // decisions in the exported achieved figure's EW average

  // "off" | "pi".
  static absl::StatusOr<bool> ParseControl(absl::string_view flag);
  // Checks the numbers (finite, kp >= 0, ki >= 0, min_scale in (0, 1],
  // initial_scale in [min_scale, 1] and 1 unless pi,
  // update_every in [1, 1e9], window >= update_every and <= 1e12).
  absl::Status Validate() const;
};

class FleetController {
 public:
  // `metrics` may be null. The target must be enabled.
  FleetController(const FleetControlOptions& options, Metrics* metrics);

  // The money-budget scale s the Decide path applies; 1 when not
  // controlling.
  double Scale() const { return scale_.load(std::memory_order_relaxed); }
  // The money budget the policy and the shield see: s x `request_money_usd`
  // (never more than it).
  double EffectiveMoney(double request_money_usd) const;

  // One answered decision: whether it answers in the cloud, its expected
  // money cost, and whether it is a conversation's first turn (turn 0).
  void Observe(bool cloud, double expected_money_usd, bool conversation_start);

  struct State {
    double target = 0;
    double achieved_block = 0;  // the last block's figure (the controller's input)
    double achieved = 0;        // the exponentially weighted figure (exported)
    bool measured = false;      // at least one block has been measured
    double scale = 1;
    double integral = 0;
    int64_t updates = 0;
    // Everything observed so far (the blocks are differences of these).
    int64_t decisions = 0, cloud_decisions = 0, conversation_starts = 0;
  };
  State state() const;
  const FleetControlOptions& options() const { return options_; }

 private:
  void Update() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const FleetControlOptions options_;
  Metrics* const metrics_;
  std::atomic<double> scale_{1.0};
  std::atomic<int64_t> decisions_{0}, cloud_{0}, starts_{0};
  std::atomic<uint64_t> money_nano_usd_{0};
  std::atomic<int64_t> next_update_at_;

  mutable absl::Mutex mu_;
  PiController pi_ ABSL_GUARDED_BY(mu_);
  int64_t seen_decisions_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t seen_cloud_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t seen_starts_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t seen_money_nano_usd_ ABSL_GUARDED_BY(mu_) = 0;
  // Exponentially weighted numerator and denominator of the achieved figure.
  double ew_numerator_ ABSL_GUARDED_BY(mu_) = 0;
  double ew_denominator_ ABSL_GUARDED_BY(mu_) = 0;
  State state_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lcio::server
