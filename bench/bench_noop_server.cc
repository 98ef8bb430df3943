// bench_noop_server: the transport's limit. Serves lcio.v1.Offloader with the
// same gRPC setup as lcio-server (callback API, same proto) but answers
// every Decide with a constant decision, so lcio-loadgen measures gRPC and
// protobuf alone. See docs/benchmarks.md ("Service").
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "lcio/v1/offloader.grpc.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "listen address (port 0 picks one)");

namespace {

class NoopService final : public lcio::v1::Offloader::CallbackService {
 public:
  NoopService() {
    answer_.set_decision_id("noop");
    answer_.set_target(lcio::v1::TARGET_LOCAL);
    answer_.set_llm("local-3.8B");
    answer_.set_expected_latency_s(1.0);
    answer_.mutable_budget_after()->set_latency_s(29.0);
    answer_.mutable_budget_after()->set_money_usd(0.05);
    answer_.set_task("Query");
    answer_.set_task_confidence(1);
    answer_.set_policy_version("noop");
    info_.set_policy_version("noop");
    info_.set_algo("noop");
    for (const char* v : {"view0", "view1", "view2"}) info_.add_view_names(v);
  }
  grpc::ServerUnaryReactor* Decide(grpc::CallbackServerContext* context,
                                   const lcio::v1::DecideRequest* request,
                                   lcio::v1::DecideResponse* response) override {
    *response = answer_;
    response->mutable_budget_after()->set_latency_s(request->budget().latency_s() - 1.0);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* GetPolicy(grpc::CallbackServerContext* context,
                                      const lcio::v1::GetPolicyRequest*,
                                      lcio::v1::PolicyInfo* response) override {
    *response = info_;
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  lcio::v1::DecideResponse answer_;
  lcio::v1::PolicyInfo info_;
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  NoopService service;
  grpc::ServerBuilder builder;
  int port = 0;
  const std::string listen = absl::GetFlag(FLAGS_listen);
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "bench_noop_server: cannot listen on %s\n", listen.c_str());
    return 2;
  }
  std::printf("bench_noop_server listening on %s:%d\n", listen.substr(0, listen.rfind(':')).c_str(),
              port);
  std::fflush(stdout);
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  server->Shutdown();
  return 0;
}
