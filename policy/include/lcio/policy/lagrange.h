// Lagrange multipliers for constrained RL: one per constraint, updated from
// the measured episode cost against its limit and kept >= 0.
#pragma once

#include <string>

namespace lcio::policy {

// PID Lagrangian (Stooke et al. 2020). With kp = kd = 0 (the default) this is
// projected gradient ascent on the dual: lambda <- max(0, lambda + lr * (cost - limit)).
struct LagrangeOptions {
  double limit = 0;  // per-episode cost limit
  double lr = 0.05;  // the integral gain
  double kp = 0;
  double kd = 0;
  double initial = 0;
  double max_value = 100;  // keeps a runaway constraint from swamping the reward entirely
};

class LagrangeMultiplier {
 public:
  explicit LagrangeMultiplier(const LagrangeOptions& options = {});
  // One dual step from the mean episode cost measured since the last step.
  double Update(double measured_cost);
  double value() const { return value_; }
  const LagrangeOptions& options() const { return options_; }

 private:
  LagrangeOptions options_;
  double integral_;
  double previous_error_ = 0;
  bool has_previous_ = false;
  double value_;
};

}  // namespace lcio::policy
