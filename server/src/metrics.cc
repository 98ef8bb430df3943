#include "lcio/server/metrics.h"

#include <civetweb.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <exception>
#include <thread>

#include "absl/strings/str_cat.h"
#include "lcio/version.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace lcio::server {
namespace {

const char* const kCodeNames[17] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

const char* const kReportRejectNames[Metrics::kReportRejectReasons] = {
    "queue_full", "disk_space", "write_failed", "shutdown", "undelivered"};
const char* const kDecisionLogDropNames[Metrics::kDecisionLogDropReasons] = {
    "queue_full", "write_failed", "shutdown"};
const char* const kShadowSkipNames[Metrics::kShadowSkipReasons] = {"queue_full", "incompatible",
                                                                   "error"};

prometheus::Histogram::BucketBoundaries ExponentialBuckets(double start, double factor, int count) {
  prometheus::Histogram::BucketBoundaries bounds;
  double b = start;
  for (int i = 0; i < count; ++i, b *= factor) bounds.push_back(b);
  return bounds;
}

// Compares without an early exit, so the time taken does not reveal how much
// of a guessed credential was right.
bool SameSecret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

// Opens and closes one TCP connection to host:port (wildcard hosts mean this
// machine), bounded by a 100 ms connect timeout.
void Knock(std::string host, int port) {
  if (!host.empty() && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, 100);
    }
    ::close(fd);
    break;
  }
  ::freeaddrinfo(found);
}

}  // namespace

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  auto& requests = BuildCounter()
                       .Name("lcio_decide_requests_total")
                       .Help("Decide calls by gRPC status code")
                       .Register(*registry_);
  for (int c = 0; c < 17; ++c) decide_by_code_[c] = &requests.Add({{"code", kCodeNames[c]}});
  // ~1.6 us .. ~3.3 s, doubling (the bounds from 25 us up as before, which
  // the alert rules' thresholds sit on): most Decides take under 25 us.
  decide_latency_ = &BuildHistogram()
                         .Name("lcio_decide_latency_seconds")
                         .Help("Server-side Decide latency, from arrival to answer")
                         .Register(*registry_)
                         .Add({}, ExponentialBuckets(25e-6 / 16, 2, 22));
  auto& decisions = BuildCounter()
                        .Name("lcio_decisions_total")
                        .Help("Decisions by answering target")
                        .Register(*registry_);
  decisions_local_ = &decisions.Add({{"target", "local"}});
  decisions_cloud_ = &decisions.Add({{"target", "cloud"}});
  views_family_ = &BuildCounter()
                       .Name("lcio_views_uploaded_total")
                       .Help("Views chosen for upload, by view name")
                       .Register(*registry_);
  shield_overrides_ = &BuildCounter()
                           .Name("lcio_shield_overrides_total")
                           .Help("Decisions where the budget shield replaced the policy's choice")
                           .Register(*registry_)
                           .Add({});
  fallback_decisions_ = &BuildCounter()
                             .Name("lcio_fallback_decisions_total")
                             .Help("Decisions the artifact's fallback table gave to a fixed action")
                             .Register(*registry_)
                             .Add({});
  fallback_substitutions_ =
      &BuildCounter()
           .Name("lcio_fallback_substitutions_total")
           .Help(
               "Fallback decisions whose fixed action did not fit the budgets and was replaced by "
               "the cheapest action that does")
           .Register(*registry_)
           .Add({});
  inference_ = &BuildHistogram()
                    .Name("lcio_policy_inference_seconds")
                    .Help("Forward pass time per batch")
                    .Register(*registry_)
                    // ~0.6 us .. ~0.7 s: a table's answer takes a microsecond.
                    .Add({}, ExponentialBuckets(5e-6 / 8, 2, 21));
  batch_size_ =
      &BuildHistogram()
           .Name("lcio_batch_size")
           .Help("Rows per forward pass")
           .Register(*registry_)
           .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256});
  log_lines_dropped_ = &BuildCounter()
                            .Name("lcio_log_lines_dropped_total")
                            .Help("Log lines dropped because stderr did not keep up")
                            .Register(*registry_)
                            .Add({});
  conversations_ = &BuildGauge()
                        .Name("lcio_conversations_active")
                        .Help("Conversations held in the server's store")
                        .Register(*registry_)
                        .Add({});
  expected_cost_ = &BuildCounter()
                        .Name("lcio_expected_cost_usd_total")
                        .Help("Sum of the expected money cost of the decisions, USD")
                        .Register(*registry_)
                        .Add({});
  expected_latency_ = &BuildCounter()
                           .Name("lcio_expected_latency_seconds_total")
                           .Help("Sum of the expected latency of the decisions, seconds")
                           .Register(*registry_)
                           .Add({});
  conversations_started_ =
      &BuildCounter()
           .Name("lcio_conversations_started_total")
           .Help(
               "Decisions on a conversation's first turn (spend per conversation = "
               "lcio_expected_cost_usd_total / this)")
           .Register(*registry_)
           .Add({});
  policy_info_family_ = &BuildGauge()
                             .Name("lcio_policy_info")
                             .Help("1 for the serving policy's version and algorithm")
                             .Register(*registry_);
  auto& reloads = BuildCounter()
                      .Name("lcio_policy_reloads_total")
                      .Help("Policy (re)loads by result")
                      .Register(*registry_);
  reloads_ok_ = &reloads.Add({{"result", "ok"}});
  reloads_error_ = &reloads.Add({{"result", "error"}});
  reports_ = &BuildCounter()
                  .Name("lcio_reports_total")
                  .Help("Outcome records appended to the report log")
                  .Register(*registry_)
                  .Add({});
  auto& rejected = BuildCounter()
                       .Name("lcio_reports_rejected_total")
                       .Help("Reports not acknowledged, by reason (not counting invalid requests)")
                       .Register(*registry_);
  for (int r = 0; r < kReportRejectReasons; ++r)
    reports_rejected_[r] = &rejected.Add({{"reason", kReportRejectNames[r]}});
  decision_logged_ = &BuildCounter()
                          .Name("lcio_decision_log_records_total")
                          .Help("Decision records written durably to the decision log")
                          .Register(*registry_)
                          .Add({});
  auto& dropped = BuildCounter()
                      .Name("lcio_decision_log_dropped_total")
                      .Help("Decision records lost, by reason (the log never slows Decide)")
                      .Register(*registry_);
  for (int r = 0; r < kDecisionLogDropReasons; ++r)
    decision_log_dropped_[r] = &dropped.Add({{"reason", kDecisionLogDropNames[r]}});
  shadow_decisions_ = &BuildCounter()
                           .Name("lcio_shadow_decisions_total")
                           .Help("Requests the shadow policy scored")
                           .Register(*registry_)
                           .Add({});
  shadow_agreements_ = &BuildCounter()
                            .Name("lcio_shadow_agreements_total")
                            .Help("Shadow decisions equal to the action served")
                            .Register(*registry_)
                            .Add({});
  shadow_cloud_ = &BuildCounter()
                       .Name("lcio_shadow_cloud_decisions_total")
                       .Help("Shadow decisions that answer in the cloud")
                       .Register(*registry_)
                       .Add({});
  shadow_expected_cost_ =
      &BuildCounter()
           .Name("lcio_shadow_expected_cost_usd_total")
           .Help("Sum of the expected money cost of the shadow's decisions, USD")
           .Register(*registry_)
           .Add({});
  auto& skipped = BuildCounter()
                      .Name("lcio_shadow_skipped_total")
                      .Help("Answered requests the shadow policy did not score, by reason")
                      .Register(*registry_);
  for (int r = 0; r < kShadowSkipReasons; ++r)
    shadow_skipped_[r] = &skipped.Add({{"reason", kShadowSkipNames[r]}});
  shadow_info_family_ = &BuildGauge()
                             .Name("lcio_shadow_policy_info")
                             .Help("1 for the shadow policy's version")
                             .Register(*registry_);
  inflight_ = &BuildGauge()
                   .Name("lcio_inflight_requests")
                   .Help("Decide calls admitted and not yet answered")
                   .Register(*registry_)
                   .Add({});
  policy_loaded_ = &BuildGauge()
                        .Name("lcio_policy_loaded")
                        .Help("1 when a policy is loaded and serving")
                        .Register(*registry_)
                        .Add({});
  auto& outside = BuildCounter()
                      .Name("lcio_decide_budget_outside_training_total")
                      .Help(
                          "Decisions whose budget was above the largest the policy was trained "
                          "for (label budget: latency_s, money_usd)")
                      .Register(*registry_);
  budget_outside_latency_ = &outside.Add({{"budget", "latency_s"}});
  budget_outside_money_ = &outside.Add({{"budget", "money_usd"}});
  BuildGauge()
      .Name("lcio_build_info")
      .Help("Always 1; label version: the lcio-server release (its --version)")
      .Register(*registry_)
      .Add({{"version", LCIO_VERSION}})
      .Set(1);
}

Metrics::~Metrics() { StopServing(); }

bool Metrics::ServesIpv6() {
  constexpr unsigned kCivetwebIpv6 = 8;  // civetweb.h, mg_check_feature
  return mg_check_feature(kCivetwebIpv6) != 0;
}

absl::StatusOr<int> Metrics::Serve(const std::string& address, const std::string& basic_auth) {
  // CivetWeb options: its default request timeout (30 s) let two silent peers
  // hold both of prometheus-cpp's default two workers.
  std::vector<std::string> options = {"listening_ports",    address,
                                      "num_threads",        std::to_string(kHttpThreads),
                                      "request_timeout_ms", std::to_string(kHttpRequestTimeoutMs)};
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(std::move(options));
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics_listen = \"", address, "\": cannot listen: ", e.what()));
  }
  // Before the collectable: no scrape is ever served without the check.
  if (!basic_auth.empty()) {
    const size_t colon = basic_auth.find(':');
    const std::string user = basic_auth.substr(0, colon);
    const std::string password = colon == std::string::npos ? "" : basic_auth.substr(colon + 1);
    exposer_->RegisterAuth(
        [user, password](const std::string& u, const std::string& p) {
          return SameSecret(u, user) & SameSecret(p, password);
        },
        "lcio metrics");
  }
  exposer_->RegisterCollectable(registry_);
  const std::vector<int> ports = exposer_->GetListeningPorts();
  if (ports.empty()) return absl::UnavailableError("metrics exposer reports no port");
  address_ = address;
  port_ = ports.front();
  return port_;
}

void Metrics::StopServing() {
  if (exposer_ == nullptr) return;
  // CivetWeb's accept loop polls its listener in 2 s steps and checks for a
  // stop only between them; a connection wakes it at once.
  std::atomic<bool> stopped{false};
  std::thread stopper([this, &stopped] {
    exposer_.reset();
    stopped.store(true);
  });
  const size_t colon = address_.rfind(':');
  const std::string host = colon == std::string::npos ? "" : address_.substr(0, colon);
  for (int i = 0; i < 500 && !stopped.load(); ++i) {
    Knock(host, port_);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stopper.join();
}

void Metrics::CountDecide(int code, double latency_s) {
  if (code < 0 || code > 16) code = 2;
  decide_by_code_[code]->Increment();
  decide_latency_->Observe(latency_s);
}

void Metrics::CountDecision(bool cloud, const std::vector<std::string>& uploaded_view_names,
                            bool shield_overridden, double expected_cost_usd,
                            double expected_latency_s) {
  (cloud ? decisions_cloud_ : decisions_local_)->Increment();
  if (!uploaded_view_names.empty()) {
    absl::MutexLock lock(&mu_);
    for (const std::string& name : uploaded_view_names) {
      prometheus::Counter*& counter = view_counters_[name];
      if (counter == nullptr) counter = &views_family_->Add({{"view", name}});
      counter->Increment();
    }
  }
  if (shield_overridden) shield_overrides_->Increment();
  if (expected_cost_usd > 0) expected_cost_->Increment(expected_cost_usd);
  if (expected_latency_s > 0) expected_latency_->Increment(expected_latency_s);
}

void Metrics::CountConversationStarted() { conversations_started_->Increment(); }

void Metrics::ObserveBatch(int size, double inference_s) {
  batch_size_->Observe(size);
  inference_->Observe(inference_s);
}

void Metrics::SetConversations(double n) { conversations_->Set(n); }

void Metrics::SetLogLinesDropped(int64_t total) {
  const int64_t seen = log_lines_dropped_seen_.exchange(total);
  if (total > seen) log_lines_dropped_->Increment(static_cast<double>(total - seen));
}
void Metrics::CountReport() { reports_->Increment(); }

void Metrics::CountReportRejected(ReportReject reason) {
  reports_rejected_[static_cast<int>(reason)]->Increment();
}
void Metrics::AddInflight(double delta) { inflight_->Increment(delta); }

void Metrics::SetPolicy(const std::string& version, const std::string& algo) {
  absl::MutexLock lock(&mu_);
  prometheus::Gauge* next = &policy_info_family_->Add({{"version", version}, {"algo", algo}});
  // Reloading the same version returns the same gauge: keep it.
  if (policy_info_ != nullptr && policy_info_ != next) policy_info_family_->Remove(policy_info_);
  policy_info_ = next;
  policy_info_->Set(1);
  policy_loaded_->Set(1);
}

void Metrics::CountFallbackDecision(bool substituted) {
  fallback_decisions_->Increment();
  if (substituted) fallback_substitutions_->Increment();
}

void Metrics::CountBudgetOutsideTraining(bool latency, bool money) {
  if (latency) budget_outside_latency_->Increment();
  if (money) budget_outside_money_->Increment();
}

void Metrics::CountDecisionLogged(int64_t n) {
  decision_logged_->Increment(static_cast<double>(n));
}

void Metrics::CountDecisionLogDropped(DecisionLogDrop reason, int64_t n) {
  decision_log_dropped_[static_cast<int>(reason)]->Increment(static_cast<double>(n));
}

void Metrics::CountShadowDecision(bool agrees, bool cloud, double expected_cost_usd) {
  shadow_decisions_->Increment();
  if (agrees) shadow_agreements_->Increment();
  if (cloud) shadow_cloud_->Increment();
  shadow_expected_cost_->Increment(expected_cost_usd);
}

void Metrics::CountShadowSkipped(ShadowSkip reason) {
  shadow_skipped_[static_cast<int>(reason)]->Increment();
}

void Metrics::SetShadowPolicy(const std::string& version) {
  absl::MutexLock lock(&mu_);
  prometheus::Gauge* next = &shadow_info_family_->Add({{"version", version}});
  if (shadow_info_ != nullptr && shadow_info_ != next) shadow_info_family_->Remove(shadow_info_);
  shadow_info_ = next;
  shadow_info_->Set(1);
}

void Metrics::CountReload(bool ok) { (ok ? reloads_ok_ : reloads_error_)->Increment(); }

void Metrics::SetFleetTarget(bool spend, double target, double scale) {
  absl::MutexLock lock(&mu_);
  prometheus::BuildGauge()
      .Name(spend ? "lcio_fleet_target_spend_usd" : "lcio_fleet_target_cloud_share_ratio")
      .Help(spend ? "Fleet target (--fleet_target): mean expected spend per conversation, USD"
                  : "Fleet target (--fleet_target): share of decisions answered in the cloud")
      .Register(*registry_)
      .Add({})
      .Set(target);
  fleet_scale_ = &prometheus::BuildGauge()
                      .Name("lcio_fleet_budget_scale_ratio")
                      .Help(
                          "Fleet controller output s: the policy and the shield see s x the "
                          "request's money budget (1: not lowered; dual price = -ln s)")
                      .Register(*registry_)
                      .Add({});
  fleet_scale_->Set(scale);
  fleet_updates_ = &prometheus::BuildCounter()
                        .Name("lcio_fleet_control_updates_total")
                        .Help("Blocks of decisions measured against the fleet target")
                        .Register(*registry_)
                        .Add({});
}

void Metrics::SetFleetState(bool spend, double achieved, double scale) {
  absl::MutexLock lock(&mu_);
  if (fleet_scale_ == nullptr) return;  // SetFleetTarget first
  if (fleet_achieved_ == nullptr)
    fleet_achieved_ =
        &prometheus::BuildGauge()
             .Name(spend ? "lcio_fleet_achieved_spend_usd"
                         : "lcio_fleet_achieved_cloud_share_ratio")
             .Help(spend ? "Achieved mean expected spend per conversation, USD (exponentially "
                           "weighted over --fleet_window decisions)"
                         : "Achieved share of decisions answered in the cloud (exponentially "
                           "weighted over --fleet_window decisions)")
             .Register(*registry_)
             .Add({});
  fleet_achieved_->Set(achieved);
  fleet_scale_->Set(scale);
  fleet_updates_->Increment();
}

}  // namespace lcio::server
