#include "lcio/client/client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

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

bool Retryable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kResourceExhausted ||
         code == absl::StatusCode::kAborted || code == absl::StatusCode::kDeadlineExceeded;
}

void SetDeadline(grpc::ClientContext* context, absl::Duration timeout) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Create(const ClientOptions& options) {
  if (options.target.empty()) return absl::InvalidArgumentError("target is empty");
  if (options.max_attempts < 1) return absl::InvalidArgumentError("max_attempts must be >= 1");
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
    if (!options.tls_cert.empty() || !options.tls_key.empty())
      return absl::InvalidArgumentError("tls_cert/tls_key need tls_ca");
    credentials = grpc::InsecureChannelCredentials();
  }
  if (!options.load_balancing_policy.empty())
    arguments.SetLoadBalancingPolicyName(options.load_balancing_policy);
  // Connections of its own: from gRPC's process-wide pool a new Client would
  // inherit the reconnect backoff of another channel's dead connection to
  // the same address, and round_robin fails calls at once while every
  // connection is in that backoff (a server restarted on the same port).
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  client->channel_ = grpc::CreateCustomChannel(options.target, credentials, arguments);
  client->stub_ = v1::Offloader::NewStub(client->channel_);
  return client;
}

template <typename Call>
absl::Status Client::WithRetries(Call call) const {
  thread_local std::mt19937_64 rng(std::random_device{}());
  absl::Duration backoff = options_.initial_backoff;
  absl::Status status;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    status = call();
    if (status.ok() || !Retryable(status.code()) || attempt == options_.max_attempts) break;
    // Full jitter: sleep uniformly in [0, backoff].
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    absl::SleepFor(backoff * unit(rng));
    backoff = std::min(backoff * 2, options_.max_backoff);
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
  return WithRetries([&] {
    response->Clear();
    return DecideOnce(request, response, options_.timeout);
  });
}

absl::Status Client::Report(const v1::ReportRequest& request, v1::ReportResponse* response) const {
  grpc::ClientContext context;
  SetDeadline(&context, options_.timeout);
  return FromGrpc(stub_->Report(&context, request, response));
}

absl::Status Client::GetPolicy(v1::PolicyInfo* info) const {
  return WithRetries([&] {
    grpc::ClientContext context;
    SetDeadline(&context, options_.timeout);
    info->Clear();
    return FromGrpc(stub_->GetPolicy(&context, v1::GetPolicyRequest(), info));
  });
}

absl::StatusOr<std::string> Client::Health(const std::string& service) const {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckResponse response;
  absl::Status status = WithRetries([&] {
    grpc::ClientContext context;
    SetDeadline(&context, options_.timeout);
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
