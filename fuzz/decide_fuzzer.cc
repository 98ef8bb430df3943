// libFuzzer target: drives request validation and the whole decision path
// (conversation store, task inference, encoding, micro-batching, validated
// fallback, shield, response) with arbitrary DecideRequests, against a real
// small policy whose fallback table answers some profiles and budgets with a
// fixed action and serves the network in others.
// Aborts when an invariant breaks: a crash, a hang (libFuzzer's timeout), a
// status code the API does not promise, or an OK answer that is inconsistent.
#include <fuzzer/FuzzedDataProvider.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>

#include "fallback_artifact.h"
#include "google/protobuf/stubs/logging.h"
#include "lcio/policy/testing.h"
#include "lcio/server/conversation_store.h"
#include "lcio/server/decider.h"
#include "lcio/server/exploration.h"
#include "lcio/server/log.h"
#include "lcio/server/micro_batcher.h"
#include "lcio/server/policy_holder.h"

namespace {

struct World {
  std::unique_ptr<lcio::server::PolicyHolder> policies;
  std::unique_ptr<lcio::server::ConversationStore> store;
  std::unique_ptr<lcio::server::MicroBatcher> batcher, batched;
  // One decider per exploration mode (none, epsilon, softmax: the last runs
  // the network even where the fallback answers), sharing the rest.
  std::unique_ptr<lcio::server::Decider> deciders[3];
};

// How far inputs got, printed at exit: a fuzzer that never reaches an OK
// answer (or the fallback) tests less than it seems.
struct Reach {
  int64_t runs = 0, answered = 0, fallback = 0, stored_bytes = 0;
};
Reach& TheReach() {
  static Reach* reach = [] {
    std::atexit([] {
      const Reach& r = TheReach();
      std::fprintf(stderr,
                   "decide_fuzzer: %lld runs, %lld answered OK, %lld by the fallback, %lld with "
                   "the stored bytes\n",
                   static_cast<long long>(r.runs), static_cast<long long>(r.answered),
                   static_cast<long long>(r.fallback), static_cast<long long>(r.stored_bytes));
    });
    return new Reach();
  }();
  return *reach;
}

World& TheWorld() {
  static World* world = [] {
    lcio::server::SetLogLevel(lcio::server::LogLevel::kError);
    // Raw-bytes inputs make protobuf log every invalid UTF-8 string.
    google::protobuf::SetLogHandler(nullptr);
    auto* w = new World();
    char dir[] = "/tmp/lcio-fuzz-XXXXXX";
    if (::mkdtemp(dir) == nullptr) std::abort();
    const std::string path = std::string(dir) + "/policy.pt";
    // Jetson TX2 on every network at three budgets: fixed actions spread over
    // the table, every fourth cell validated for the network. Other devices
    // reach it through the lookup's relative-cost path.
    std::vector<lcio::env::FallbackEntry> cells;
    int i = 0;
    for (const char* network : {"Wired", "WiFi", "5G", "4G"})
      for (const lcio::env::Budget& budget : lcio::env::DefaultFallbackBudgets()) {
        cells.push_back(lcio::test::FallbackCell(network, budget, (3 * i) % 9, i % 4 == 3));
        ++i;
      }
    auto written =
        lcio::test::WriteFallbackArtifact(path, lcio::policy::testing::TestArtifactOptions{},
                                          lcio::env::FallbackTable(std::move(cells)));
    if (!written.ok()) {
      std::fprintf(stderr, "%s\n", written.ToString().c_str());
      std::abort();
    }
    lcio::server::PolicyHolderOptions options;
    options.path = path;
    options.torch_device = "cpu";
    w->policies = std::make_unique<lcio::server::PolicyHolder>(options, nullptr);
    if (!w->policies->Reload("fuzz").ok()) std::abort();
    std::filesystem::remove_all(dir);
    lcio::server::ConversationStoreOptions store_options;
    store_options.max_conversations = 64;
    w->store = std::make_unique<lcio::server::ConversationStore>(store_options);
    // Rows scored on the calling thread (the CPU's default) and batched.
    w->batcher = std::make_unique<lcio::server::MicroBatcher>(lcio::server::MicroBatcherOptions{});
    lcio::server::MicroBatcherOptions batched;
    batched.mode = lcio::server::MicroBatching::kOn;
    batched.batch_wait = absl::ZeroDuration();
    w->batched = std::make_unique<lcio::server::MicroBatcher>(batched);
    lcio::server::RequestLimits limits;
    limits.max_prompt_bytes = 512;
    limits.max_views = 8;
    const char* modes[3] = {"none", "epsilon:0.3", "softmax:0.5"};
    for (int m = 0; m < 3; ++m) {
      auto explore = lcio::server::ExploreConfig::Parse(modes[m]);
      if (!explore.ok()) std::abort();
      w->deciders[m] = std::make_unique<lcio::server::Decider>(
          limits, w->policies.get(), w->store.get(), m == 1 ? w->batched.get() : w->batcher.get(),
          nullptr, nullptr, *explore);
    }
    return w;
  }();
  return *world;
}

double AnyDouble(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 5)) {
    case 0:
      return std::nan("");
    case 1:
      return INFINITY;
    case 2:
      return -in.ConsumeFloatingPointInRange<double>(0, 10);
    case 3:
      return in.ConsumeFloatingPoint<double>();
    default:
      return in.ConsumeProbability<double>() * 2;
  }
}

std::string Name(FuzzedDataProvider& in, const std::vector<std::string>& known) {
  if (!known.empty() && in.ConsumeBool())
    return known[in.ConsumeIntegralInRange<size_t>(0, known.size() - 1)];
  return in.ConsumeRandomLengthString(16);
}

lcio::v1::DecideRequest Build(FuzzedDataProvider& in) {
  lcio::v1::DecideRequest r;
  if (in.ConsumeBool()) {  // raw protobuf bytes
    const std::string bytes = in.ConsumeRemainingBytesAsString();
    r.ParseFromString(bytes);
    return r;
  }
  static const std::vector<std::string> views = {"view0", "view1", "view2"};
  static const std::vector<std::string> tasks = {"Assistive System", "Message Editing", "Query",
                                                 "Recommendation"};
  static const std::vector<std::string> ids = {"a", "b", "c", "d"};
  r.set_conversation_id(Name(in, ids));
  r.set_turn_index(in.ConsumeBool() ? in.ConsumeIntegralInRange<int>(0, 8)
                                    : in.ConsumeIntegral<int>());
  r.set_prompt(in.ConsumeRandomLengthString(600));
  if (in.ConsumeBool()) r.set_task(Name(in, tasks));
  const int num_views = in.ConsumeBool() ? 3 : in.ConsumeIntegralInRange<int>(0, 10);
  for (int v = 0; v < num_views; ++v) {
    lcio::v1::View* view = r.add_views();
    view->set_name(in.ConsumeBool() ? views[v % 3] : Name(in, views));
    view->set_association(in.ConsumeBool() ? in.ConsumeProbability<double>() : AnyDouble(in));
  }
  if (in.ConsumeIntegralInRange<int>(0, 9) > 0) {
    r.mutable_budget()->set_latency_s(
        in.ConsumeBool() ? in.ConsumeFloatingPointInRange<double>(0, 60) : AnyDouble(in));
    r.mutable_budget()->set_money_usd(
        in.ConsumeBool() ? in.ConsumeFloatingPointInRange<double>(0, 0.1) : AnyDouble(in));
  }
  if (in.ConsumeIntegralInRange<int>(0, 7) == 0)
    r.set_device(in.ConsumeBool() ? "Jetson Nano" : Name(in, {}));
  if (in.ConsumeIntegralInRange<int>(0, 7) == 0)
    r.set_network(in.ConsumeBool() ? "4G" : Name(in, {}));
  r.set_explain(in.ConsumeBool());
  if (in.ConsumeIntegralInRange<int>(0, 3) == 0) {
    const int turns = in.ConsumeIntegralInRange<int>(0, 12);
    lcio::v1::ConversationHistory* history = r.mutable_history();
    for (int t = 0; t < turns; ++t) {
      lcio::v1::HistoryTurn* turn = history->add_turns();
      turn->set_action(in.ConsumeBool() ? in.ConsumeIntegralInRange<int>(0, 7)
                                        : in.ConsumeIntegral<int>());
      turn->set_task(Name(in, tasks));
    }
  }
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& world = TheWorld();
  FuzzedDataProvider in(data, size);
  lcio::server::Decider& decider = *world.deciders[in.ConsumeIntegralInRange<int>(0, 2)];
  lcio::v1::DecideRequest request = Build(in);
  if (in.remaining_bytes() > 0) request.set_no_explore(in.ConsumeBool());
  lcio::v1::DecideResponse response;
  std::promise<absl::Status> promise;
  std::string serialized;  // what the server would send instead of serializing the response
  decider.Decide(
      request, &response, absl::Now() + absl::Seconds(30),
      [&promise](absl::Status s) { promise.set_value(std::move(s)); }, "", &serialized);
  const absl::Status status = promise.get_future().get();
  // The stored bytes come only with an answer, and are that answer.
  if (!serialized.empty() && (!status.ok() || serialized != response.SerializeAsString())) {
    std::fprintf(stderr, "the stored bytes are not the answer (%s)\n", status.ToString().c_str());
    std::abort();
  }
  TheReach().stored_bytes += !serialized.empty();
  switch (status.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kResourceExhausted:
      break;
    default:
      std::fprintf(stderr, "unexpected status %s\n", status.ToString().c_str());
      std::abort();
  }
  ++TheReach().runs;
  if (!status.ok()) return 0;
  ++TheReach().answered;
  TheReach().fallback += response.fallback_fixed_action();
  // An OK answer is consistent with the request and the action table.
  const bool ok_action = response.action() >= 0 && response.action() < 9;
  const bool ok_target = (response.action() == 0) == (response.target() == lcio::v1::TARGET_LOCAL);
  const bool ok_budget =
      std::fabs(response.budget_after().latency_s() -
                (request.budget().latency_s() - response.expected_latency_s())) < 1e-9 &&
      std::fabs(response.budget_after().money_usd() -
                (request.budget().money_usd() - response.expected_money_usd())) < 1e-9;
  const bool ok_scores = !request.explain() || response.scores_size() == 9;
  const bool ok_shield =
      response.nothing_fits() || (response.expected_latency_s() <= request.budget().latency_s() &&
                                  response.expected_money_usd() <= request.budget().money_usd());
  // The fallback proposes what fits (the cheapest fitting action when its
  // fixed action does not): the shield never overrides it.
  const bool ok_fallback = !response.fallback_fixed_action() || !response.shield_overridden();
  // The taken action's probability is a probability; explained scores are
  // numbers the decision log can write.
  bool ok_probability = response.probability() > 0 && response.probability() <= 1 + 1e-9;
  for (const lcio::v1::ActionScore& s : response.scores())
    ok_probability = ok_probability && std::isfinite(s.score()) && std::isfinite(s.probability());
  if (!ok_action || !ok_target || !ok_budget || !ok_scores || !ok_shield || !ok_fallback ||
      !ok_probability) {
    std::fprintf(stderr, "inconsistent answer: %s\nfor: %s\n", response.DebugString().c_str(),
                 request.DebugString().c_str());
    std::abort();
  }
  return 0;
}
