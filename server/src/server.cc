#include "lcio/server/server.h"

#include <dlfcn.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "lcio/data/atomic_file.h"
#include "lcio/data/message.h"
#include "lcio/server/conversation_store.h"
#include "lcio/server/decider.h"
#include "lcio/server/decision_logger.h"
#include "lcio/server/exploration.h"
#include "lcio/server/log.h"
#include "lcio/server/metrics.h"
#include "lcio/server/micro_batcher.h"
#include "lcio/server/policy_holder.h"
#include "lcio/server/report_log.h"
#include "lcio/v1/offloader.grpc.pb.h"
#include "lcio/version.h"

namespace lcio::server {
namespace {

constexpr const char* kServiceName = "lcio.v1.Offloader";
// Shutdown: how long no Decide may have arrived before the listener closes;
// the longest wait for that quiet, and for connections to go after it.
constexpr absl::Duration kQuietBeforeClose = absl::Milliseconds(100);
constexpr absl::Duration kCloseWindow = absl::Seconds(1);

// The malloc this process runs on (LCIO_SERVER_MALLOC, or a preload):
// tcmalloc's malloc is its tc_malloc, so the two resolve to one address only
// where tcmalloc's replaced glibc's.
const char* AllocatorName() {
  void* tc_malloc = dlsym(RTLD_DEFAULT, "tc_malloc");
  return tc_malloc != nullptr && dlsym(RTLD_DEFAULT, "malloc") == tc_malloc ? "tcmalloc" : "system";
}

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), BoundMessage(status.message()));
}

// Requests arrive as bytes and are parsed here rather than by gRPC, which
// answers a request it cannot parse with UNIMPLEMENTED, no message, and
// without calling the service (so nothing counts it). proto3 refuses
// invalid UTF-8 in string fields; protobuf says which field in a log
// message, captured here for the status.
template <typename Message>
absl::Status ParseRequest(const grpc::ByteBuffer& bytes, Message* message) {
  // A request in one slice (the usual case) is parsed where it lies.
  grpc::Slice single;
  std::string data;
  const char* begin = nullptr;
  size_t size = 0;
  if (bytes.TrySingleSlice(&single).ok()) {
    begin = reinterpret_cast<const char*>(single.begin());
    size = single.size();
  } else {
    std::vector<grpc::Slice> slices;
    if (bytes.Dump(&slices).ok())
      for (const grpc::Slice& slice : slices)
        data.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    begin = data.data();
    size = data.size();
  }
  ProtobufErrorCapture capture;
  if (message->ParseFromArray(begin, static_cast<int>(size))) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("request (", size, " bytes) is not a valid ", message->GetTypeName(), ": ",
                   capture.text().empty() ? "malformed or truncated protobuf" : capture.text()));
}

// A Decide call's messages, alive until it is finished (the decision may
// complete on the batcher's thread). They live on an arena whose first block
// is part of the call: one allocation for the call instead of one per
// sub-message and string, and no destructor walk at the end.
struct DecideCall {
  static constexpr size_t kArenaBlockBytes = 4096;
  static google::protobuf::ArenaOptions ArenaOptionsFor(char* block) {
    google::protobuf::ArenaOptions options;
    options.initial_block = block;
    options.initial_block_size = kArenaBlockBytes;
    return options;
  }
  alignas(16) char arena_block[kArenaBlockBytes];
  google::protobuf::Arena arena{ArenaOptionsFor(arena_block)};
  v1::DecideRequest& request = *google::protobuf::Arena::CreateMessage<v1::DecideRequest>(&arena);
  v1::DecideResponse& response =
      *google::protobuf::Arena::CreateMessage<v1::DecideResponse>(&arena);
  std::string serialized;  // the response's bytes when the decider already made them
};

// A Report call's answer, alive until the log's writer answers it: its ids,
// not the request, whose prompt and answer can take megabytes for as long as
// the disk hangs.
struct ReportCall {
  std::string conversation_id;
  std::string decision_id;
  int32_t turn_index = 0;
  v1::ReportResponse response;
};

// Serialized straight into the outgoing buffer, as gRPC's own (typed)
// handlers do.
template <typename Message>
void SetResponse(const Message& message, grpc::ByteBuffer* out) {
  bool own_buffer = false;
  grpc::SerializationTraits<Message>::Serialize(message, out, &own_buffer).IgnoreError();
}

absl::StatusOr<std::string> ReadFile(const std::string& flag, const std::string& path) {
  // A regular file: /dev/zero would be read without end.
  return data::ReadRegularFile(path, absl::StrCat(flag, " = \"", data::Shorten(path, 256), "\""),
                               "a file");
}

// The client certificate's identity (subject, else its SAN or CN entries),
// which stored conversations are bound to under mutual TLS.
std::string PeerIdentity(const grpc::CallbackServerContext& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return "";
  std::vector<grpc::string_ref> values = auth->FindPropertyValues("x509_subject");
  if (values.empty()) values = auth->GetPeerIdentity();
  std::string identity;
  for (const grpc::string_ref& v : values) {
    if (!identity.empty()) identity.push_back('\n');
    identity.append(v.data(), v.size());
  }
  return identity;
}

// libgrpc++_reflection adds its plugin to every ServerBuilder once the
// library is loaded, whatever --reflection says: this option takes it out.
// Threads for the synchronous services (reflection): its pollers and its
// open streams together.
constexpr int kMaxSyncServiceThreads = 16;
// What one connection may hold open at once: a client that never reads its
// responses (an HTTP/2 window of 0) or never finishes sending held ~17 KB per
// stream, without limit. Far above what a channel multiplexes in practice.
constexpr int kMaxStreamsPerConnection = 1024;

class WithoutReflection final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                  [](const std::unique_ptr<grpc::ServerBuilderPlugin>& plugin) {
                                    return plugin->name() == "proto_server_reflection";
                                  }),
                   plugins->end());
  }
};

// A log's missing directory is made, each new directory's entry synced in
// its parent: neither log is a reason not to start. `flag` names the log
// (report_log, decision_log) in the refusal and the event
// (<flag>_directory_created).
absl::Status MakeLogDirectory(const std::string& flag, const std::string& path) {
  auto created = CreateLogDirectory(path);
  if (!created.ok())
    return absl::FailedPreconditionError(
        absl::StrCat(flag, " = \"", BoundMessage(path, 256),
                     "\": its directory: ", BoundMessage(created.status().message(), 600)));
  if (*created)
    LogLine(LogLevel::kInfo, absl::StrCat(flag, "_directory_created"))
        .Str("path", std::filesystem::path(path).parent_path().string());
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateListenAddress(const std::string& flag, const std::string& address) {
  if (flag == "listen" && absl::StartsWith(address, "unix:") && address.size() > 5)
    return absl::OkStatus();
  // The metrics endpoint's HTTP server may lack IPv6 (Debian 12's does).
  const bool ipv6 = flag == "listen" || Metrics::ServesIpv6();
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, " = \"", BoundMessage(address, 128), "\": ", why,
        "; the rule: HOST:PORT with PORT in [0, 65535] (0 picks a free port), e.g. "
        "0.0.0.0:50051, 127.0.0.1:0",
        ipv6 ? ", [::]:50051" : " (an IPv4 HOST)", flag == "listen" ? " or unix:PATH" : ""));
  };
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return bad("no HOST: part");
  const std::string host = address.substr(0, colon), port = address.substr(colon + 1);
  if (host.empty()) return bad("empty HOST");
  if (host.front() == '[' ? host.back() != ']' : host.find(':') != std::string::npos)
    return bad("an IPv6 HOST must be in brackets");
  if (host.front() == '[' && !ipv6)
    return bad("this build's HTTP server for metrics (CivetWeb) has no IPv6");
  for (char ch : host)
    if (absl::ascii_isspace(static_cast<unsigned char>(ch)) || ch == '/')
      return bad("HOST has a space or '/'");
  int number = -1;
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char ch) { return ch >= '0' && ch <= '9'; }) ||
      !absl::SimpleAtoi(port, &number) || number > 65535)
    return bad("PORT is not a number in [0, 65535]");
  return absl::OkStatus();
}

// A Decide's reactor, counted from the call's start until gRPC is done with
// it: until its response is delivered (or the call cancelled). A client that
// never reads (an HTTP/2 window of 0) left finished Decides holding ~17 KB
// each, outside --max_inflight, without limit.
class CountedReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit CountedReactor(std::atomic<int>* open) : open_(open) { open_->fetch_add(1); }
  void OnDone() override {
    open_->fetch_sub(1);
    delete this;
  }

 private:
  std::atomic<int>* open_;
};

// Open Decides (admitted or not, decided or not, response not yet delivered)
// beyond this many times --max_inflight are refused at once.
constexpr int kOpenDecidesPerInflight = 4;

using RawService =
    v1::Offloader::WithRawCallbackMethod_Decide<v1::Offloader::WithRawCallbackMethod_Report<
        v1::Offloader::WithRawCallbackMethod_GetPolicy<v1::Offloader::Service>>>;

class OffloaderService final : public RawService {
 public:
  // report_write_failed lines a second, at most (a failing disk fails
  // every Report of every batch).
  static constexpr int kWriteFailedLinesPerSecond = 10;

  OffloaderService(const ServerOptions& options, Decider* decider, PolicyHolder* policies,
                   PolicyHolder* shadow, GroupCommitter* reports, Metrics* metrics,
                   const std::atomic<bool>* shutting_down)
      : options_(options),
        decider_(decider),
        policies_(policies),
        shadow_(shadow),
        reports_(reports),
        metrics_(metrics),
        shutting_down_(shutting_down) {}

  grpc::ServerUnaryReactor* Decide(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* raw, grpc::ByteBuffer* out) override {
    const absl::Time start = absl::Now();
    last_arrival_ns_.store(absl::ToUnixNanos(start));
    grpc::ServerUnaryReactor* reactor = new CountedReactor(&open_decides_);
    auto call = std::make_shared<DecideCall>();
    auto finish = [this, reactor, start, call, out](const absl::Status& status) {
      metrics_->CountDecide(static_cast<int>(status.code()),
                            absl::ToDoubleSeconds(absl::Now() - start));
      if (status.ok()) {
        if (!call->serialized.empty()) {
          grpc::Slice bytes(call->serialized);
          *out = grpc::ByteBuffer(&bytes, 1);
        } else {
          SetResponse(call->response, out);
        }
      }
      reactor->Finish(ToGrpc(status));
    };
    // Checked before parsing: a message of 4 MB of empty views took ~100 ms
    // of a callback thread to parse, starving other callers.
    const size_t limit = static_cast<size_t>(options_.limits.max_prompt_bytes) + (64 << 10);
    if (const size_t bytes = raw->Length(); bytes > limit) {
      finish(absl::InvalidArgumentError(absl::StrCat("request has ", bytes, " bytes: at most ",
                                                     limit, " (--max_prompt_bytes + 64 KiB)")));
      return reactor;
    }
    if (absl::Status parsed = ParseRequest(*raw, &call->request); !parsed.ok()) {
      decider_->LogRejected(parsed, "", 0);
      finish(parsed);
      return reactor;
    }
    if (open_decides_.load() > OpenCallsAllowed()) {
      finish(absl::ResourceExhaustedError(absl::StrCat(
          "server holds ", kOpenDecidesPerInflight, " x --max_inflight (", options_.max_inflight,
          ") Decides whose responses are not yet delivered; retry later")));
      return reactor;
    }
    const v1::DecideRequest* request = &call->request;
    v1::DecideResponse* response = &call->response;
    const int inflight = inflight_.fetch_add(1) + 1;
    if (inflight > options_.max_inflight) {
      inflight_.fetch_sub(1);
      finish(absl::ResourceExhaustedError(absl::StrCat("server at its in-flight limit (",
                                                       options_.max_inflight,
                                                       ", --max_inflight); retry later")));
      return reactor;
    }
    metrics_->AddInflight(1);
    auto done = [this, finish](const absl::Status& status) {
      inflight_.fetch_sub(1);
      metrics_->AddInflight(-1);
      finish(status);
    };
    if (shutting_down_->load()) {
      done(absl::UnavailableError("server is shutting down"));
      return reactor;
    }
    if (context->IsCancelled()) {
      done(absl::CancelledError("call cancelled before it was decided"));
      return reactor;
    }
    const absl::Time deadline = absl::FromChrono(context->deadline());
    decider_->Decide(*request, response, deadline, std::move(done),
                     options_.tls_client_ca.empty() ? std::string() : PeerIdentity(*context),
                     &call->serialized);
    return reactor;
  }

  int inflight() const { return inflight_.load(); }
  absl::Time last_arrival() const { return absl::FromUnixNanos(last_arrival_ns_.load()); }

  // The record is queued for the log's writer thread, which finishes the
  // call once its batch is durable: no gRPC thread waits for the disk, so a
  // slow disk delays Reports, never Decides.
  grpc::ServerUnaryReactor* Report(grpc::CallbackServerContext* /*context*/,
                                   const grpc::ByteBuffer* raw, grpc::ByteBuffer* out) override {
    grpc::ServerUnaryReactor* reactor = new CountedReactor(&open_reports_);
    // Reports queued or answered but not yet delivered, beyond what the
    // queue holds and what clients may fairly leave unread.
    if (open_reports_.load() > options_.report_queue_max + OpenCallsAllowed()) {
      metrics_->CountReportRejected(Metrics::ReportReject::kUndelivered);
      reactor->Finish(ToGrpc(absl::ResourceExhaustedError(
          "server holds too many Reports not yet answered or delivered; retry later")));
      return reactor;
    }
    if (reports_ == nullptr) {
      reactor->Finish(ToGrpc(absl::FailedPreconditionError(
          "Report is disabled: the server runs without --report_log")));
      return reactor;
    }
    // A Report's record holds little beside its prompt and answer: a larger
    // message cannot fit a record, and is refused before it is parsed.
    const size_t limit = static_cast<size_t>(options_.report_max_record_bytes) + (4 << 10);
    if (const size_t bytes = raw->Length(); bytes > limit) {
      reactor->Finish(ToGrpc(
          absl::InvalidArgumentError(absl::StrCat("request has ", bytes, " bytes: at most ", limit,
                                                  " (--report_max_record_bytes + 4 KiB)"))));
      return reactor;
    }
    v1::ReportRequest request;
    if (absl::Status parsed = ParseRequest(*raw, &request); !parsed.ok()) {
      reactor->Finish(ToGrpc(parsed));
      return reactor;
    }
    absl::StatusOr<std::string> line = EncodeReport(request);
    if (!line.ok()) {
      reactor->Finish(ToGrpc(line.status()));
      return reactor;
    }
    auto call = std::make_shared<ReportCall>();
    call->conversation_id = request.conversation_id();
    call->decision_id = request.decision_id();
    call->turn_index = request.turn_index();
    absl::Status queued = reports_->Submit(
        *std::move(line), [this, reactor, call, out](absl::StatusOr<uint64_t> sequence) {
          FinishReport(reactor, *call, sequence, out);
        });
    if (!queued.ok()) {
      metrics_->CountReportRejected(queued.code() == absl::StatusCode::kResourceExhausted
                                        ? Metrics::ReportReject::kQueueFull
                                        : Metrics::ReportReject::kShutdown);
      reactor->Finish(ToGrpc(queued));
    }
    return reactor;
  }

  grpc::ServerUnaryReactor* GetPolicy(grpc::CallbackServerContext* /*context*/,
                                      const grpc::ByteBuffer* raw, grpc::ByteBuffer* out) override {
    grpc::ServerUnaryReactor* reactor = new CountedReactor(&open_other_);
    if (open_other_.load() > OpenCallsAllowed()) {
      reactor->Finish(ToGrpc(absl::ResourceExhaustedError(
          "server holds too many GetPolicy responses not yet delivered; retry later")));
      return reactor;
    }
    v1::GetPolicyRequest request;
    if (absl::Status parsed = ParseRequest(*raw, &request); !parsed.ok()) {
      reactor->Finish(ToGrpc(parsed));
      return reactor;
    }
    std::shared_ptr<const ServingPolicy> policy = policies_->Get();
    if (policy == nullptr) {
      reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "no policy is loaded yet"));
      return reactor;
    }
    v1::PolicyInfo info = policy->info();
    info.set_server_version(LCIO_VERSION);
    if (std::shared_ptr<const ServingPolicy> shadow = shadow_ ? shadow_->Get() : nullptr)
      info.set_shadow_policy_version(shadow->version());
    SetResponse(info, out);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  // Validates and encodes the record (the log line).
  absl::StatusOr<std::string> EncodeReport(const v1::ReportRequest& request) {
    std::shared_ptr<const ServingPolicy> policy = policies_->Get();
    if (policy == nullptr) return absl::UnavailableError("no policy is loaded yet");
    auto parsed = ParseReportRequest(request, options_.limits, policy->spec());
    if (!parsed.ok()) return parsed.status();
    const PolicySpec& spec = policy->spec();
    ReportRecord record;
    record.conversation_id = request.conversation_id();
    record.turn_index = request.turn_index();
    record.decision_id = request.decision_id();
    record.prompt = request.prompt();
    record.task = request.task();
    record.cloud = parsed->cloud;
    record.uploaded_views = parsed->uploaded_views;
    record.view_names = spec.view_names;
    record.association = parsed->association;
    record.answer = request.answer();
    record.score = request.score();
    record.interaction_time_s = request.interaction_time_s();
    record.usage_cost_usd = request.usage_cost_usd();
    record.tasks = spec.tasks;
    record.policy_version = policy->version();
    record.received_utc =
        absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone());
    std::string line = EncodeReportLine(record);
    if (line.size() > static_cast<size_t>(options_.report_max_record_bytes))
      return absl::InvalidArgumentError(absl::StrCat(
          "report record has ", line.size(), " bytes as a log line (prompt ",
          request.prompt().size(), ", answer ", request.answer().size(), " bytes): at most ",
          options_.report_max_record_bytes, " (--report_max_record_bytes)"));
    return line;
  }

  // On the log's writer thread (or at shutdown), once the record's batch is
  // durable or has failed.
  void FinishReport(grpc::ServerUnaryReactor* reactor, ReportCall& call,
                    const absl::StatusOr<uint64_t>& sequence, grpc::ByteBuffer* out) {
    if (!sequence.ok()) {
      metrics_->CountReportRejected(shutting_down_->load() ? Metrics::ReportReject::kShutdown
                                    : sequence.status().code() ==
                                            absl::StatusCode::kResourceExhausted
                                        ? Metrics::ReportReject::kDiskSpace
                                        : Metrics::ReportReject::kWriteFailed);
      // A failed batch fails every Report in it, on the writer thread: one
      // line each would make stderr (a pipe that can fill) the next stall.
      int64_t suppressed = 0;
      if (write_failed_log_.Allow(&suppressed)) {
        LogLine line(LogLevel::kError, "report_write_failed");
        line.Str("error", BoundMessage(sequence.status().ToString()));
        if (suppressed > 0) line.Int("suppressed", suppressed);
      }
      reactor->Finish(ToGrpc(sequence.status()));
      return;
    }
    metrics_->CountReport();
    call.response.set_record(*sequence);
    LogLine(LogLevel::kDebug, "report")
        .Str("conversation_id", call.conversation_id)
        .Int("turn_index", call.turn_index)
        .Str("decision_id", call.decision_id)
        .Int("record", static_cast<int64_t>(*sequence));
    SetResponse(call.response, out);
    reactor->Finish(grpc::Status::OK);
  }

  // Open calls of one kind (past their reactor's start, response not yet
  // delivered) beyond which the next is refused: a client that never reads
  // its responses holds ~17 KB of server memory per call.
  int64_t OpenCallsAllowed() const {
    return int64_t{kOpenDecidesPerInflight} * options_.max_inflight;
  }

  const ServerOptions& options_;
  Decider* decider_;
  PolicyHolder* policies_;
  PolicyHolder* shadow_;  // null without --shadow_policy
  GroupCommitter* reports_;
  Metrics* metrics_;
  const std::atomic<bool>* shutting_down_;
  LogRateLimiter write_failed_log_{kWriteFailedLinesPerSecond};
  std::atomic<int> inflight_{0};
  // CountedReactor: calls not yet done with (response undelivered), by kind.
  std::atomic<int> open_decides_{0};
  std::atomic<int> open_reports_{0};
  std::atomic<int> open_other_{0};  // GetPolicy
  std::atomic<int64_t> last_arrival_ns_{0};
};

absl::StatusOr<std::unique_ptr<ServerApp>> ServerApp::Start(const ServerOptions& options) {
  // Before anything starts: a bad address is a usage error, not a shutdown.
  if (absl::Status s = ValidateListenAddress("listen", options.listen); !s.ok()) return s;
  if (!options.metrics_listen.empty())
    if (absl::Status s = ValidateListenAddress("metrics_listen", options.metrics_listen); !s.ok())
      return s;
  InstallProtobufLogHandler();
  std::unique_ptr<ServerApp> app(new ServerApp());
  app->options_ = options;
  const ServerOptions& o = app->options_;
  app->metrics_ = std::make_unique<Metrics>();
  if (!o.metrics_listen.empty()) {
    std::string basic_auth;
    if (!o.metrics_basic_auth_file.empty()) {
      auto text = ReadFile("metrics_basic_auth_file", o.metrics_basic_auth_file);
      if (!text.ok()) return text.status();
      basic_auth = text->substr(0, text->find_first_of("\r\n"));
      if (basic_auth.find(':') == std::string::npos || basic_auth.front() == ':')
        return absl::InvalidArgumentError(
            absl::StrCat("metrics_basic_auth_file = \"", o.metrics_basic_auth_file,
                         "\": its first line must be user:password with a non-empty user"));
    }
    auto port = app->metrics_->Serve(o.metrics_listen, basic_auth);
    if (!port.ok()) return port.status();
    app->metrics_port_ = *port;
  }
  if (!o.report_log.empty()) {
    ReportLogOptions log_options;
    log_options.rotate_bytes = o.report_rotate_bytes;
    log_options.min_free_bytes = o.report_min_free_bytes;
    // A log is written, so its directory is made, as a missing policy is
    // waited for: neither is a reason not to start.
    if (absl::Status s = MakeLogDirectory("report_log", o.report_log); !s.ok()) return s;
    auto writer = ReportLogWriter::Open(o.report_log, log_options);
    if (!writer.ok()) return writer.status();
    app->reports_ = std::make_unique<ReportCommitter>(*std::move(writer), o.report_queue_max);
  }
  ConversationStoreOptions store_options;
  store_options.max_conversations = o.max_conversations;
  store_options.idle_expiry = o.conversation_idle;
  app->store_ = std::make_unique<ConversationStore>(store_options);
  MicroBatcherOptions batch_options;
  batch_options.batch_max = o.batch_max;
  batch_options.batch_wait = o.batch_wait;
  batch_options.mode = o.micro_batching;
  Metrics* metrics = app->metrics_.get();
  app->batcher_ = std::make_unique<MicroBatcher>(batch_options, [metrics](const BatchStats& stats) {
    metrics->ObserveBatch(stats.size, absl::ToDoubleSeconds(stats.score_time));
  });
  PolicyHolderOptions holder_options;
  holder_options.path = o.policy_path;
  holder_options.torch_device = o.torch_device;
  holder_options.extra_profiles_path = o.profiles_path;
  holder_options.max_history_window = store_options.history_window;
  holder_options.batcher = app->batcher_.get();
  ServerApp* raw = app.get();
  app->policies_ =
      std::make_unique<PolicyHolder>(holder_options, metrics, [raw](const ServingPolicy&) {
        if (!raw->shutting_down_.load()) raw->SetServing(true);
      });
  auto explore = ExploreConfig::Parse(o.explore);
  if (!explore.ok()) return explore.status();
  if (!o.shadow_policy.empty()) {
    PolicyHolderOptions shadow_options = holder_options;
    shadow_options.path = o.shadow_policy;
    shadow_options.batcher = nullptr;  // the decision logger scores its events in its own batches
    // No metrics: the serving policy's gauges and reload counts stay its own.
    app->shadow_ = std::make_unique<PolicyHolder>(
        shadow_options, nullptr,
        [metrics](const ServingPolicy& shadow) { metrics->SetShadowPolicy(shadow.version()); });
    if (absl::Status loaded = app->shadow_->Reload("start"); !loaded.ok())
      return absl::Status(loaded.code(),
                          absl::StrCat("shadow_policy: ", BoundMessage(loaded.message())));
  }
  if (!o.decision_log.empty() || app->shadow_ != nullptr) {
    std::unique_ptr<GroupCommitter> log;
    if (!o.decision_log.empty()) {
      AppendLogOptions log_options;
      log_options.rotate_bytes = o.decision_log_rotate_bytes;
      log_options.min_free_bytes = o.decision_log_min_free_bytes;
      log_options.keep_rotated = o.decision_log_keep_files;
      log_options.commit_interval = o.decision_log_commit_interval;
      log_options.name = "decision log";
      log_options.writer_nice = DecisionLoggerOptions::kDecisionLogNice;
      log_options.drop_written_pages = true;
      log_options.min_free_flag = "--decision_log_min_free_mb";
      log_options.queue_flag = "--decision_log_queue_max";
      // As the Report log's: made here, with its entry synced (a directory
      // made by `mkdir -p` before the server started was not).
      if (absl::Status s = MakeLogDirectory("decision_log", o.decision_log); !s.ok()) return s;
      auto writer = AppendLogWriter::Open(o.decision_log, log_options);
      if (!writer.ok()) return writer.status();
      // The writer holds up to a commit interval of lines plus the batch
      // being written, and takes the worker's batches whole: a bound of one
      // worker queue would drop records at every burst.
      constexpr int64_t kWriterQueueFactor = 4;
      const int64_t writer_max = std::min<int64_t>(kWriterQueueFactor * o.decision_log_queue_max,
                                                   std::numeric_limits<int>::max());
      log = std::make_unique<GroupCommitter>(*std::move(writer), static_cast<int>(writer_max));
    }
    DecisionLoggerOptions logger_options;
    logger_options.queue_max = o.decision_log_queue_max;
    logger_options.gather_interval = o.decision_log_gather_interval;
    logger_options.explore = *explore;
    app->decision_log_ = std::make_unique<DecisionLogger>(logger_options, std::move(log),
                                                          app->shadow_.get(), metrics);
  }
  std::unique_ptr<FleetController> fleet;
  if (o.fleet.target.enabled()) {
    if (absl::Status valid = o.fleet.Validate(); !valid.ok()) return valid;
    fleet = std::make_unique<FleetController>(o.fleet, metrics);
  }
  app->decider_ = std::make_unique<Decider>(o.limits, app->policies_.get(), app->store_.get(),
                                            app->batcher_.get(), metrics, app->decision_log_.get(),
                                            *explore, std::move(fleet));
  app->service_ = std::make_unique<OffloaderService>(o, app->decider_.get(), app->policies_.get(),
                                                     app->shadow_.get(), app->reports_.get(),
                                                     metrics, &app->shutting_down_);

  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (!o.tls_cert.empty() || !o.tls_key.empty() || !o.tls_client_ca.empty()) {
    if (o.tls_cert.empty() || o.tls_key.empty())
      return absl::InvalidArgumentError("tls_cert and tls_key must be given together");
    auto cert = ReadFile("tls_cert", o.tls_cert);
    if (!cert.ok()) return cert.status();
    auto key = ReadFile("tls_key", o.tls_key);
    if (!key.ok()) return key.status();
    grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    ssl.pem_key_cert_pairs.push_back({*key, *cert});
    if (!o.tls_client_ca.empty()) {
      auto ca = ReadFile("tls_client_ca", o.tls_client_ca);
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *ca;
      ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
    }
    credentials = grpc::SslServerCredentials(ssl);
  } else {
    credentials = grpc::InsecureServerCredentials();
  }

  grpc::EnableDefaultHealthCheckService(true);
  // Process-wide and idempotent: the plugin joins every ServerBuilder made after this.
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  if (!o.reflection) builder.SetOption(std::make_unique<WithoutReflection>());
  // Reflection is a synchronous service: each open stream holds a thread,
  // and an idle client could open thousands. The quota bounds those threads
  // (a reflection call past them is refused RESOURCE_EXHAUSTED at once,
  // tested); Decide, Report, GetPolicy and
  // health are callback services and do not draw on it.
  grpc::ResourceQuota sync_threads("lcio-sync-services");
  sync_threads.SetMaxThreads(kMaxSyncServiceThreads);
  builder.SetResourceQuota(sync_threads);
  if (o.max_connection_age > absl::ZeroDuration()) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                               static_cast<int>(absl::ToInt64Milliseconds(o.max_connection_age)));
    builder.AddChannelArgument(
        GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
        static_cast<int>(absl::ToInt64Milliseconds(o.max_connection_age_grace)));
  }
  // gRPC sets SO_REUSEPORT by default: a second server on a taken port would
  // start and share the connections with the first. A taken port is fatal.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, kMaxStreamsPerConnection);
  builder.AddListeningPort(o.listen, credentials, &app->port_);
  builder.RegisterService(app->service_.get());
  builder.SetMaxReceiveMessageSize(o.max_message_bytes);
  app->server_ = builder.BuildAndStart();
  if (app->server_ == nullptr || app->port_ == 0)
    return absl::UnavailableError(absl::StrCat("listen = \"", o.listen, "\": cannot listen"));
  app->SetServing(false);

  if (absl::Status loaded = app->policies_->Reload("start"); !loaded.ok())
    LogLine(LogLevel::kWarning, "serving_without_policy")
        .Str("path", o.policy_path)
        .Str("hint", "health stays NOT_SERVING until the file loads (watched) or SIGHUP");
  app->policies_->StartWatching(o.watch_interval);
  if (app->shadow_) app->shadow_->StartWatching(o.watch_interval);
  app->housekeeping_ = std::thread([raw] { raw->Housekeeping(); });
  LogLine(LogLevel::kInfo, "server_started")
      .Int("port", app->port_)
      .Int("metrics_port", app->metrics_port_)
      .Bool("tls", !o.tls_cert.empty())
      .Bool("mtls", !o.tls_client_ca.empty())
      .Int("max_inflight", o.max_inflight)
      .Int("batch_max", o.batch_max)
      .Num("batch_wait_us", absl::ToDoubleMicroseconds(o.batch_wait))
      .Str("micro_batching", MicroBatchingName(o.micro_batching))
      .Str("allocator", AllocatorName())
      .Bool("report_log", !o.report_log.empty())
      .Bool("reflection", o.reflection)
      .Bool("decision_log", !o.decision_log.empty())
      .Str("explore", o.explore)
      .Str("shadow_policy", o.shadow_policy)
      .Str("fleet_target", o.fleet.target.KindName())
      .Num("fleet_target_value", o.fleet.target.value)
      .Bool("fleet_control", o.fleet.target.enabled() && o.fleet.pi)
      .Num("fleet_control_initial_scale", o.fleet.initial_scale)
      .Str("version", LCIO_VERSION);
  return app;
}

ServerApp::~ServerApp() {
  Shutdown();
  if (watcher_stuck_) {
    // A watcher blocked in a read still points at its holder and the
    // metrics: they outlive the app (the process is about to exit).
    (void)policies_.release();
    (void)shadow_.release();
    (void)metrics_.release();
  }
}

bool ServerApp::policy_loaded() const { return policies_ && policies_->Get() != nullptr; }

absl::Status ServerApp::Reload(const std::string& reason, bool wait) {
  return policies_->Reload(reason, wait);
}

absl::Status ServerApp::RequestReload(const std::string& reason) {
  return policies_->RequestReload(reason);
}

void ServerApp::SetServing(bool serving) {
  if (server_ == nullptr) return;
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus("", serving);
  health->SetServingStatus(kServiceName, serving);
}

void ServerApp::Housekeeping() {
  std::unique_lock<std::mutex> lock(housekeeping_mu_);
  while (!housekeeping_cv_.wait_for(lock, std::chrono::milliseconds(500),
                                    [this] { return stop_housekeeping_; })) {
    lock.unlock();
    const size_t expired = store_->ExpireIdle(absl::Now());
    metrics_->SetConversations(static_cast<double>(store_->size()));
    metrics_->SetLogLinesDropped(LogLinesDropped());
    if (expired > 0)
      LogLine(LogLevel::kDebug, "conversations_expired")
          .Int("count", static_cast<int64_t>(expired));
    lock.lock();
  }
}

void ServerApp::Shutdown() {
  std::lock_guard<std::mutex> guard(shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  const absl::Time start = absl::Now();
  LogLine(LogLevel::kInfo, "shutdown_started")
      .Num("drain_timeout_s", absl::ToDoubleSeconds(options_.drain_timeout))
      .Num("grace_s", absl::ToDoubleSeconds(options_.shutdown_grace));
  // Not waited for here: a reload stuck in a read on a hung disk would hold
  // up the whole drain (it is waited for, bounded, at the end).
  if (policies_) policies_->RequestStop();
  if (shadow_) shadow_->RequestStop();
  if (server_ != nullptr) {
    SetServing(false);
    if (auto* health = server_->GetHealthCheckService()) health->Shutdown();
    absl::SleepFor(options_.shutdown_grace);
  }
  shutting_down_.store(true);
  int inflight_at_close = 0, inflight_after_drain = 0;
  if (server_ != nullptr) {
    // The listener stays open while admitted calls finish: a Decide arriving
    // now gets UNAVAILABLE from the handler, which clients retry elsewhere,
    // while gRPC cancels (CANCELLED, not retried) every call that reaches a
    // server it is shutting down. So it closes once nothing is in flight and
    // no call has arrived for kQuietBeforeClose (waiting at most
    // kCloseWindow for that quiet), or at the drain deadline.
    inflight_at_close = service_->inflight();
    const absl::Time deadline = absl::Now() + options_.drain_timeout;
    // Reports queued for the log are answered as their batch becomes durable,
    // or UNAVAILABLE at the deadline when the disk hangs; new ones are refused.
    std::atomic<bool> reports_answered{reports_ == nullptr};
    std::thread stop_reports;
    if (reports_)
      stop_reports = std::thread([this, deadline, &reports_answered] {
        reports_->Stop(deadline);
        reports_answered.store(true);
      });
    while ((service_->inflight() > 0 || !reports_answered.load()) && absl::Now() < deadline)
      absl::SleepFor(absl::Milliseconds(5));
    const absl::Time quiet_by = std::min(deadline, absl::Now() + kCloseWindow);
    while (absl::Now() < quiet_by && absl::Now() - service_->last_arrival() < kQuietBeforeClose)
      absl::SleepFor(absl::Milliseconds(5));
    // gRPC cancels what still runs at this deadline (a Decide only when the
    // drain deadline has passed) and cuts connections whose peers do not
    // acknowledge the GOAWAY, which it would otherwise wait 20 s for.
    server_->Shutdown(absl::ToChronoTime(std::min(deadline, absl::Now() + kCloseWindow)));
    server_->Wait();
    if (stop_reports.joinable()) stop_reports.join();
    inflight_after_drain = service_->inflight();
  }
  {
    std::lock_guard<std::mutex> lock(housekeeping_mu_);
    stop_housekeeping_ = true;
  }
  housekeeping_cv_.notify_all();
  if (housekeeping_.joinable()) housekeeping_.join();
  batcher_.reset();  // answers anything still queued
  // Every Decide is answered: what they handed to the decision log is
  // written (or, past the drain deadline, dropped and counted).
  if (decision_log_)
    decision_log_->Stop(
        std::max(absl::Now(), start + options_.shutdown_grace + options_.drain_timeout));
  const absl::Time watchers_by = std::max(absl::Now() + absl::Seconds(1),
                                          start + options_.shutdown_grace + options_.drain_timeout);
  for (PolicyHolder* holder : {policies_.get(), shadow_.get()}) {
    if (holder == nullptr || holder->StopWatching(watchers_by)) continue;
    watcher_stuck_ = true;
    LogLine(LogLevel::kError, "policy_watcher_stuck")
        .Str("path", holder->path())
        .Str("hint",
             "a policy reload is blocked reading its file (a hung disk?); the server stops "
             "without it");
  }
  if (metrics_) metrics_->StopServing();
  LogLine(LogLevel::kInfo, "shutdown_complete")
      .Num("drain_s", absl::ToDoubleSeconds(absl::Now() - start))
      .Int("inflight_at_close", inflight_at_close)
      .Int("inflight_after_drain", inflight_after_drain);
}

}  // namespace lcio::server
