// The lcio-server process minus flag parsing and signals: the gRPC Offloader
// service (callback API), the standard health service, Prometheus metrics,
// the policy holder with its file watch, the conversation store with its
// expiry sweep, the micro-batcher and the report log.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lcio/server/fleet_control.h"
#include "lcio/server/micro_batcher.h"
#include "lcio/server/request.h"

namespace grpc {
class Server;
}

namespace lcio::server {

class ConversationStore;
class Decider;
class DecisionLogger;
class Metrics;
class PolicyHolder;
class GroupCommitter;
class OffloaderService;

struct ServerOptions {
  std::string policy_path;
  std::string listen = "0.0.0.0:50051";
  std::string metrics_listen = "0.0.0.0:9464";  // empty: no metrics endpoint
  // A file whose first line is "user:password": /metrics then requires HTTP
  // basic authentication. Empty: open.
  std::string metrics_basic_auth_file;
  std::string torch_device = "auto";
  std::string profiles_path;
  absl::Duration drain_timeout = absl::Seconds(20);
  // Between reporting NOT_SERVING and closing the listener: load balancers
  // and health probes (grpc.health.v1 Check) see NOT_SERVING while calls are
  // still answered.
  absl::Duration shutdown_grace = absl::ZeroDuration();
  int max_inflight = 256;
  int batch_max = 32;
  absl::Duration batch_wait = absl::Microseconds(200);
  // Which rows are batched (micro_batcher.h): by default those of a policy
  // on a GPU; on the CPU each row is scored on its own call's thread.
  MicroBatching micro_batching = MicroBatching::kAuto;
  size_t max_conversations = 100000;
  absl::Duration conversation_idle = absl::Minutes(30);
  std::string report_log;  // empty: Report answers FAILED_PRECONDITION
  // Reports queued for or being written by the log's writer thread; beyond:
  // RESOURCE_EXHAUSTED.
  int report_queue_max = 1024;
  // Longest record, as its whole log line; beyond: INVALID_ARGUMENT.
  int report_max_record_bytes = 64 << 10;
  int64_t report_rotate_bytes = int64_t{256} << 20;   // 0: never rotate
  int64_t report_min_free_bytes = int64_t{64} << 20;  // 0: no floor
  // The decision log (docs/decision_log.md); empty: none. Records wait in
  // a queue of decision_log_queue_max (beyond: dropped and counted, Decide
  // never waits) for the writer's group commit.
  std::string decision_log;
  int decision_log_queue_max = 4096;
  int64_t decision_log_rotate_bytes = int64_t{256} << 20;   // 0: never rotate
  int decision_log_keep_files = 0;                          // rotated files kept; 0: all
  int64_t decision_log_min_free_bytes = int64_t{64} << 20;  // 0: no floor
  // At most one write and fdatasync per interval (AppendLogOptions::
  // commit_interval): nobody waits for a decision record.
  absl::Duration decision_log_commit_interval = absl::Milliseconds(100);
  // The worker takes its queue at most once per interval
  // (DecisionLoggerOptions::gather_interval).
  absl::Duration decision_log_gather_interval = absl::Milliseconds(20);
  // Exploration: "none", "epsilon:E" or "softmax:T" (exploration.h).
  std::string explore = "none";
  // A second artifact that scores every answered request off the request
  // path (its view goes to the decision log and the shadow metrics); empty:
  // none. Watched and reloaded like the serving policy.
  std::string shadow_policy;
  // A fleet target, monitored (and with fleet.pi, held) online
  // (fleet_control.h); fleet.target.kind kNone: none.
  FleetControlOptions fleet;
  absl::Duration watch_interval = absl::Seconds(1);
  std::string tls_cert, tls_key, tls_client_ca;
  RequestLimits limits;
  // Transport limit; larger messages get RESOURCE_EXHAUSTED from gRPC itself.
  int max_message_bytes = 4 << 20;
  // Connections older than this get a GOAWAY (then max_connection_age_grace
  // to finish their calls), so that round_robin clients re-resolve DNS and
  // reach pods added since. Zero: connections live for ever.
  absl::Duration max_connection_age = absl::ZeroDuration();
  absl::Duration max_connection_age_grace = absl::Seconds(30);
  // gRPC server reflection (grpc.reflection.v1alpha): grpcurl and grpc_cli
  // can list and call the services without the .proto files.
  bool reflection = true;
};

// "HOST:PORT" (HOST a name, an IPv4 address or a bracketed IPv6 address; PORT
// in [0, 65535], 0 picks one), or for `flag` = "listen" also "unix:PATH".
// The error names the flag, the value and the rule.
absl::Status ValidateListenAddress(const std::string& flag, const std::string& address);

class ServerApp {
 public:
  // Listens and serves. A policy that fails to load at start is not fatal:
  // health stays NOT_SERVING and Decide UNAVAILABLE until the watched file
  // becomes loadable (or SIGHUP). The report log's directory is created
  // when missing; a log that cannot be opened is fatal (Reports would
  // otherwise be refused until a restart).
  static absl::StatusOr<std::unique_ptr<ServerApp>> Start(const ServerOptions& options);
  ~ServerApp();

  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }  // -1 when disabled
  bool policy_loaded() const;
  // Reloads on the calling thread. `wait` false: UNAVAILABLE rather than
  // wait behind a reload already running (perhaps stuck on a hung disk).
  absl::Status Reload(const std::string& reason, bool wait = true);
  // PolicyHolder::RequestReload: the reload runs on the watcher thread, so
  // the caller (the signal loop, which must go on to read SIGTERM) never
  // blocks in its read.
  absl::Status RequestReload(const std::string& reason);
  // NOT_SERVING; after the grace period new Decides get UNAVAILABLE while
  // admitted ones finish (until the drain deadline); then the listener
  // closes, idle connections are cut, the background work and /metrics
  // stop. A policy reload stuck in a read (a hung disk) is not waited for
  // past the drain deadline: it is logged (policy_watcher_stuck) and its
  // holder, with what a late reload could touch, outlives the app.
  // Idempotent.
  void Shutdown();
  Metrics& metrics() { return *metrics_; }

 private:
  ServerApp() = default;
  void SetServing(bool serving);
  void Housekeeping();

  ServerOptions options_;
  int port_ = 0, metrics_port_ = -1;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<PolicyHolder> policies_;
  std::unique_ptr<ConversationStore> store_;
  std::unique_ptr<MicroBatcher> batcher_;
  std::unique_ptr<GroupCommitter> reports_;
  std::unique_ptr<PolicyHolder> shadow_;
  std::unique_ptr<DecisionLogger> decision_log_;
  std::unique_ptr<Decider> decider_;
  std::unique_ptr<OffloaderService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::atomic<bool> shutting_down_{false};
  bool watcher_stuck_ = false;  // Shutdown could not join a policy watcher
  std::mutex shutdown_mu_;
  bool shut_down_ = false;
  std::mutex housekeeping_mu_;
  std::condition_variable housekeeping_cv_;
  bool stop_housekeeping_ = false;
  std::thread housekeeping_;
};

}  // namespace lcio::server
