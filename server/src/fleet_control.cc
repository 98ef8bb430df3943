#include "lcio/server/fleet_control.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "lcio/data/message.h"
#include "lcio/server/metrics.h"

namespace lcio::server {
namespace {

constexpr double kMaxSpendTargetUsd = 1e6;
// Money is summed in nano-USD in an unsigned counter: block differences are
// exact modulo 2^64, whatever the running total.
constexpr double kNanoPerUsd = 1e9;
constexpr double kMaxMoneyPerDecisionUsd = 1e6;
// The controller's error is bounded below by -kMaxRelativeOvershoot.
constexpr double kMaxRelativeOvershoot = 10;

}  // namespace

absl::StatusOr<FleetTarget> FleetTarget::Parse(absl::string_view flag) {
  FleetTarget target;
  if (flag.empty() || flag == "none") return target;
  const size_t colon = flag.find(':');
  const absl::string_view kind = flag.substr(0, colon);
  double value = 0;
  const bool has_value = colon != absl::string_view::npos &&
                         absl::SimpleAtod(flag.substr(colon + 1), &value) && std::isfinite(value);
  const std::string quoted =
      absl::StrCat("fleet_target = \"", data::Shorten(std::string(flag), 64), "\"");
  if (kind == "cloud_share") {
    if (!has_value || !(value > 0 && value < 1))
      return absl::InvalidArgumentError(
          absl::StrCat(quoted, ": cloud_share:S needs a share S in (0, 1) (e.g. cloud_share:0.3)"));
    target.kind = Kind::kCloudShare;
  } else if (kind == "spend_usd") {
    if (!has_value || !(value > 0 && value <= kMaxSpendTargetUsd))
      return absl::InvalidArgumentError(
          absl::StrCat(quoted,
                       ": spend_usd:X needs a mean spend per conversation X in (0, 1e6] USD "
                       "(e.g. spend_usd:0.01)"));
    target.kind = Kind::kSpendUsd;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(quoted, ": must be none, cloud_share:S or spend_usd:X"));
  }
  target.value = value;
  return target;
}

const char* FleetTarget::KindName() const {
  switch (kind) {
    case Kind::kCloudShare:
      return "cloud_share";
    case Kind::kSpendUsd:
      return "spend_usd";
    case Kind::kNone:
      break;
  }
  return "none";
}

PiController::PiController(double kp, double ki, double min_output, double max_output,
                           double initial)
    : kp_(kp),
      ki_(ki),
      min_(min_output),
      max_(max_output),
      integral_(std::clamp(initial, min_output, max_output)),
      output_(integral_) {}

double PiController::Step(double error) {
  if (!std::isfinite(error)) return output_;  // no information: hold
  const double p = kp_ * error;
  // Anti-windup (clamping): the integral may move only as far as puts the
  // output (p + integral) on its bound, and stays within the bounds itself;
  // so after any time at a bound, an error of the other sign moves the
  // output off it at once.
  const double lo = std::max(min_, min_ - p), hi = std::min(max_, max_ - p);
  const double integrated = integral_ + ki_ * error;
  if (lo <= hi)
    integral_ = std::clamp(integrated, std::min(lo, integral_), std::max(hi, integral_));
  integral_ = std::clamp(integral_, min_, max_);
  output_ = std::clamp(p + integral_, min_, max_);
  return output_;
}

absl::StatusOr<bool> FleetControlOptions::ParseControl(absl::string_view flag) {
  if (flag == "off" || flag.empty()) return false;
  if (flag == "pi") return true;
  return absl::InvalidArgumentError(absl::StrCat(
      "fleet_control = \"", data::Shorten(std::string(flag), 64), "\": must be off or pi"));
}

absl::Status FleetControlOptions::Validate() const {
  if (!(std::isfinite(kp) && kp >= 0 && kp <= 100) || !(std::isfinite(ki) && ki >= 0 && ki <= 100))
    return absl::InvalidArgumentError(absl::StrCat(
        "fleet_control_kp = ", kp, ", fleet_control_ki = ", ki, ": the gains must be in [0, 100]"));
  if (!(min_scale > 0 && min_scale <= 1))
    return absl::InvalidArgumentError(
        absl::StrCat("fleet_control_min_scale = ", min_scale, ": must be in (0, 1]"));
  if (!(initial_scale >= min_scale && initial_scale <= 1))
    return absl::InvalidArgumentError(absl::StrCat("fleet_control_initial_scale = ", initial_scale,
                                                   ": must be in [fleet_control_min_scale (",
                                                   min_scale, "), 1]"));
  if (!pi && initial_scale != 1)  // a forgotten --fleet_control=pi, not a silent no-op
    return absl::InvalidArgumentError(absl::StrCat("fleet_control_initial_scale = ", initial_scale,
                                                   ": needs --fleet_control=pi"));
  if (update_every < 1 || update_every > 1000000000)
    return absl::InvalidArgumentError(
        absl::StrCat("fleet_control_every = ", update_every, ": must be in [1, 1e9] decisions"));
  if (window < update_every || window > 1000000000000)
    return absl::InvalidArgumentError(absl::StrCat("fleet_window = ", window,
                                                   ": must be in [fleet_control_every (",
                                                   update_every, "), 1e12] decisions"));
  return absl::OkStatus();
}

FleetController::FleetController(const FleetControlOptions& options, Metrics* metrics)
    : options_(options),
      metrics_(metrics),
      next_update_at_(options.update_every),
      pi_(options.kp, options.ki, std::log(options.min_scale), 0.0,
          options.pi ? std::log(options.initial_scale) : 0.0) {
  absl::MutexLock lock(&mu_);
  state_.target = options_.target.value;
  // The integral starts at ln(initial_scale), so the first update moves s
  // from there as it would have from a controller that had settled there.
  state_.scale = options_.pi ? options_.initial_scale : 1.0;  // exactly, not exp(log(s))
  state_.integral = pi_.integral();
  scale_.store(state_.scale, std::memory_order_relaxed);
  if (metrics_ != nullptr)
    metrics_->SetFleetTarget(options_.target.kind == FleetTarget::Kind::kSpendUsd,
                             options_.target.value, state_.scale);
}

double FleetController::EffectiveMoney(double request_money_usd) const {
  const double s = Scale();
  return s < 1 ? std::min(request_money_usd, s * request_money_usd) : request_money_usd;
}

void FleetController::Observe(bool cloud, double expected_money_usd, bool conversation_start) {
  if (cloud) cloud_.fetch_add(1, std::memory_order_relaxed);
  if (conversation_start) starts_.fetch_add(1, std::memory_order_relaxed);
  if (expected_money_usd > 0)
    money_nano_usd_.fetch_add(
        static_cast<uint64_t>(
            std::llround(std::min(expected_money_usd, kMaxMoneyPerDecisionUsd) * kNanoPerUsd)),
        std::memory_order_relaxed);
  const int64_t n = decisions_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n < next_update_at_.load(std::memory_order_relaxed)) return;
  // One updater at a time; the others go on (never wait on the hot path).
  if (!mu_.TryLock()) return;
  Update();
  mu_.Unlock();
}

void FleetController::Update() {
  mu_.AssertHeld();
  const int64_t decisions = decisions_.load(std::memory_order_relaxed);
  const int64_t cloud = cloud_.load(std::memory_order_relaxed);
  const int64_t starts = starts_.load(std::memory_order_relaxed);
  const uint64_t money = money_nano_usd_.load(std::memory_order_relaxed);
  const int64_t block = decisions - seen_decisions_;
  if (block < options_.update_every) return;  // another caller updated first
  const bool spend = options_.target.kind == FleetTarget::Kind::kSpendUsd;
  const int64_t block_starts = starts - seen_starts_;
  if (spend && block_starts <= 0) {
    // Spend per conversation needs a conversation in the block: extend it
    // by another block (no per-decision retries on the hot path).
    next_update_at_.store(decisions + options_.update_every, std::memory_order_relaxed);
    return;
  }
  const double block_money_usd = static_cast<double>(money - seen_money_nano_usd_) / kNanoPerUsd;
  const double numerator = spend ? block_money_usd : static_cast<double>(cloud - seen_cloud_);
  const double denominator = spend ? static_cast<double>(block_starts) : static_cast<double>(block);
  seen_decisions_ = decisions;
  seen_cloud_ = cloud;
  seen_starts_ = starts;
  seen_money_nano_usd_ = money;
  next_update_at_.store(decisions + options_.update_every, std::memory_order_relaxed);

  const double achieved_block = numerator / denominator;
  // Exponential weights per decision: a block of `block` decisions weighs
  // block / window (all of it once the block is the window).
  const double alpha =
      state_.measured
          ? std::min(1.0, static_cast<double>(block) / static_cast<double>(options_.window))
          : 1.0;
  ew_numerator_ = (1 - alpha) * ew_numerator_ + alpha * numerator;
  ew_denominator_ = (1 - alpha) * ew_denominator_ + alpha * denominator;
  state_.achieved_block = achieved_block;
  state_.achieved = ew_numerator_ / ew_denominator_;
  state_.measured = true;
  ++state_.updates;
  if (options_.pi) {
    // Relative error: the same gains serve a share and a spend. It is at most
    // 1 (nothing achieved); below, only a safety bound: clipping overshoots
    // harder would bias the integral (whose job is a zero mean error) upward
    // when the figure jumps between blocks.
    const double target = options_.target.value;
    const double error =
        std::clamp((target - achieved_block) / target, -kMaxRelativeOvershoot, 1.0);
    const double u = pi_.Step(error);
    state_.integral = pi_.integral();
    state_.scale = std::clamp(std::exp(u), options_.min_scale, 1.0);
    scale_.store(state_.scale, std::memory_order_relaxed);
  }
  if (metrics_ != nullptr) metrics_->SetFleetState(spend, state_.achieved, state_.scale);
}

FleetController::State FleetController::state() const {
  absl::MutexLock lock(&mu_);
  State state = state_;
  state.decisions = decisions_.load(std::memory_order_relaxed);
  state.cloud_decisions = cloud_.load(std::memory_order_relaxed);
  state.conversation_starts = starts_.load(std::memory_order_relaxed);
  return state;
}

}  // namespace lcio::server
