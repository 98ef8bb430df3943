#include "lcio/policy/lagrange.h"

#include <algorithm>

namespace lcio::policy {

LagrangeMultiplier::LagrangeMultiplier(const LagrangeOptions& options)
    : options_(options),
      integral_(std::max(0.0, options.initial)),
      value_(std::clamp(options.initial, 0.0, options.max_value)) {}

double LagrangeMultiplier::Update(double measured_cost) {
  const double error = measured_cost - options_.limit;
  // Projection: the integral (the plain dual variable) never goes below 0.
  integral_ = std::clamp(integral_ + options_.lr * error, 0.0, options_.max_value);
  const double derivative = has_previous_ ? std::max(0.0, error - previous_error_) : 0.0;
  previous_error_ = error;
  has_previous_ = true;
  value_ = std::clamp(options_.kp * error + integral_ + options_.kd * derivative, 0.0,
                      options_.max_value);
  return value_;
}

}  // namespace lcio::policy
