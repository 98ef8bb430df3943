#include "lcio/client/client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "lcio/data/atomic_file.h"
#include "lcio/data/json_depth.h"
#include "lcio/data/message.h"

namespace lcio {
namespace {

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

absl::StatusOr<std::string> ReadPem(const std::string& flag, const std::string& path) {
  return data::ReadRegularFile(path, absl::StrCat(flag, " = \"", data::Shorten(path, 256), "\""),
                               "a PEM file");
}

bool Retryable(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kResourceExhausted:
      // gRPC's own "Received/Sent message larger than max" and "received
      // (initial/trailing) metadata size exceeds (hard/soft) limit" (a long
      // status message; the wording varies by gRPC version): as large the
      // next time.
      return !absl::StrContains(status.message(), "larger than max") &&
             !absl::StrContains(status.message(), "metadata size exceeds");
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kDeadlineExceeded:
      return true;
    default:
      return false;
  }
}

void SetDeadline(grpc::ClientContext* context, absl::Duration timeout) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Create(const ClientOptions& options) {
  if (options.target.empty()) return absl::InvalidArgumentError("target is empty");
  if (options.max_attempts < 1)
    return absl::InvalidArgumentError(
        absl::StrCat("max_attempts = ", options.max_attempts, ": must be >= 1"));
  // A timeout of 0 fails every attempt with DEADLINE_EXCEEDED, each retried.
  for (const auto& [name, value] :
       {std::pair{"timeout", options.timeout}, {"total_timeout", options.total_timeout}})
    if (value <= absl::ZeroDuration())
      return absl::InvalidArgumentError(
          absl::StrCat(name, " = ", absl::FormatDuration(value), ": must be > 0"));
  for (const auto& [name, value] : {std::pair{"initial_backoff", options.initial_backoff},
                                    {"max_backoff", options.max_backoff},
                                    {"max_reconnect_backoff", options.max_reconnect_backoff}})
    if (value < absl::ZeroDuration() || value == absl::InfiniteDuration())
      return absl::InvalidArgumentError(
          absl::StrCat(name, " = ", absl::FormatDuration(value), ": must be finite and >= 0"));
  std::unique_ptr<Client> client(new Client());
  client->options_ = options;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  grpc::ChannelArguments arguments;
  if (!options.tls_ca.empty()) {
    grpc::SslCredentialsOptions ssl;
    auto ca = ReadPem("tls_ca", options.tls_ca);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    if (!options.tls_cert.empty() || !options.tls_key.empty()) {
      auto cert = ReadPem("tls_cert", options.tls_cert);
      if (!cert.ok()) return cert.status();
      auto key = ReadPem("tls_key", options.tls_key);
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    credentials = grpc::SslCredentials(ssl);
    if (!options.tls_server_name.empty())
      arguments.SetSslTargetNameOverride(options.tls_server_name);
  } else {
    if (!options.tls_cert.empty() || !options.tls_key.empty() || !options.tls_server_name.empty())
      return absl::InvalidArgumentError(
          "tls_cert, tls_key and tls_server_name need tls_ca: without it the channel is "
          "plaintext");
    credentials = grpc::InsecureChannelCredentials();
  }
  if (!options.load_balancing_policy.empty())
    arguments.SetLoadBalancingPolicyName(options.load_balancing_policy);
  // Connections of its own: from gRPC's process-wide pool a new Client would
  // inherit the reconnect backoff of another channel's dead connection to
  // the same address, and round_robin fails calls at once while every
  // connection is in that backoff (a server restarted on the same port).
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
                   std::max<int64_t>(1, absl::ToInt64Milliseconds(options.max_reconnect_backoff)));
  client->channel_ = grpc::CreateCustomChannel(options.target, credentials, arguments);
  client->stub_ = v1::Offloader::NewStub(client->channel_);
  return client;
}

template <typename Call>
absl::Status Client::WithRetries(Call call) const {
  thread_local std::mt19937_64 rng(std::random_device{}());
  const absl::Time end = absl::Now() + options_.total_timeout;
  absl::Duration backoff = options_.initial_backoff;
  absl::Status status;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    status = call(std::min(options_.timeout, end - absl::Now()));
    if (status.ok() || !Retryable(status) || attempt == options_.max_attempts) break;
    // Full jitter: sleep uniformly in [0, backoff].
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    absl::SleepFor(std::min(backoff * unit(rng), end - absl::Now()));
    backoff = std::min(backoff * 2, options_.max_backoff);
    // Not connected: wait for the channel rather than fail the next attempt
    // at once; if it does not connect, that attempt fails. Bounded by one
    // reconnect backoff (gRPC jitters it by 20%): a server back by then is
    // connected, and one that is not back fails the call in seconds, not
    // max_attempts x timeout.
    if (status.code() == absl::StatusCode::kUnavailable)
      channel_->WaitForConnected(
          absl::ToChronoTime(std::min({absl::Now() + options_.timeout,
                                       absl::Now() + options_.max_reconnect_backoff * 1.25, end})));
    if (absl::Now() >= end) break;
  }
  return status;
}

absl::Status Client::DecideOnce(const v1::DecideRequest& request, v1::DecideResponse* response,
                                absl::Duration timeout) const {
  grpc::ClientContext context;
  SetDeadline(&context, timeout);
  return FromGrpc(stub_->Decide(&context, request, response));
}

absl::Status Client::Decide(const v1::DecideRequest& request, v1::DecideResponse* response) const {
  return WithRetries([&](absl::Duration timeout) {
    response->Clear();
    return DecideOnce(request, response, timeout);
  });
}

absl::Status Client::Report(const v1::ReportRequest& request, v1::ReportResponse* response) const {
  grpc::ClientContext context;
  SetDeadline(&context, std::min(options_.timeout, options_.total_timeout));
  return FromGrpc(stub_->Report(&context, request, response));
}

absl::Status Client::GetPolicy(v1::PolicyInfo* info) const {
  return WithRetries([&](absl::Duration timeout) {
    grpc::ClientContext context;
    SetDeadline(&context, timeout);
    info->Clear();
    return FromGrpc(stub_->GetPolicy(&context, v1::GetPolicyRequest(), info));
  });
}

absl::StatusOr<std::string> Client::Health(const std::string& service) const {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckResponse response;
  absl::Status status = WithRetries([&](absl::Duration timeout) {
    grpc::ClientContext context;
    SetDeadline(&context, timeout);
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    return FromGrpc(health->Check(&context, request, &response));
  });
  if (!status.ok()) return status;
  return grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status());
}

std::string ToJson(const google::protobuf::Message& message, bool pretty) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = pretty;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}";
  return out;
}

absl::Status FromJson(const std::string& json, google::protobuf::Message* message) {
  if (absl::Status depth = data::CheckJsonDepth(json, "request"); !depth.ok()) return depth;
  google::protobuf::util::JsonParseOptions options;
  const auto status = google::protobuf::util::JsonStringToMessage(json, message, options);
  if (!status.ok())
    return absl::InvalidArgumentError(absl::StrCat("JSON: ", status.message().as_string()));
  return absl::OkStatus();
}

std::string JsonString(const std::string& text) {
  google::protobuf::Value value;
  value.set_string_value(text);
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(value, &out).ok()) return "\"\"";
  return out;
}

}  // namespace lcio
