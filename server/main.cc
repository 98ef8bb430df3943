// lcio-server: the gRPC decision service. See docs/service.md.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli_help.h"
#include "lcio/server/log.h"
#include "lcio/server/server.h"

ABSL_FLAG(std::string, policy, "",
          "policy artifact (default: policy/default_policy.pt in the working directory, else "
          "share/lcio/default_policy.pt beside an installed binary, else the source tree); a "
          "missing or invalid file is waited for (NOT_SERVING), not fatal");
ABSL_FLAG(std::string, listen, "0.0.0.0:50051", "gRPC listen address (port 0 picks one)");
ABSL_FLAG(std::string, metrics_listen, "0.0.0.0:9464",
          "Prometheus /metrics listen address; empty disables");
ABSL_FLAG(std::string, metrics_basic_auth_file, "",
          "file whose first line is user:password: /metrics then requires HTTP basic auth");
ABSL_FLAG(std::string, torch_device, "auto", "auto | cpu | cuda | cuda:N");
ABSL_FLAG(std::string, profiles, "", "extra device/network/LLM profiles JSON");
ABSL_FLAG(double, drain_timeout_s, 20, "on SIGTERM/SIGINT, how long in-flight calls may finish");
ABSL_FLAG(int32_t, shutdown_grace_ms, 0,
          "on SIGTERM/SIGINT, report NOT_SERVING this long (calls still answered) before new "
          "Decides are refused; in [0, 3600000]");
ABSL_FLAG(int32_t, max_inflight, 256, "Decide calls in flight; beyond: RESOURCE_EXHAUSTED");
ABSL_FLAG(int32_t, batch_max, 32,
          "rows per forward pass (batched rows only: a GPU policy, or --micro_batching=on)");
ABSL_FLAG(int32_t, batch_wait_us, 200,
          "longest wait for a batch to fill (batched rows only; only while other requests are on "
          "their way)");
ABSL_FLAG(std::string, micro_batching, "auto",
          "auto: batch the rows of a policy on a GPU, score each row on its own call's thread on "
          "the CPU (where a row costs barely less in a batch); on: batch every row; off: none");
ABSL_FLAG(int64_t, max_conversations, 100000, "conversations kept (LRU eviction beyond)");
ABSL_FLAG(double, conversation_idle_s, 1800, "idle conversations expire after this");
ABSL_FLAG(std::string, report_log, "",
          "outcome log for Report (empty: Report disabled); a missing directory is created, a "
          "log that cannot be opened is fatal");
ABSL_FLAG(int32_t, report_queue_max, 1024,
          "Reports waiting for the log's disk; beyond: RESOURCE_EXHAUSTED");
ABSL_FLAG(int32_t, report_max_record_bytes, 64 << 10,
          "longest Report record (its whole log line); beyond: INVALID_ARGUMENT");
ABSL_FLAG(int64_t, report_rotate_mb, 256,
          "start a new report log file (the old one becomes LOG.000001, ...) past this many "
          "MiB; 0: never");
ABSL_FLAG(int64_t, report_min_free_mb, 64,
          "refuse Reports (RESOURCE_EXHAUSTED) rather than leave less free space than this on "
          "the log's filesystem; 0: no floor");
ABSL_FLAG(std::string, decision_log, "",
          "decision log, one JSON line per answered Decide (docs/decision_log.md); empty: none");
ABSL_FLAG(int32_t, decision_log_queue_max, 4096,
          "decision records waiting for the log's worker (and 4 times as many for its disk); "
          "beyond: dropped and counted, never waited for");
ABSL_FLAG(int64_t, decision_log_rotate_mb, 256,
          "start a new decision log file (the old one becomes LOG.000001, ...) past this many "
          "MiB; 0: never");
ABSL_FLAG(int32_t, decision_log_keep_files, 0,
          "retention: rotated decision log files kept (the oldest are deleted); 0: keep all");
ABSL_FLAG(int64_t, decision_log_min_free_mb, 64,
          "drop decision records rather than leave less free space than this on the log's "
          "filesystem; 0: no floor");
ABSL_FLAG(int32_t, decision_log_commit_ms, 100,
          "write (and fdatasync) the decision log at most once per this many milliseconds, so "
          "that a busy server pays one write per interval, not one per few records; 0: as soon "
          "as records arrive (a power failure may lose up to this much more of the log)");
ABSL_FLAG(std::string, explore, "none",
          "exploration among the actions the shield allows: none | epsilon:E | softmax:T "
          "(reproducible from the decision id; requests may opt out with no_explore)");
ABSL_FLAG(std::string, shadow_policy, "",
          "a second artifact that scores every answered request off the request path (decision "
          "log and lcio_shadow_* metrics); empty: none");
ABSL_FLAG(std::string, fleet_target, "none",
          "fleet target: none | cloud_share:S (share of decisions answered in the cloud) | "
          "spend_usd:X (mean expected spend per conversation, USD); exported as lcio_fleet_* "
          "metrics (docs/ope.md, Calibration)");
ABSL_FLAG(std::string, fleet_control, "off",
          "off: the fleet target is only monitored | pi: a PI controller lowers the money budget "
          "the policy and the shield see to s x the request's (s in [fleet_control_min_scale, 1])");
ABSL_FLAG(double, fleet_control_kp, 0.05, "proportional gain (ln s per unit of relative error)");
ABSL_FLAG(double, fleet_control_ki, 0.25,
          "integral gain (ln s per unit of relative error per update)");
ABSL_FLAG(double, fleet_control_min_scale, 0.001, "lowest money-budget scale s, in (0, 1]");
ABSL_FLAG(double, fleet_control_initial_scale, 1,
          "s before the controller's first update (with --fleet_control=pi), in "
          "[fleet_control_min_scale, 1]: e.g. the lcio_fleet_budget_scale_ratio a pod settled at");
ABSL_FLAG(int64_t, fleet_control_every, 200,
          "answered decisions per measured block (one controller update per block)");
ABSL_FLAG(int64_t, fleet_window, 5000,
          "decisions over which the exported achieved figure is exponentially weighted");
ABSL_FLAG(int32_t, watch_interval_ms, 1000, "policy file poll interval, in [10, 3600000]");
ABSL_FLAG(std::string, tls_cert, "", "server certificate (PEM); enables TLS");
ABSL_FLAG(std::string, tls_key, "", "server private key (PEM)");
ABSL_FLAG(std::string, tls_client_ca, "", "CA (PEM) for client certificates; enables mutual TLS");
ABSL_FLAG(std::string, log_level, "info", "debug | info | warning | error");
ABSL_FLAG(double, max_connection_age_s, 0,
          "send clients a GOAWAY on connections older than this, so round_robin clients "
          "re-resolve DNS and reach new pods (0: never)");
ABSL_FLAG(double, max_connection_age_grace_s, 30,
          "after that GOAWAY, how long the connection's calls may finish");
ABSL_FLAG(bool, reflection, true,
          "serve gRPC server reflection (grpcurl, grpc_cli list and describe the API)");
ABSL_FLAG(int32_t, max_prompt_bytes, 16384, "longest prompt accepted");
ABSL_FLAG(int32_t, max_views, 64, "most views accepted in a request");

namespace {

// "host:port" with the bound port, for the start-up lines tests read.
std::string WithPort(const std::string& address, int port) {
  const size_t colon = address.rfind(':');
  return absl::StrCat(colon == std::string::npos ? address : address.substr(0, colon), ":", port);
}

int Fail(const std::string& message) {
  lcio::server::LogLine(lcio::server::LogLevel::kError, "fatal").Str("error", message);
  // A stderr that did not drain in a second would block this write too.
  if (lcio::server::StopLogWriter(absl::Now() + absl::Seconds(1)))
    std::fprintf(stderr, "lcio-server: %s\n", message.c_str());
  return 2;
}

// "--NAME=VALUE: must be in [LO, HI]" when the value is out of range, else
// empty: every numeric flag's message names the flag, the value and the rule.
template <typename T>
std::string OutOfRange(const char* name, T value, T lo, T hi) {
  if (value >= lo && value <= hi) return "";
  return absl::StrCat("--", name, "=", value, ": must be in [", lo, ", ", hi, "]");
}

}  // namespace

int main(int argc, char** argv) {
  lcio::cli::ParseCommandLine(argc, argv, "[flags]",
                              "Decides per conversation turn which LLM answers and which views "
                              "are uploaded (gRPC lcio.v1.Offloader). See docs/service.md.");
  lcio::cli::AbortOnUncaughtExceptions();
  // Debian's abseil checks every Mutex acquisition for lock-order cycles
  // (a graph update per lock); the service's locks are leaves.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  auto level = lcio::server::ParseLogLevel(absl::GetFlag(FLAGS_log_level));
  if (!level.ok()) return Fail(std::string(level.status().message()));
  lcio::server::SetLogLevel(*level);

  // Signals are taken by sigwait on this thread: block them before any
  // other thread exists so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  lcio::server::ServerOptions options;
  options.policy_path = absl::GetFlag(FLAGS_policy);
  if (options.policy_path.empty())
    options.policy_path = lcio::cli::DefaultDataFile("policy/default_policy.pt");
  options.listen = absl::GetFlag(FLAGS_listen);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.metrics_basic_auth_file = absl::GetFlag(FLAGS_metrics_basic_auth_file);
  options.torch_device = absl::GetFlag(FLAGS_torch_device);
  options.profiles_path = absl::GetFlag(FLAGS_profiles);
  const double drain_s = absl::GetFlag(FLAGS_drain_timeout_s);
  if (!(drain_s >= 0)) return Fail("drain_timeout_s must be >= 0");
  options.drain_timeout = absl::Seconds(drain_s);
  const int32_t grace_ms = absl::GetFlag(FLAGS_shutdown_grace_ms);
  const int32_t watch_ms = absl::GetFlag(FLAGS_watch_interval_ms);
  for (const std::string& error : {OutOfRange("shutdown_grace_ms", grace_ms, 0, 3600000),
                                   OutOfRange("watch_interval_ms", watch_ms, 10, 3600000)})
    if (!error.empty()) return Fail(error);
  options.shutdown_grace = absl::Milliseconds(grace_ms);
  options.max_inflight = absl::GetFlag(FLAGS_max_inflight);
  options.batch_max = absl::GetFlag(FLAGS_batch_max);
  options.batch_wait = absl::Microseconds(absl::GetFlag(FLAGS_batch_wait_us));
  if (options.max_inflight < 1 || options.batch_max < 1 || absl::GetFlag(FLAGS_batch_wait_us) < 0)
    return Fail("max_inflight and batch_max must be >= 1, batch_wait_us >= 0");
  // Beyond, the bounds derived from it (4 x for undelivered responses) lose
  // their meaning; 600000000 overflowed them and refused every Decide.
  if (std::string error = OutOfRange("max_inflight", options.max_inflight, 1, 1 << 20);
      !error.empty())
    return Fail(error);
  auto micro_batching = lcio::server::ParseMicroBatching(absl::GetFlag(FLAGS_micro_batching));
  if (!micro_batching.ok()) return Fail(std::string(micro_batching.status().message()));
  options.micro_batching = *micro_batching;
  if (absl::GetFlag(FLAGS_max_conversations) < 1) return Fail("max_conversations must be >= 1");
  options.max_conversations = static_cast<size_t>(absl::GetFlag(FLAGS_max_conversations));
  const double idle_s = absl::GetFlag(FLAGS_conversation_idle_s);
  if (!(idle_s > 0)) return Fail("conversation_idle_s must be > 0");
  options.conversation_idle = absl::Seconds(idle_s);
  options.report_log = absl::GetFlag(FLAGS_report_log);
  options.report_queue_max = absl::GetFlag(FLAGS_report_queue_max);
  options.report_max_record_bytes = absl::GetFlag(FLAGS_report_max_record_bytes);
  const int64_t rotate_mb = absl::GetFlag(FLAGS_report_rotate_mb);
  const int64_t floor_mb = absl::GetFlag(FLAGS_report_min_free_mb);
  constexpr int64_t kMaxMb = int64_t{1} << 40;  // keeps the byte counts in range
  constexpr int32_t kMaxCount = int32_t{1} << 30;
  const int64_t decision_rotate_mb = absl::GetFlag(FLAGS_decision_log_rotate_mb);
  const int64_t decision_floor_mb = absl::GetFlag(FLAGS_decision_log_min_free_mb);
  const int32_t commit_ms = absl::GetFlag(FLAGS_decision_log_commit_ms);
  for (const std::string& error : {
           OutOfRange("report_queue_max", options.report_queue_max, 1, kMaxCount),
           OutOfRange("report_max_record_bytes", options.report_max_record_bytes, 1024, kMaxCount),
           OutOfRange("report_rotate_mb", rotate_mb, int64_t{0}, kMaxMb),
           OutOfRange("report_min_free_mb", floor_mb, int64_t{0}, kMaxMb),
           OutOfRange("decision_log_queue_max", absl::GetFlag(FLAGS_decision_log_queue_max), 1,
                      kMaxCount),
           OutOfRange("decision_log_keep_files", absl::GetFlag(FLAGS_decision_log_keep_files), 0,
                      kMaxCount),
           OutOfRange("decision_log_rotate_mb", decision_rotate_mb, int64_t{0}, kMaxMb),
           OutOfRange("decision_log_min_free_mb", decision_floor_mb, int64_t{0}, kMaxMb),
           OutOfRange("decision_log_commit_ms", commit_ms, 0, 10000),
       })
    if (!error.empty()) return Fail(error);
  options.report_rotate_bytes = rotate_mb << 20;
  options.report_min_free_bytes = floor_mb << 20;
  options.decision_log = absl::GetFlag(FLAGS_decision_log);
  options.decision_log_queue_max = absl::GetFlag(FLAGS_decision_log_queue_max);
  options.decision_log_keep_files = absl::GetFlag(FLAGS_decision_log_keep_files);
  options.decision_log_rotate_bytes = decision_rotate_mb << 20;
  options.decision_log_min_free_bytes = decision_floor_mb << 20;
  options.decision_log_commit_interval = absl::Milliseconds(commit_ms);
  options.explore = absl::GetFlag(FLAGS_explore);
  options.shadow_policy = absl::GetFlag(FLAGS_shadow_policy);
  auto fleet_target = lcio::server::FleetTarget::Parse(absl::GetFlag(FLAGS_fleet_target));
  if (!fleet_target.ok()) return Fail(std::string(fleet_target.status().message()));
  auto fleet_pi =
      lcio::server::FleetControlOptions::ParseControl(absl::GetFlag(FLAGS_fleet_control));
  if (!fleet_pi.ok()) return Fail(std::string(fleet_pi.status().message()));
  if (*fleet_pi && !fleet_target->enabled())
    return Fail("fleet_control = \"pi\": needs a --fleet_target");
  options.fleet.target = *fleet_target;
  options.fleet.pi = *fleet_pi;
  options.fleet.kp = absl::GetFlag(FLAGS_fleet_control_kp);
  options.fleet.ki = absl::GetFlag(FLAGS_fleet_control_ki);
  options.fleet.min_scale = absl::GetFlag(FLAGS_fleet_control_min_scale);
  options.fleet.initial_scale = absl::GetFlag(FLAGS_fleet_control_initial_scale);
  options.fleet.update_every = absl::GetFlag(FLAGS_fleet_control_every);
  options.fleet.window = absl::GetFlag(FLAGS_fleet_window);
  if (absl::Status valid = options.fleet.Validate(); !valid.ok())
    return Fail(std::string(valid.message()));
  options.watch_interval = absl::Milliseconds(watch_ms);
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  const double age_s = absl::GetFlag(FLAGS_max_connection_age_s);
  const double age_grace_s = absl::GetFlag(FLAGS_max_connection_age_grace_s);
  // Bounded so that the milliseconds fit gRPC's int channel argument.
  if (!(age_s >= 0 && age_s <= 2e6) || !(age_grace_s >= 0 && age_grace_s <= 2e6))
    return Fail("max_connection_age_s and max_connection_age_grace_s must be in [0, 2e6]");
  options.max_connection_age = absl::Seconds(age_s);
  options.max_connection_age_grace = absl::Seconds(age_grace_s);
  options.reflection = absl::GetFlag(FLAGS_reflection);
  options.limits.max_prompt_bytes = absl::GetFlag(FLAGS_max_prompt_bytes);
  options.limits.max_views = absl::GetFlag(FLAGS_max_views);
  if (options.limits.max_prompt_bytes < 1 || options.limits.max_views < 1)
    return Fail("max_prompt_bytes and max_views must be >= 1");

  // From here no gRPC thread writes to stderr itself: a stalled log
  // collector costs log lines (counted), never Decides.
  lcio::server::StartLogWriter();
  auto app = lcio::server::ServerApp::Start(options);
  if (!app.ok()) return Fail(app.status().ToString());
  lcio::server::FlushLogWriter(absl::Now() + absl::Seconds(1));
  std::printf("lcio-server listening on %s\n", WithPort(options.listen, (*app)->port()).c_str());
  if ((*app)->metrics_port() > 0)
    std::printf("lcio-server metrics on %s\n",
                WithPort(options.metrics_listen, (*app)->metrics_port()).c_str());
  std::fflush(stdout);

  for (;;) {
    int signal_number = 0;
    if (sigwait(&signals, &signal_number) != 0) continue;
    if (signal_number == SIGHUP) {
      // Never blocks in a read (the watcher thread reloads) nor waits behind
      // a reload stuck on a hung disk: SIGTERM comes next.
      if (absl::Status s = (*app)->RequestReload("SIGHUP"); absl::IsUnavailable(s))
        lcio::server::LogLine(lcio::server::LogLevel::kError, "policy_reload_skipped")
            .Str("error", std::string(s.message()));  // else logged and counted inside
      continue;
    }
    lcio::server::LogLine(lcio::server::LogLevel::kInfo, "signal")
        .Str("signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
    (*app)->Shutdown();
    app->reset();
    // Bounded: a stderr that never drains must not keep the process alive.
    lcio::server::StopLogWriter(absl::Now() + absl::Seconds(1));
    return 0;
  }
}
