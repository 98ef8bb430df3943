// lcio::Client: a small client for the lcio.v1.Offloader service with
// per-attempt deadlines and retries with jittered exponential backoff.
//
// Retried: GetPolicy and Health (read-only), and Decide, which the server
// makes idempotent per (conversation_id, turn_index): repeating the last
// decided turn's exact request returns the same decision. Retried codes:
// UNAVAILABLE, RESOURCE_EXHAUSTED (but not a message over gRPC's size
// limit, which no retry can fix), ABORTED and DEADLINE_EXCEEDED of one
// attempt. After UNAVAILABLE a retry first waits for the channel to connect,
// at most one reconnect backoff (max_reconnect_backoff, 1 s, and gRPC's 20%
// jitter) and its attempt's timeout: a server restarting on its port answers
// once it is back (without waiting, the retries' backoff of tens of
// milliseconds ran out long before gRPC reconnected), and a server that is
// down fails the call in about 2.5 s with the defaults when its host refuses
// the connection; where the network drops the packets instead, each attempt
// runs to its timeout (15 s with the defaults: bound it with total_timeout).
// Report is not retried (an append; a
// duplicate would be harmless for the exporter, which keeps the last record of a turn, but the
// caller decides).
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lcio/v1/offloader.grpc.pb.h"

namespace grpc {
class Channel;
}

namespace lcio {

struct ClientOptions {
  std::string target = "127.0.0.1:50051";
  // TLS when tls_ca is set (PEM file of the CA that signed the server);
  // mutual TLS when tls_cert and tls_key are set too.
  std::string tls_ca, tls_cert, tls_key;
  // Name the server certificate must carry when it differs from the target's
  // host (e.g. tests connecting to 127.0.0.1 with a "localhost" certificate).
  std::string tls_server_name;
  absl::Duration timeout = absl::Seconds(5);  // per attempt, > 0
  int max_attempts = 3;                       // for retried calls
  // The whole call, retries and their waits included: each attempt's
  // deadline is cut to it, and no attempt starts past it. Infinite: only
  // the attempts bound it (max_attempts x timeout, and the backoff).
  absl::Duration total_timeout = absl::InfiniteDuration();
  absl::Duration initial_backoff = absl::Milliseconds(20);
  // gRPC load-balancing policy over the addresses the target resolves to
  // ("dns:///lcio.svc:50051", "ipv4:10.0.0.1:50051,10.0.0.2:50051"):
  // round_robin spreads calls over every server; gRPC's own default,
  // pick_first, would send them all to one.
  std::string load_balancing_policy = "round_robin";
  absl::Duration max_backoff = absl::Seconds(1);
  // gRPC's reconnect backoff grows to this at most (gRPC's default, 120 s,
  // would leave a restarted server unreached for minutes).
  absl::Duration max_reconnect_backoff = absl::Seconds(1);
};

class Client {
 public:
  static absl::StatusOr<std::unique_ptr<Client>> Create(const ClientOptions& options);

  absl::Status Decide(const v1::DecideRequest& request, v1::DecideResponse* response) const;
  absl::Status Report(const v1::ReportRequest& request, v1::ReportResponse* response) const;
  absl::Status GetPolicy(v1::PolicyInfo* info) const;
  // grpc.health.v1 Check: "SERVING", "NOT_SERVING", ... ("" = whole server).
  absl::StatusOr<std::string> Health(const std::string& service = "") const;

  // One attempt, no retry (load generators measure exactly one call).
  absl::Status DecideOnce(const v1::DecideRequest& request, v1::DecideResponse* response,
                          absl::Duration timeout) const;

  const ClientOptions& options() const { return options_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

 private:
  Client() = default;
  // call(attempt timeout) -> status, retried as described above.
  template <typename Call>
  absl::Status WithRetries(Call call) const;

  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Offloader::Stub> stub_;
};

// Canonical JSON (proto3 JSON mapping, field names as in the .proto).
std::string ToJson(const google::protobuf::Message& message, bool pretty = true);
absl::Status FromJson(const std::string& json, google::protobuf::Message* message);
// A JSON string literal (quoted, escaped).
std::string JsonString(const std::string& text);

}  // namespace lcio
