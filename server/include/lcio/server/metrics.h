// The service's Prometheus metrics (prometheus-cpp), served at /metrics on
// their own port. Names and labels are part of the deployment contract
// (dashboards and alerts use them): see docs/service.md.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace prometheus {
class Counter;
class Exposer;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace lcio::server {

class Metrics {
 public:
  Metrics();
  ~Metrics();
  // Serves /metrics on `address` ("host:port", port 0 picks one) with
  // kHttpThreads workers and a kHttpRequestTimeoutMs timeout per request, so
  // that a few idle or half-open peers cannot hold every worker.
  // `basic_auth`: "user:password" (the caller checked the form) to require
  // HTTP basic authentication, or empty. Returns the bound port.
  absl::StatusOr<int> Serve(const std::string& address, const std::string& basic_auth = "");
  // Whether the HTTP server Serve runs (the system's CivetWeb) was built with
  // IPv6: Debian 12's was not, and refuses a [v6]:port address.
  static bool ServesIpv6();
  // Stops serving /metrics at once (CivetWeb's own stop waits up to 2 s for
  // its accept loop to notice). Idempotent.
  void StopServing();
  static constexpr int kHttpThreads = 16;
  static constexpr int kHttpRequestTimeoutMs = 3000;

  // grpc::StatusCode as an int (0..16).
  void CountDecide(int code, double latency_s);
  void CountDecision(bool cloud, const std::vector<std::string>& uploaded_view_names,
                     bool shield_overridden, double expected_cost_usd, double expected_latency_s);
  // A decision on a conversation's first turn (turn_index 0).
  void CountConversationStarted();
  // A decision the artifact's fallback table gave to its fixed action;
  // `substituted`: that action did not fit and the cheapest that does replaced
  // it (an override the shield itself never counts).
  void CountFallbackDecision(bool substituted);
  void ObserveBatch(int size, double inference_s);
  void SetConversations(double n);
  // The process's count of log lines dropped because stderr did not keep up
  // (LogLinesDropped()); the counter follows it.
  void SetLogLinesDropped(int64_t total);
  void CountReport();
  // Why a valid Report was not acknowledged (label `reason`).
  // kUndelivered: too many Reports answered but not yet delivered (a client
  // that does not read its responses).
  enum class ReportReject { kQueueFull, kDiskSpace, kWriteFailed, kShutdown, kUndelivered };
  static constexpr int kReportRejectReasons = 5;
  void CountReportRejected(ReportReject reason);
  // The decision log: records written, and records lost (label `reason`).
  void CountDecisionLogged(int64_t n);
  enum class DecisionLogDrop { kQueueFull, kWriteFailed, kShutdown };
  static constexpr int kDecisionLogDropReasons = 3;
  void CountDecisionLogDropped(DecisionLogDrop reason, int64_t n = 1);
  // Shadow policy: one call per request it scored.
  void CountShadowDecision(bool agrees, bool cloud, double expected_cost_usd);
  // Requests the shadow did not score (label `reason`).
  enum class ShadowSkip { kQueueFull, kIncompatible, kError };
  static constexpr int kShadowSkipReasons = 3;
  void CountShadowSkipped(ShadowSkip reason);
  void SetShadowPolicy(const std::string& version);
  void AddInflight(double delta);
  void SetPolicy(const std::string& version, const std::string& algo);
  // A decision whose budget was above the policy's training range (label
  // `budget`: latency_s, money_usd; both when both are).
  void CountBudgetOutsideTraining(bool latency, bool money);
  void CountReload(bool ok);
  // Fleet target (fleet_control.h): `spend` selects the spend_usd gauges,
  // else the cloud_share ones. The achieved gauge appears with the first
  // measured block (no false drift before traffic).
  void SetFleetTarget(bool spend, double target, double scale);
  void SetFleetState(bool spend, double achieved, double scale);

  prometheus::Registry& registry() { return *registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string address_;  // as given to Serve
  int port_ = -1;        // bound
  std::array<prometheus::Counter*, 17> decide_by_code_{};
  prometheus::Histogram* decide_latency_ = nullptr;
  prometheus::Counter* decisions_local_ = nullptr;
  prometheus::Counter* decisions_cloud_ = nullptr;
  prometheus::Family<prometheus::Counter>* views_family_ = nullptr;
  prometheus::Counter* shield_overrides_ = nullptr;
  prometheus::Counter* fallback_decisions_ = nullptr;
  prometheus::Counter* fallback_substitutions_ = nullptr;
  prometheus::Histogram* inference_ = nullptr;
  prometheus::Histogram* batch_size_ = nullptr;
  prometheus::Gauge* conversations_ = nullptr;
  prometheus::Counter* expected_cost_ = nullptr;
  prometheus::Counter* expected_latency_ = nullptr;
  prometheus::Counter* conversations_started_ = nullptr;
  prometheus::Family<prometheus::Gauge>* policy_info_family_ = nullptr;
  prometheus::Counter* reloads_ok_ = nullptr;
  prometheus::Counter* reloads_error_ = nullptr;
  prometheus::Counter* reports_ = nullptr;
  std::array<prometheus::Counter*, kReportRejectReasons> reports_rejected_{};
  prometheus::Counter* decision_logged_ = nullptr;
  std::array<prometheus::Counter*, kDecisionLogDropReasons> decision_log_dropped_{};
  prometheus::Counter* shadow_decisions_ = nullptr;
  prometheus::Counter* shadow_agreements_ = nullptr;
  prometheus::Counter* shadow_cloud_ = nullptr;
  prometheus::Counter* shadow_expected_cost_ = nullptr;
  std::array<prometheus::Counter*, kShadowSkipReasons> shadow_skipped_{};
  prometheus::Family<prometheus::Gauge>* shadow_info_family_ = nullptr;
  prometheus::Gauge* inflight_ = nullptr;
  prometheus::Gauge* policy_loaded_ = nullptr;
  prometheus::Counter* budget_outside_latency_ = nullptr;
  prometheus::Counter* budget_outside_money_ = nullptr;
  prometheus::Counter* log_lines_dropped_ = nullptr;
  std::atomic<int64_t> log_lines_dropped_seen_{0};

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, prometheus::Counter*> view_counters_ ABSL_GUARDED_BY(mu_);
  prometheus::Gauge* policy_info_ ABSL_GUARDED_BY(mu_) = nullptr;
  prometheus::Gauge* shadow_info_ ABSL_GUARDED_BY(mu_) = nullptr;
  prometheus::Gauge* fleet_achieved_ ABSL_GUARDED_BY(mu_) = nullptr;
  prometheus::Gauge* fleet_scale_ ABSL_GUARDED_BY(mu_) = nullptr;
  prometheus::Counter* fleet_updates_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace lcio::server
