// End-to-end: the real lcio-server, lcio-client, lcio-loadgen and
// lcio-report-export binaries on 127.0.0.1 with ephemeral ports.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "fallback_artifact.h"
#include "google/protobuf/unknown_field_set.h"
#include "lcio/client/client.h"
#include "lcio/data/decision_log.h"
#include "lcio/data/m4a1.h"
#include "lcio/env/action_table.h"
#include "lcio/env/simulator.h"
#include "lcio/policy/artifact_io.h"
#include "lcio/policy/testing.h"
#include "lcio/server/report_log.h"
#include "lcio/version.h"
#include "nlohmann/json.hpp"
#include "process.h"
#include "raw_call.h"
#include "test_support.h"

namespace lcio::test {
namespace {

using namespace std::chrono_literals;

struct Server {
  std::unique_ptr<Process> process;
  int port = 0, metrics_port = 0;
  std::string target() const { return absl::StrCat("127.0.0.1:", port); }
};

int PortOf(const std::string& line, const std::string& prefix) {
  if (!absl::StartsWith(line, prefix)) return 0;
  int port = 0;
  return absl::SimpleAtoi(line.substr(line.rfind(':') + 1), &port) ? port : 0;
}

class EndToEndTest : public ::testing::Test {
 protected:
  std::string WriteArtifact(const std::string& name, uint64_t seed) {
    policy::testing::TestArtifactOptions options;
    options.seed = seed;
    const std::string path = dir_.File(name);
    auto written = policy::testing::WriteTestArtifact(path, options);
    EXPECT_TRUE(written.ok()) << written.status();
    return path;
  }

  // `env`: NAME=VALUE settings for the server (through env(1)), e.g. the
  // fault shim's.
  Server StartServer(std::vector<std::string> flags, bool expect_policy = true,
                     std::vector<std::string> env = {}) {
    std::vector<std::string> argv;
    if (!env.empty()) {
      argv.push_back("/usr/bin/env");
      argv.insert(argv.end(), env.begin(), env.end());
    }
    argv.insert(argv.end(), {server_bin_, "--listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0",
                             "--torch_device=cpu"});
    argv.insert(argv.end(), flags.begin(), flags.end());
    Server server;
    server.process = std::make_unique<Process>(argv, dir_.File("server.stderr"));
    EXPECT_TRUE(server.process->started());
    auto grpc_line = server.process->ReadLine(60s);
    auto metrics_line = server.process->ReadLine(10s);
    EXPECT_TRUE(grpc_line && metrics_line) << ReadFile(dir_.File("server.stderr"));
    if (!grpc_line || !metrics_line) return server;
    server.port = PortOf(*grpc_line, "lcio-server listening on 127.0.0.1:");
    server.metrics_port = PortOf(*metrics_line, "lcio-server metrics on 127.0.0.1:");
    EXPECT_GT(server.port, 0) << *grpc_line;
    EXPECT_GT(server.metrics_port, 0) << *metrics_line;
    if (expect_policy) {
      auto client = MakeClient(server);
      auto health = client->Health();
      EXPECT_TRUE(health.ok() && *health == "SERVING") << health.status();
    }
    return server;
  }

  std::unique_ptr<Client> MakeClient(const Server& server) {
    ClientOptions options;
    options.target = server.target();
    auto client = Client::Create(options);
    EXPECT_TRUE(client.ok());
    return *std::move(client);
  }

  std::map<std::string, double> Scrape(const Server& server) {
    return ParseMetrics(HttpGet(server.metrics_port, "/metrics"));
  }

  // Runs a binary to completion (bounded); returns (wait status, stdout).
  std::pair<int, std::string> Run(std::vector<std::string> argv,
                                  std::chrono::seconds limit = 120s) {
    Process p(argv, dir_.File("run.stderr"));
    std::string out = p.ReadAll(limit);
    auto status = p.Wait(limit);
    return {status.value_or(-1), out};
  }

  // A server whose reads of policy.pt hang once `delay_file` holds a number
  // of milliseconds (absent: no delay), through the fault shim.
  Server StartServerWithSlowPolicyReads(const std::string& policy, const std::string& delay_file) {
    return StartServer({"--policy=" + policy, "--watch_interval_ms=50", "--drain_timeout_s=1"},
                       true,
                       {std::string("LD_PRELOAD=") + LCIO_FAULT_SHIM, "LCIO_FAULT_PATH=policy.pt",
                        "LCIO_FAULT_READ_DELAY_MS=@" + delay_file});
  }

  // SIGTERM; the server must exit 0 within 30 s (else it is killed). Returns
  // its stderr.
  std::string ExpectExitOnSigterm(Server& server, const char* failure) {
    server.process->Signal(SIGTERM);
    auto status = server.process->Wait(30s);
    EXPECT_TRUE(status.has_value()) << failure;
    if (status.has_value()) {
      EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
    } else {
      server.process->Signal(SIGKILL);
    }
    return ReadFile(dir_.File("server.stderr"));
  }

  TempDir dir_;
  std::string server_bin_ = LCIO_SERVER_BIN;
};

TEST_F(EndToEndTest, NotServingUntilAPolicyAppearsThenServing) {
  const std::string policy = dir_.File("policy.pt");
  Server server = StartServer({"--policy=" + policy, "--watch_interval_ms=50"}, false);
  auto client = MakeClient(server);
  auto health = client->Health();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, "NOT_SERVING");
  v1::PolicyInfo info;
  EXPECT_EQ(client->GetPolicy(&info).code(), absl::StatusCode::kUnavailable);
  ReplaceFile(WriteArtifact("a.pt", 1), policy);
  for (int i = 0; i < 400 && *health != "SERVING"; ++i) {
    std::this_thread::sleep_for(50ms);
    health = client->Health("lcio.v1.Offloader");
    ASSERT_TRUE(health.ok());
  }
  EXPECT_EQ(*health, "SERVING");
  EXPECT_EQ(Scrape(server)["lcio_policy_loaded"], 1);
}

TEST_F(EndToEndTest, HotReloadUnderLoadFailsNoRequest) {
  const std::string policy = dir_.File("policy.pt");
  ReplaceFile(WriteArtifact("seed1.pt", 1), policy);
  std::vector<std::string> good;
  for (int i = 0; i < 5; ++i) good.push_back(WriteArtifact(absl::StrCat("good", i, ".pt"), 10 + i));
  const std::string garbage = dir_.File("garbage.pt");
  WriteFile(garbage, "definitely not a TorchScript archive");
  const std::string truncated = dir_.File("truncated.pt");
  const std::string whole = ReadFile(good[0]);
  WriteFile(truncated, whole.substr(0, whole.size() / 2));

  Server server = StartServer({"--policy=" + policy, "--watch_interval_ms=50"});
  Process loadgen({LCIO_LOADGEN_BIN, "--target=" + server.target(), "--concurrency=4",
                   "--duration_s=600", "--requests=1000000", "--timeout_ms=10000", "--json",
                   "--fail_on_error", std::string("--data=") + LCIO_SOURCE_DIR + "/data/M4A1.json"},
                  dir_.File("loadgen.stderr"));
  auto reloads = [&] {
    auto m = Scrape(server);
    return Metric(m, "lcio_policy_reloads_total{result=\"ok\"}") +
           Metric(m, "lcio_policy_reloads_total{result=\"error\"}");
  };
  auto client = MakeClient(server);
  std::string last_good_version;
  for (int swap = 0; swap < 10; ++swap) {
    const double before = reloads();
    const bool is_good = swap % 2 == 0;
    ReplaceFile(is_good ? good[swap / 2] : (swap % 4 == 1 ? garbage : truncated), policy);
    // Wait (bounded) until the watcher has tried the new file.
    for (int i = 0; i < 600 && reloads() == before; ++i) std::this_thread::sleep_for(50ms);
    ASSERT_EQ(reloads(), before + 1) << "swap " << swap << " not picked up";
    v1::PolicyInfo info;
    ASSERT_TRUE(client->GetPolicy(&info).ok());
    if (is_good) {
      EXPECT_NE(info.policy_version(), last_good_version);
      last_good_version = info.policy_version();
    } else {
      EXPECT_EQ(info.policy_version(), last_good_version);  // the old one keeps serving
    }
    std::this_thread::sleep_for(200ms);  // traffic on this version
  }
  loadgen.Signal(SIGINT);  // the loadgen stops and prints what it saw
  const std::string out = loadgen.ReadAll(30s);
  auto status = loadgen.Wait(30s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << out;  // --fail_on_error
  auto result = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(result.is_discarded()) << out;
  EXPECT_GT(result["ok"].get<int64_t>(), 0);
  EXPECT_EQ(result["failed"].get<int64_t>(), 0) << out;
  const auto m = Scrape(server);
  EXPECT_EQ(Metric(m, "lcio_policy_reloads_total{result=\"ok\"}"), 6);
  EXPECT_EQ(Metric(m, "lcio_policy_reloads_total{result=\"error\"}"), 5);
  const double ok = Metric(m, "lcio_decide_requests_total{code=\"OK\"}");
  EXPECT_GT(ok, 0);
  for (const auto& [key, value] : m) {
    if (absl::StartsWith(key, "lcio_decide_requests_total{") && !absl::StrContains(key, "\"OK\"")) {
      EXPECT_EQ(value, 0) << key;
    }
  }
}

TEST_F(EndToEndTest, ShutdownUnderLoadDrainsAndReportsNotServing) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  Server server =
      StartServer({"--policy=" + policy, "--shutdown_grace_ms=1500", "--drain_timeout_s=10"});
  Process loadgen({LCIO_LOADGEN_BIN, "--target=" + server.target(), "--concurrency=8",
                   "--duration_s=5", "--timeout_ms=10000", "--json",
                   std::string("--data=") + LCIO_SOURCE_DIR + "/data/M4A1.json"},
                  dir_.File("loadgen.stderr"));
  std::this_thread::sleep_for(1500ms);
  server.process->Signal(SIGTERM);
  std::this_thread::sleep_for(300ms);
  // Inside the grace period: health says NOT_SERVING while calls still work.
  auto client = MakeClient(server);
  auto health = client->Health();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, "NOT_SERVING");
  auto status = server.process->Wait(30s);
  ASSERT_TRUE(status.has_value()) << "server did not exit";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  const std::string out = loadgen.ReadAll(30s);
  ASSERT_TRUE(loadgen.Wait(30s).has_value());
  auto result = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(result.is_discarded()) << out;
  EXPECT_GT(result["ok"].get<int64_t>(), 0);
  // Calls after the listener closed found it closed (UNAVAILABLE, or
  // CANCELLED for streams gRPC refused on a closing connection before any
  // handler saw them); nothing timed out or failed inside the server.
  for (const auto& [code, n] : result["codes"].items())
    EXPECT_TRUE(code == "OK" || code == "UNAVAILABLE" || code == "CANCELLED") << code << " " << n;
  // Every call the server had admitted was answered before it exited, and
  // none was answered with an error by the server itself.
  const std::string log = ReadFile(dir_.File("server.stderr"));
  EXPECT_TRUE(absl::StrContains(log, "\"event\":\"shutdown_complete\"")) << log;
  EXPECT_TRUE(absl::StrContains(log, "\"inflight_after_drain\":0")) << log;
  EXPECT_FALSE(absl::StrContains(log, "decide_rejected")) << log;
}

// A valid first turn for the test artifacts.
v1::DecideRequest FirstTurn(const std::string& conversation) {
  v1::DecideRequest r;
  r.set_conversation_id(conversation);
  r.set_turn_index(0);
  r.set_prompt("What is on the table?");
  r.set_task("Query");
  for (int v = 0; v < 3; ++v) {
    v1::View* view = r.add_views();
    view->set_name(absl::StrCat("view", v));
    view->set_association(0.3);
  }
  r.mutable_budget()->set_latency_s(30);
  r.mutable_budget()->set_money_usd(0.05);
  return r;
}

// Clients calling Decide back to back when SIGTERM arrives (with and without
// a grace period): every call gets its real answer or UNAVAILABLE (which
// clients retry elsewhere), never CANCELLED, and every admitted call is
// answered before the process exits.
TEST_F(EndToEndTest, CallsInTransitAtSigtermGetOkOrUnavailableNeverCancelled) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  for (const char* grace : {"--shutdown_grace_ms=0", "--shutdown_grace_ms=300"}) {
    SCOPED_TRACE(grace);
    Server server = StartServer({"--policy=" + policy, "--drain_timeout_s=30", grace});
    constexpr int kClients = 8;
    std::atomic<int> ok{0};
    std::mutex mu;
    std::map<std::string, int> codes;
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        ClientOptions options;
        options.target = server.target();
        options.max_attempts = 1;  // each call's own answer
        options.timeout = absl::Seconds(20);
        auto client = Client::Create(options);
        // Until the first refusal (the server stops answering), bounded.
        for (int i = 0; i < 1000000; ++i) {
          v1::DecideResponse response;
          const absl::Status status =
              (*client)->Decide(FirstTurn(absl::StrCat("transit-", c, "-", i)), &response);
          std::lock_guard<std::mutex> lock(mu);
          ++codes[absl::StatusCodeToString(status.code())];
          if (!status.ok()) break;
          ++ok;
        }
      });
    }
    for (int i = 0; i < 600 && ok.load() < 200; ++i) std::this_thread::sleep_for(50ms);
    server.process->Signal(SIGTERM);
    auto status = server.process->Wait(60s);
    for (auto& t : clients) t.join();
    ASSERT_TRUE(status.has_value()) << "server did not exit";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
    EXPECT_GE(ok.load(), 200);
    for (const auto& [code, n] : codes)
      EXPECT_TRUE(code == "OK" || code == "UNAVAILABLE") << code << " x " << n;
    const std::string log = ReadFile(dir_.File("server.stderr"));
    EXPECT_TRUE(absl::StrContains(log, "\"inflight_after_drain\":0")) << log;
  }
}

// Idle connections (a connected client, peers that never speak on the gRPC
// and the metrics ports) do not hold the exit until the drain timeout, and
// the same ports serve again as soon as the process is gone.
TEST_F(EndToEndTest, IdleConnectionsDoNotDelayExitAndTheSamePortsServeAgain) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  Server first = StartServer({"--policy=" + policy, "--drain_timeout_s=120"});
  auto client = MakeClient(first);
  v1::DecideResponse response;
  ASSERT_TRUE(client->Decide(FirstTurn("idle"), &response).ok());
  EXPECT_FALSE(Scrape(first).empty());  // leaves the metrics port in TIME_WAIT
  IdleConnection grpc_peer(first.port), metrics_peer(first.metrics_port);
  ASSERT_TRUE(grpc_peer.connected() && metrics_peer.connected());
  first.process->Signal(SIGTERM);
  // Far below the drain timeout: nothing was in flight.
  auto status = first.process->Wait(15s);
  ASSERT_TRUE(status.has_value()) << "server still running 15 s after SIGTERM with idle peers";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;

  std::vector<std::string> argv = {
      LCIO_SERVER_BIN, "--policy=" + policy, absl::StrCat("--listen=127.0.0.1:", first.port),
      absl::StrCat("--metrics_listen=127.0.0.1:", first.metrics_port), "--torch_device=cpu"};
  Process second(argv, dir_.File("second.stderr"));
  auto grpc_line = second.ReadLine(60s);
  ASSERT_TRUE(grpc_line.has_value()) << ReadFile(dir_.File("second.stderr"));
  EXPECT_EQ(PortOf(*grpc_line, "lcio-server listening on 127.0.0.1:"), first.port);
  auto metrics_line = second.ReadLine(10s);
  ASSERT_TRUE(metrics_line.has_value()) << ReadFile(dir_.File("second.stderr"));
  EXPECT_EQ(PortOf(*metrics_line, "lcio-server metrics on 127.0.0.1:"), first.metrics_port);
  auto again = MakeClient(first);
  const absl::Status decided = again->Decide(FirstTurn("after-restart"), &response);
  EXPECT_TRUE(decided.ok()) << decided;
  EXPECT_FALSE(Scrape(first).empty());
}

// Waits (bounded) until every metric in `at_least` reaches its value.
std::map<std::string, double> WaitForMetrics(int port,
                                             const std::map<std::string, double>& at_least) {
  std::map<std::string, double> m;
  for (int i = 0; i < 400; ++i) {
    m = ParseMetrics(HttpGet(port, "/metrics"));
    bool all = true;
    for (const auto& [name, value] : at_least) all = all && Metric(m, name) >= value;
    if (all) break;
    std::this_thread::sleep_for(25ms);
  }
  return m;
}

TEST_F(EndToEndTest, MetricsMatchTheLoadSent) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  Server server = StartServer({"--policy=" + policy});
  auto [status, out] = Run({LCIO_LOADGEN_BIN, "--target=" + server.target(), "--concurrency=4",
                            "--requests=300", "--duration_s=120", "--json",
                            std::string("--data=") + LCIO_SOURCE_DIR + "/data/M4A1.json"});
  ASSERT_EQ(status, 0) << out;
  auto result = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(result.is_discarded()) << out;
  EXPECT_EQ(result["requests"].get<int64_t>(), 300);
  // Every request is a valid turn of a logged conversation: none may fail,
  // or the equalities below could hold at 0 == 0.
  EXPECT_EQ(result["ok"].get<int64_t>(), 300) << out;
  // The conversations gauge is sampled every 0.5 s: wait for it.
  const auto m = WaitForMetrics(server.metrics_port, {{"lcio_conversations_active", 1}});
  EXPECT_EQ(Metric(m, "lcio_decide_requests_total{code=\"OK\"}"), result["ok"].get<double>());
  EXPECT_EQ(Metric(m, "lcio_decide_latency_seconds_count"), 300);
  EXPECT_EQ(Metric(m, "lcio_decisions_total{target=\"local\"}") +
                Metric(m, "lcio_decisions_total{target=\"cloud\"}"),
            result["ok"].get<double>());
  // The conversations stay stored (idle expiry is far off).
  EXPECT_GE(Metric(m, "lcio_conversations_active"), 1);
}

// Against a target that spreads calls over two servers, conversations kept
// on the server broke at turn 1 (FAILED_PRECONDITION on the other server);
// --stateless sends the history. A warm-up call still in flight when
// measuring began was counted (1031 of --requests=1000).
TEST_F(EndToEndTest, LoadgenCountsExactlyAndSpansServersStatelessly) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  Server a = StartServer({"--policy=" + policy});
  Server b = StartServer({"--policy=" + policy});
  const std::string both = absl::StrCat("ipv4:127.0.0.1:", a.port, ",127.0.0.1:", b.port);
  const std::string data = std::string("--data=") + LCIO_SOURCE_DIR + "/data/M4A1.json";
  auto [status, out] =
      Run({LCIO_LOADGEN_BIN, "--target=" + both, "--stateless", "--concurrency=4",
           "--warmup_requests=60", "--requests=200", "--duration_s=120", "--json", data});
  ASSERT_EQ(status, 0) << out;
  auto result = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(result.is_discarded()) << out;
  EXPECT_EQ(result["requests"].get<int64_t>(), 200) << out;
  EXPECT_EQ(result["ok"].get<int64_t>(), 200) << out;
  for (const Server* server : {&a, &b})
    EXPECT_GT(Metric(Scrape(*server), "lcio_decide_requests_total{code=\"OK\"}"), 0);
  // Kept on the server, the later turns of a conversation meet the other one.
  std::tie(status, out) = Run({LCIO_LOADGEN_BIN, "--target=" + both, "--concurrency=4",
                               "--requests=200", "--duration_s=120", "--json", data});
  ASSERT_EQ(status, 0) << out;
  result = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(result.is_discarded()) << out;
  EXPECT_GT(result["codes"]["FAILED_PRECONDITION"].get<int64_t>(), 0) << out;
  // Rate and latency are the OK calls' alone.
  EXPECT_EQ(result["ok"].get<int64_t>() + result["failed"].get<int64_t>(), 200) << out;
  EXPECT_NEAR(result["qps"].get<double>(),
              result["ok"].get<double>() / result["elapsed_s"].get<double>(),
              0.05 * result["qps"].get<double>() + 1)
      << out;
}

TEST_F(EndToEndTest, ReportLogSurvivesSigkillWithEveryAcknowledgedRecord) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  const std::string log = dir_.File("reports.log");
  Server server = StartServer({"--policy=" + policy, "--report_log=" + log});
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::pair<std::string, int>> acknowledged;
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; ++w) {
    writers.emplace_back([&, w] {
      ClientOptions options;
      options.target = server.target();
      options.timeout = absl::Seconds(5);
      auto client = Client::Create(options);
      for (int turn = 0; !stop.load() && turn < 100000; ++turn) {
        v1::ReportRequest r;
        r.set_conversation_id(absl::StrCat("w", w));
        r.set_turn_index(turn);
        r.set_prompt(absl::StrCat("prompt ", turn, " \xe2\x9c\x93"));
        r.set_task("Query");
        r.set_target(turn % 2 ? v1::TARGET_CLOUD : v1::TARGET_LOCAL);
        if (turn % 2) r.add_uploaded_views("view1");
        for (double a : {0.1, 0.5, 0.9}) r.add_association(a);
        r.set_answer("answer");
        r.set_score(0.5);
        r.set_interaction_time_s(1);
        r.set_usage_cost_usd(0.001);
        v1::ReportResponse response;
        if (!(*client)->Report(r, &response).ok()) break;
        std::lock_guard<std::mutex> lock(mu);
        acknowledged.emplace_back(r.conversation_id(), turn);
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    std::this_thread::sleep_for(20ms);
    std::lock_guard<std::mutex> lock(mu);
    if (acknowledged.size() >= 60) break;
  }
  server.process->Signal(SIGKILL);
  ASSERT_TRUE(server.process->Wait(10s).has_value());
  stop.store(true);
  for (auto& t : writers) t.join();
  ASSERT_GE(acknowledged.size(), 1u);

  auto contents = server::ReadReportLog(log);
  ASSERT_TRUE(contents.ok()) << contents.status();
  EXPECT_LE(contents->skipped_lines, 1);  // at most the torn write of the kill
  std::set<std::pair<std::string, int>> on_disk;
  for (const auto& r : contents->records) on_disk.emplace(r.conversation_id, r.turn_index);
  for (const auto& ack : acknowledged)
    EXPECT_TRUE(on_disk.count(ack)) << ack.first << " turn " << ack.second << " lost";

  const std::string exported = dir_.File("traffic.json");
  auto [status, out] = Run({LCIO_REPORT_EXPORT_BIN, "--log=" + log, "--out=" + exported});
  ASSERT_EQ(status, 0) << out;
  auto dataset = data::LoadM4A1File(exported);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ(dataset->num_turns(), contents->records.size());
  EXPECT_EQ(dataset->num_views, 3);
}

// The start line names the allocator the build chose (LCIO_SERVER_MALLOC:
// tcmalloc unless configured otherwise or sanitizing) and the batching mode.
TEST_F(EndToEndTest, TheStartLineNamesTheAllocatorAndTheBatchingMode) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  Server server = StartServer({"--policy=" + policy, "--log_level=info"});
  nlohmann::json started, loaded;
  const std::string log = ReadFile(dir_.File("server.stderr"));
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    auto json = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
    if (json.is_object() && json.value("event", "") == "server_started") started = json;
    if (json.is_object() && json.value("event", "") == "policy_loaded") loaded = json;
  }
  ASSERT_TRUE(started.is_object()) << log;
  EXPECT_EQ(started.value("allocator", ""), LCIO_SERVER_ALLOCATOR);
  EXPECT_EQ(started.value("micro_batching", ""), "auto");
  // A CPU policy under auto is scored on each call's own thread.
  ASSERT_TRUE(loaded.is_object()) << log;
  ASSERT_TRUE(loaded.contains("batched")) << loaded.dump();
  EXPECT_FALSE(loaded["batched"].get<bool>()) << loaded.dump();
}

TEST_F(EndToEndTest, PolicyLoadedSaysTheRowsAreBatchedUnderMicroBatchingOn) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  Server server = StartServer({"--policy=" + policy, "--log_level=info", "--micro_batching=on"});
  const std::string log = ReadFile(dir_.File("server.stderr"));
  int loaded_lines = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    auto json = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
    if (!json.is_object() || json.value("event", "") != "policy_loaded") continue;
    ++loaded_lines;
    EXPECT_TRUE(json.value("batched", false)) << json.dump();
  }
  EXPECT_EQ(loaded_lines, 1) << log;
}

// --out must be a regular file or absent: a device or a FIFO would be
// replaced by the export's rename.
TEST_F(EndToEndTest, TheExportRefusesAnOutputThatIsNotARegularFile) {
  const std::string fifo = dir_.File("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  WriteFile(dir_.File("reports.log"), "");
  auto [status, out] =
      Run({LCIO_REPORT_EXPORT_BIN, "--log=" + dir_.File("reports.log"), "--out=" + fifo});
  EXPECT_NE(status, 0) << out;
  const std::string stderr_text = ReadFile(dir_.File("run.stderr"));
  EXPECT_NE(stderr_text.find("is a FIFO"), std::string::npos) << stderr_text;
  struct stat st {};
  ASSERT_EQ(::stat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));  // still there, untouched
}

// Files an output's publication left under their temporary name (".NAME.tmp-PID-N").
int TemporaryFilesIn(const std::string& dir) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    n += absl::StrContains(entry.path().filename().string(), ".tmp-");
  return n;
}

// A failing disk never publishes a partial export: with fsync failing, or
// the file unable to grow, the export fails, the previous output stays as it
// was and no temporary file is left; without a fault the same command works.
TEST_F(EndToEndTest, TheExportPublishesNothingWhenTheDiskFails) {
  server::ReportRecord record;
  record.conversation_id = "c";
  record.decision_id = "c/0/x";
  record.prompt = "What is on the table?";
  record.task = "Query";
  record.view_names = {"view0", "view1", "view2"};
  record.association = {0.1, 0.5, 0.9};
  record.answer = "a cup";
  record.score = 0.5;
  record.interaction_time_s = 1;
  record.usage_cost_usd = 0.001;
  record.tasks = {"Assistive System", "Message Editing", "Query", "Recommendation"};
  WriteFile(dir_.File("reports.log"), server::EncodeReportLine(record));
  const std::string out = dir_.File("traffic.json");
  for (const char* fault : {"LCIO_FAULT_FSYNC_EIO=1", "LCIO_FAULT_WRITE_ENOSPC_AFTER=16"}) {
    SCOPED_TRACE(fault);
    WriteFile(out, "old");
    auto [status, stdout_text] = Run({"/usr/bin/env", std::string("LD_PRELOAD=") + LCIO_FAULT_SHIM,
                                      "LCIO_FAULT_PATH=traffic.json", fault, LCIO_REPORT_EXPORT_BIN,
                                      "--log=" + dir_.File("reports.log"), "--out=" + out});
    EXPECT_NE(status, 0) << stdout_text << ReadFile(dir_.File("run.stderr"));
    EXPECT_EQ(ReadFile(out), "old");
    EXPECT_EQ(TemporaryFilesIn(dir_.path()), 0);
  }
  auto [status, stdout_text] =
      Run({LCIO_REPORT_EXPORT_BIN, "--log=" + dir_.File("reports.log"), "--out=" + out});
  ASSERT_EQ(status, 0) << ReadFile(dir_.File("run.stderr"));
  auto exported = data::LoadM4A1File(out);
  ASSERT_TRUE(exported.ok()) << exported.status();
  EXPECT_EQ(exported->num_turns(), 1u);
  EXPECT_EQ(TemporaryFilesIn(dir_.path()), 0);
}

// The trainer's artifact under a failing disk: the run fails, the earlier
// artifact stays, nothing temporary is left behind.
TEST_F(EndToEndTest, ATrainingRunWhoseDiskFailsKeepsTheEarlierArtifact) {
  const std::string out = dir_.File("policy.pt");
  const std::vector<std::string> train = {LCIO_TRAIN_BIN, "--algo=rc-a2c", "--timesteps=256",
                                          "--out=" + out};
  for (const char* fault : {"LCIO_FAULT_FSYNC_EIO=1", "LCIO_FAULT_WRITE_ENOSPC_AFTER=4096"}) {
    SCOPED_TRACE(fault);
    WriteFile(out, "earlier");
    std::vector<std::string> argv = {"/usr/bin/env", std::string("LD_PRELOAD=") + LCIO_FAULT_SHIM,
                                     "LCIO_FAULT_PATH=policy.pt.tmp", fault};
    argv.insert(argv.end(), train.begin(), train.end());
    auto [status, stdout_text] = Run(argv, 240s);
    // 1, a run that failed; 2 is for what was asked.
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1)
        << status << stdout_text << ReadFile(dir_.File("run.stderr"));
    EXPECT_EQ(ReadFile(out), "earlier");
    EXPECT_EQ(TemporaryFilesIn(dir_.path()), 0);
  }
  auto [status, stdout_text] = Run(train, 240s);
  ASSERT_EQ(status, 0) << ReadFile(dir_.File("run.stderr"));
  EXPECT_TRUE(policy::ReadArtifactMetadata(out).ok());
  EXPECT_EQ(TemporaryFilesIn(dir_.path()), 0);
}

TEST_F(EndToEndTest, TheCommandLineClientPrintsDecisionsAsJson) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  Server server = StartServer({"--policy=" + policy});
  auto [status, out] =
      Run({LCIO_CLIENT_BIN, "decide", "--target=" + server.target(), "--conversation=cli",
           "--turn=0", "--prompt=What is on the table?", "--association=0.2,0.3,0.1",
           "--latency_budget=30", "--money_budget=0.05", "--task=Query", "--explain"});
  ASSERT_EQ(status, 0) << out;
  auto decision = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(decision.is_discarded()) << out;
  EXPECT_EQ(decision["task"], "Query");
  EXPECT_EQ(decision["scores"].size(), 9u);
  EXPECT_FALSE(decision["decision_id"].get<std::string>().empty());

  WriteFile(dir_.File("request.json"),
            R"({"conversation_id": "cli", "turn_index": 1, "prompt": "And now?",
                "views": [{"name": "view0", "association": 0.5}, {"name": "view1", "association": 0.5},
                          {"name": "view2", "association": 0.5}],
                "budget": {"latency_s": 20, "money_usd": 0.01}})");
  std::tie(status, out) = Run({LCIO_CLIENT_BIN, "decide", "--target=" + server.target(),
                               "--json=" + dir_.File("request.json")});
  ASSERT_EQ(status, 0) << out;
  EXPECT_TRUE(nlohmann::json::parse(out, nullptr, false)["task_inferred"].get<bool>());

  std::tie(status, out) =
      Run({LCIO_CLIENT_BIN, "decide", "--target=" + server.target(), "--conversation=cli2",
           "--turn=0", "--prompt=x", "--association=0.2,2,0.1"});
  EXPECT_EQ(WEXITSTATUS(status), 1);
  // Errors go to stderr: stdout holds only answers.
  EXPECT_EQ(out, "");
  auto error = nlohmann::json::parse(ReadFile(dir_.File("run.stderr")), nullptr, false);
  EXPECT_EQ(error["code"], "INVALID_ARGUMENT") << ReadFile(dir_.File("run.stderr"));
  EXPECT_TRUE(absl::StrContains(error["message"].get<std::string>(), "views[1].association"));

  std::tie(status, out) = Run({LCIO_CLIENT_BIN, "policy", "--target=" + server.target()});
  ASSERT_EQ(status, 0) << out;
  EXPECT_EQ(nlohmann::json::parse(out, nullptr, false)["actions"].size(), 9u);
}

// An artifact with a validated fallback table, served by the real binaries:
// GetPolicy counts its cells, and a conversation in a fallback cell is
// proposed the cell's fixed action and says so.
TEST_F(EndToEndTest, TheFallbackTableIsDescribedAndApplied) {
  const std::string policy = dir_.File("fallback.pt");
  const env::Budget budget{30, 0.05};
  const env::FallbackTable table({FallbackCell("Wired", budget, /*fixed_action=*/1, false),
                                  FallbackCell("4G", budget, /*fixed_action=*/0, true)});
  ASSERT_TRUE(WriteFallbackArtifact(policy, {}, table).ok());
  Server server = StartServer({"--policy=" + policy});
  auto [status, out] = Run({LCIO_CLIENT_BIN, "policy", "--target=" + server.target()});
  ASSERT_EQ(status, 0) << out;
  auto info = nlohmann::json::parse(out, nullptr, false);
  EXPECT_EQ(info["fallback_cells"], 2) << out;
  EXPECT_EQ(info["fallback_policy_cells"], 1) << out;
  std::tie(status, out) =
      Run({LCIO_CLIENT_BIN, "decide", "--target=" + server.target(), "--conversation=fb",
           "--turn=0", "--prompt=What is on the table?", "--association=0.2,0.3,0.1",
           "--latency_budget=30", "--money_budget=0.05", "--task=Query",
           std::string("--device=") + kFallbackDevice, "--network=Wired"});
  ASSERT_EQ(status, 0) << out;
  auto decision = nlohmann::json::parse(out, nullptr, false);
  EXPECT_EQ(decision["fallback_fixed_action"], true) << out;
  EXPECT_EQ(decision["proposed_action"], 1) << out;
}

// Undecodable requests used to get UNIMPLEMENTED with no message, went
// uncounted, and protobuf wrote a "[libprotobuf ERROR ...]" line into the
// JSON log; a 60 KB name came back whole and lcio-client retried it.
TEST_F(EndToEndTest, HostileRequestsGetShortInvalidArgumentAndTheLogStaysJson) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  Server server = StartServer({"--policy=" + policy});
  v1::DecideRequest request;
  request.set_conversation_id("raw");
  request.set_prompt("PROMPT");
  std::string bytes = request.SerializeAsString();
  bytes.replace(bytes.find("PROMPT"), 6, "PR\xc3\x28OM");  // invalid UTF-8
  for (const std::string& body :
       {bytes, std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"),
        bytes.substr(0, bytes.size() - 3)}) {
    const grpc::Status s = RawUnaryCall(server.target(), "/lcio.v1.Offloader/Decide", body);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_TRUE(absl::StrContains(s.error_message(), "is not a valid lcio.v1.DecideRequest"))
        << s.error_message();
  }
  auto [status, out] =
      Run({LCIO_CLIENT_BIN, "decide", "--target=" + server.target(), "--conversation=big",
           "--turn=0", "--prompt=x", "--association=0.2,0.3,0.1", "--latency_budget=30",
           "--money_budget=0.05", "--device=" + std::string(60 << 10, 'd')});
  EXPECT_EQ(WEXITSTATUS(status), 1) << out.substr(0, 300);
  EXPECT_EQ(out, "");  // errors go to stderr
  const std::string printed = ReadFile(dir_.File("run.stderr"));
  auto error = nlohmann::json::parse(printed, nullptr, false);
  EXPECT_EQ(error["code"], "INVALID_ARGUMENT") << printed.substr(0, 300);
  EXPECT_LT(printed.size(), 1024u);
  const auto m = Scrape(server);
  // Three undecodable calls and one call (not retried) with the long name.
  EXPECT_EQ(Metric(m, "lcio_decide_requests_total{code=\"INVALID_ARGUMENT\"}"), 4);
  EXPECT_EQ(Metric(m, "lcio_decide_requests_total{code=\"RESOURCE_EXHAUSTED\"}"), 0);

  server.process->Signal(SIGTERM);
  ASSERT_TRUE(server.process->Wait(60s));
  const std::string log = ReadFile(dir_.File("server.stderr"));
  int lines = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    ++lines;
    EXPECT_FALSE(nlohmann::json::parse(line, nullptr, false).is_discarded())
        << "not a JSON line: " << line.substr(0, 300);
    EXPECT_LT(line.size(), 4096u) << line.substr(0, 300);
  }
  EXPECT_GT(lines, 0);
}

// Every rejected Decide used to write an info line: a client could fill the
// log as fast as it could send. Now at most 10 a second (by the server's
// clock), and the next line written says how many were left out.
// The server's `event` lines in `log` are rate-limited (10 per limiter
// second) and, with the `suppressed` counts they carry, account for all
// `total` events, the last of which came in a later second.
void ExpectRateLimitedLines(const std::string& log, const std::string& event, int64_t total) {
  std::map<std::string, int> lines_per_second;  // by the "ts" second
  int64_t lines = 0, suppressed = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    auto json = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(json.is_discarded()) << line.substr(0, 300);
    if (json["event"] != event) continue;
    ++lines;
    suppressed += json.value("suppressed", int64_t{0});
    ++lines_per_second[json["ts"].get<std::string>().substr(0, 19)];
  }
  // 10 per limiter second; a line's timestamp may fall in the next second.
  for (const auto& [second, count] : lines_per_second) EXPECT_LE(count, 20) << event << second;
  EXPECT_LT(lines, total - 1) << event;
  EXPECT_EQ(lines + suppressed, total) << event;
}

TEST_F(EndToEndTest, RejectedDecideLinesAreRateLimitedAndCountTheSuppressed) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  Server server = StartServer({"--policy=" + policy});
  auto client = MakeClient(server);
  v1::DecideRequest bad;
  bad.set_conversation_id("flood");  // no prompt: INVALID_ARGUMENT
  v1::DecideResponse response;
  constexpr int kCalls = 1000;
  for (int i = 0; i < kCalls; ++i)
    ASSERT_EQ(client->DecideOnce(bad, &response, absl::Seconds(30)).code(),
              absl::StatusCode::kInvalidArgument);
  // One more in a later clock second, so that a line reports the rest.
  absl::SleepFor(absl::Seconds(1.1));
  ASSERT_EQ(client->DecideOnce(bad, &response, absl::Seconds(30)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Metric(Scrape(server), "lcio_decide_requests_total{code=\"INVALID_ARGUMENT\"}"),
            kCalls + 1);
  server.process->Signal(SIGTERM);
  ASSERT_TRUE(server.process->Wait(60s));

  ExpectRateLimitedLines(ReadFile(dir_.File("server.stderr")), "decide_rejected", kCalls + 1);
}

TEST_F(EndToEndTest, TlsAndMutualTlsWithTheRealBinaries) {
  Certificates certs;
  ASSERT_TRUE(MakeCertificates(dir_.path(), &certs)) << "openssl failed";
  const std::string policy = WriteArtifact("policy.pt", 1);
  Server server = StartServer({"--policy=" + policy, "--tls_cert=" + certs.server_cert,
                               "--tls_key=" + certs.server_key, "--tls_client_ca=" + certs.ca_cert},
                              false);
  auto [status, out] =
      Run({LCIO_CLIENT_BIN, "policy", "--target=" + server.target(), "--tls_ca=" + certs.ca_cert,
           "--tls_cert=" + certs.client_cert, "--tls_key=" + certs.client_key, "--attempts=1"});
  EXPECT_EQ(status, 0) << out;
  std::tie(status, out) = Run({LCIO_CLIENT_BIN, "policy", "--target=" + server.target(),
                               "--tls_ca=" + certs.ca_cert, "--attempts=1", "--timeout_s=3"});
  EXPECT_NE(status, 0) << out;  // mutual TLS: no client certificate, no call
  std::tie(status, out) = Run(
      {LCIO_CLIENT_BIN, "policy", "--target=" + server.target(), "--attempts=1", "--timeout_s=3"});
  EXPECT_NE(status, 0) << out;  // plaintext
}

TEST_F(EndToEndTest, TheDefaultPolicyStarts) {
  const std::string default_policy = std::string(LCIO_SOURCE_DIR) + "/policy/default_policy.pt";
  if (!std::filesystem::exists(default_policy))
    GTEST_SKIP() << default_policy << " is not there yet (the trainer produces it)";
  Server server = StartServer({});  // no --policy: the default
  auto client = MakeClient(server);
  v1::PolicyInfo info;
  ASSERT_TRUE(client->GetPolicy(&info).ok());
  EXPECT_GT(info.actions_size(), 1);
}

// --- Report log under disk faults (tests/faults/fault_shim.cc preloaded) ---

v1::ReportRequest TurnReport(const std::string& conversation, int turn) {
  v1::ReportRequest r;
  r.set_conversation_id(conversation);
  r.set_turn_index(turn);
  r.set_prompt(absl::StrCat("prompt ", turn));
  r.set_task("Query");
  r.set_target(v1::TARGET_LOCAL);
  for (double a : {0.1, 0.5, 0.9}) r.add_association(a);
  r.set_answer("answer");
  r.set_score(0.5);
  r.set_interaction_time_s(1);
  r.set_usage_cost_usd(0.001);
  return r;
}

// A second server on a log being written, or one server with both logs on
// one file, would rotate and cut back over acknowledged records: refused at
// start, naming the log; the first server keeps serving.
TEST_F(EndToEndTest, ALogAlreadyBeingWrittenIsRefusedAtStart) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  const std::string log = dir_.File("reports.log");
  Server first = StartServer({"--policy=" + policy, "--report_log=" + log});
  const std::vector<std::vector<std::string>> refused = {
      {"--report_log=" + log},
      {"--report_log=" + dir_.File("both.log"), "--decision_log=" + dir_.File("both.log")}};
  for (const auto& flags : refused) {
    std::vector<std::string> argv = {LCIO_SERVER_BIN, "--policy=" + policy, "--listen=127.0.0.1:0",
                                     "--metrics_listen="};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto [status, out] = Run(argv, 60s);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << status;
    const std::string error = ReadFile(dir_.File("run.stderr"));
    EXPECT_TRUE(absl::StrContains(error, "is already being written")) << error;
    EXPECT_TRUE(absl::StrContains(error, "one writer per log")) << error;
  }
  auto client = MakeClient(first);
  v1::DecideResponse decided;
  ASSERT_TRUE(client->Decide(FirstTurn("still-serving"), &decided).ok());
  v1::ReportRequest report = TurnReport("still-serving", 0);
  report.set_decision_id(decided.decision_id());
  v1::ReportResponse acknowledged;
  ASSERT_TRUE(client->Report(report, &acknowledged).ok());
  auto contents = server::ReadReportLog(log);
  ASSERT_TRUE(contents.ok()) << contents.status();
  EXPECT_EQ(contents->records.size(), 1u);
}

std::vector<std::string> FaultEnv(const std::vector<std::string>& settings) {
  std::vector<std::string> env = {std::string("LD_PRELOAD=") + LCIO_FAULT_SHIM,
                                  "LCIO_FAULT_PATH=reports.log"};
  env.insert(env.end(), settings.begin(), settings.end());
  return env;
}

std::set<std::pair<std::string, int>> RecordsOnDisk(const std::string& log, int* skipped) {
  auto contents = server::ReadReportLog(log);
  EXPECT_TRUE(contents.ok()) << contents.status();
  std::set<std::pair<std::string, int>> on_disk;
  if (!contents.ok()) return on_disk;
  *skipped = contents->skipped_lines;
  for (const auto& r : contents->records) on_disk.emplace(r.conversation_id, r.turn_index);
  return on_disk;
}

// Waits (bounded) until `path` has bytes: a Report batch has been written.
bool WaitForBytes(const std::string& path) {
  for (int i = 0; i < 600; ++i) {
    std::error_code error;
    if (std::filesystem::file_size(path, error) > 0 && !error) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

TEST_F(EndToEndTest, ASlowDiskDelaysReportsButNotDecides) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  const std::string log = dir_.File("reports.log");
  Server server = StartServer({"--policy=" + policy, "--report_log=" + log}, true,
                              FaultEnv({"LCIO_FAULT_FSYNC_DELAY_MS=3000"}));
  std::atomic<int> reports_answered{0}, reports_ok{0};
  std::vector<std::thread> reporters;
  for (int w = 0; w < 16; ++w)
    reporters.emplace_back([&, w] {
      ClientOptions options;
      options.target = server.target();
      options.timeout = absl::Seconds(120);
      auto client = Client::Create(options);
      v1::ReportResponse response;
      if ((*client)->Report(TurnReport(absl::StrCat("r", w), 0), &response).ok()) ++reports_ok;
      ++reports_answered;
    });
  // Once the first batch is written, its fdatasync holds it for 3 s and the
  // other Reports queue behind it. Sequential Decides are answered
  // meanwhile: none waits for the disk.
  EXPECT_TRUE(WaitForBytes(log)) << "no Report reached the log";  // not ASSERT: join below
  auto client = MakeClient(server);
  int decided_before_any_report = 0;
  for (int turn = 0; turn < 3; ++turn) {
    v1::DecideResponse response;
    const absl::Status decided = client->Decide(lcio::test::QueryTurn("fast", turn), &response);
    EXPECT_TRUE(decided.ok()) << decided;  // not ASSERT: the reporters must be joined
    if (decided.ok() && reports_answered.load() == 0) ++decided_before_any_report;
  }
  EXPECT_EQ(decided_before_any_report, 3) << "a Decide waited for a Report's fdatasync";
  for (auto& t : reporters) t.join();
  EXPECT_EQ(reports_ok.load(), 16);
  int skipped = -1;
  EXPECT_EQ(RecordsOnDisk(log, &skipped).size(), 16u);
  EXPECT_EQ(skipped, 0);
}

TEST_F(EndToEndTest, AFullDiskRefusesReportsLosesNoAcknowledgedOneAndDecidesGoOn) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  const std::string log = dir_.File("reports.log");
  const std::string limit = dir_.File("disk_limit");  // absent: room enough
  Server server = StartServer({"--policy=" + policy, "--report_log=" + log}, true,
                              FaultEnv({"LCIO_FAULT_WRITE_ENOSPC_AFTER=@" + limit}));
  ClientOptions options;
  options.target = server.target();
  auto client = Client::Create(options);
  ASSERT_TRUE(client.ok());
  std::vector<std::pair<std::string, int>> acknowledged;
  int turn = 0;
  auto report = [&] {
    v1::ReportResponse response;
    const v1::ReportRequest r = TurnReport("full", turn++);
    const absl::Status s = (*client)->Report(r, &response);
    if (s.ok()) acknowledged.emplace_back(r.conversation_id(), r.turn_index());
    return s;
  };
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(report().ok());
  // The disk fills up in the middle of the next record.
  WriteFile(limit, std::to_string(std::filesystem::file_size(log) + 60));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(report().code(), absl::StatusCode::kResourceExhausted);
  v1::DecideResponse decided;
  EXPECT_TRUE((*client)->Decide(lcio::test::QueryTurn("full", 0), &decided).ok());
  std::filesystem::remove(limit);  // space again
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(report().ok());
  const auto m = Scrape(server);
  EXPECT_EQ(Metric(m, "lcio_reports_rejected_total{reason=\"disk_space\"}"), 3);
  EXPECT_EQ(Metric(m, "lcio_reports_total"), 6);

  // After a restart every acknowledged record reads back, and no line is torn.
  server.process->Signal(SIGKILL);
  ASSERT_TRUE(server.process->Wait(10s).has_value());
  server = StartServer({"--policy=" + policy, "--report_log=" + log});
  options.target = server.target();
  client = Client::Create(options);
  ASSERT_TRUE(report().ok());
  int skipped = -1;
  const auto on_disk = RecordsOnDisk(log, &skipped);
  EXPECT_EQ(skipped, 0);
  EXPECT_EQ(on_disk.size(), 7u);
  for (const auto& ack : acknowledged)
    EXPECT_TRUE(on_disk.count(ack)) << ack.first << " turn " << ack.second << " lost";
}

// A failing disk fails every Report, and each failure was one error line
// written on the log's writer thread: a flood of them could fill stderr's
// pipe and stall the writer. They are rate-limited as decide_rejected is.
TEST_F(EndToEndTest, ReportWriteFailedLinesAreRateLimitedAndCountTheSuppressed) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  Server server = StartServer({"--policy=" + policy, "--report_log=" + dir_.File("reports.log")},
                              true, FaultEnv({"LCIO_FAULT_WRITE_ENOSPC_AFTER=0"}));
  auto client = MakeClient(server);
  constexpr int kReports = 300;
  v1::ReportResponse response;
  for (int i = 0; i < kReports; ++i)
    ASSERT_EQ(client->Report(TurnReport("full", i), &response).code(),
              absl::StatusCode::kResourceExhausted);
  absl::SleepFor(absl::Seconds(1.1));  // a later clock second: a line reports the rest
  ASSERT_EQ(client->Report(TurnReport("full", kReports), &response).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Metric(Scrape(server), "lcio_reports_rejected_total{reason=\"disk_space\"}"),
            kReports + 1);
  server.process->Signal(SIGTERM);
  ASSERT_TRUE(server.process->Wait(60s));
  ExpectRateLimitedLines(ReadFile(dir_.File("server.stderr")), "report_write_failed", kReports + 1);
}

TEST_F(EndToEndTest, TheDrainTimeoutHoldsWithAHungDisk) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  const std::string log = dir_.File("reports.log");
  Server server =
      StartServer({"--policy=" + policy, "--report_log=" + log, "--drain_timeout_s=1"}, true,
                  FaultEnv({"LCIO_FAULT_FSYNC_DELAY_MS=120000"}));  // hung for the test
  std::atomic<int> ok{0}, answered{0};
  std::vector<std::thread> reporters;
  for (int w = 0; w < 4; ++w)
    reporters.emplace_back([&, w] {
      ClientOptions options;
      options.target = server.target();
      options.timeout = absl::Seconds(60);
      auto client = Client::Create(options);
      v1::ReportResponse response;
      if ((*client)->Report(TurnReport(absl::StrCat("hung", w), 0), &response).ok()) ++ok;
      ++answered;
    });
  const bool stuck = WaitForBytes(log);  // a batch is written, its fdatasync hangs
  EXPECT_TRUE(stuck) << "no Report reached the log";
  server.process->Signal(SIGTERM);
  // Far below the hung fdatasync: the process does not wait for the disk.
  auto status = server.process->Wait(30s);
  EXPECT_TRUE(status.has_value()) << "the server waited for the hung disk";
  if (status.has_value()) {
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  } else {
    server.process->Signal(SIGKILL);  // so that the reporters return
  }
  for (auto& t : reporters) t.join();
  EXPECT_EQ(answered.load(), 4);
  EXPECT_EQ(ok.load(), 0);  // none was durable, none was acknowledged
}

// A policy reload blocked reading its file (a hung disk) held up the whole
// shutdown: the drain waited for the watcher first, without bound.
TEST_F(EndToEndTest, AReloadStuckInAReadDoesNotHoldUpTheShutdown) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  const std::string delay = dir_.File("read_delay_ms");
  Server server = StartServerWithSlowPolicyReads(policy, delay);
  WriteFile(delay, "120000");  // hung for the test
  test::ReplaceFile(WriteArtifact("next.pt", 2), policy);
  std::this_thread::sleep_for(1s);  // the watcher sees the change and hangs in its read
  auto client = MakeClient(server);
  v1::DecideResponse response;
  EXPECT_TRUE(client->Decide(lcio::test::QueryTurn("during", 0), &response).ok());
  // A SIGHUP reload does not wait behind the stuck one (the signal loop
  // would then never read the SIGTERM).
  server.process->Signal(SIGHUP);
  std::this_thread::sleep_for(200ms);
  const std::string log = ExpectExitOnSigterm(server, "the shutdown waited for the hung read");
  EXPECT_TRUE(absl::StrContains(log, "\"event\":\"policy_watcher_stuck\"")) << log.substr(0, 2000);
  EXPECT_TRUE(absl::StrContains(log, "\"event\":\"shutdown_complete\""));
  EXPECT_TRUE(absl::StrContains(log, "\"event\":\"policy_reload_skipped\""));
}

// The SIGHUP reload itself stuck in its read: it ran on the signal loop,
// which then never read the SIGTERM (only SIGKILL ended the server).
TEST_F(EndToEndTest, ASighupReloadStuckInAReadDoesNotHoldUpTheShutdown) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  const std::string delay = dir_.File("read_delay_ms");
  Server server = StartServerWithSlowPolicyReads(policy, delay);
  WriteFile(delay, "120000");  // the file does not change: only the SIGHUP reads it
  server.process->Signal(SIGHUP);
  std::this_thread::sleep_for(500ms);  // the reload hangs in its read
  auto client = MakeClient(server);
  v1::DecideResponse response;
  EXPECT_TRUE(client->Decide(lcio::test::QueryTurn("during", 0), &response).ok());
  const std::string log =
      ExpectExitOnSigterm(server, "the SIGTERM was not read behind the SIGHUP's reload");
  EXPECT_TRUE(absl::StrContains(log, "\"event\":\"shutdown_complete\"")) << log.substr(0, 2000);
}

TEST_F(EndToEndTest, ReportExportReadsTheRotatedSeriesAndSetsAsideRecordsOfAnotherSchema) {
  server::ReportRecord r;
  r.task = "Query";
  r.view_names = {"view0", "view1"};
  r.association = {0.5, 0.5};
  r.tasks = {"Query"};
  const std::string log = dir_.File("reports.log");
  r.conversation_id = "old";
  WriteFile(log + ".000001", server::EncodeReportLine(r));  // rotated away earlier
  server::ReportRecord other = r;
  other.conversation_id = "other-policy";
  other.view_names = {"front"};
  other.association = {0.5};
  r.conversation_id = "new";
  WriteFile(log, server::EncodeReportLine(r) + server::EncodeReportLine(other));
  const std::string out = dir_.File("traffic.json");
  auto [status, printed] = Run({LCIO_REPORT_EXPORT_BIN, "--log=" + log, "--out=" + out});
  EXPECT_NE(status, 0) << "a record of another schema vanished silently: " << printed;
  const std::string rejects = dir_.File("rejects.log");
  std::tie(status, printed) =
      Run({LCIO_REPORT_EXPORT_BIN, "--log=" + log, "--out=" + out, "--rejects=" + rejects});
  ASSERT_EQ(status, 0) << printed;
  auto dataset = data::LoadM4A1File(out);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ(dataset->episodes.size(), 2u);  // "old" from the rotated file, "new"
  auto set_aside = server::ReadReportLog(rejects);
  ASSERT_TRUE(set_aside.ok()) << set_aside.status();
  ASSERT_EQ(set_aside->records.size(), 1u);
  EXPECT_EQ(set_aside->records[0].conversation_id, "other-policy");
}

// --- The command line: --help, --version, start-up errors, reflection ---

struct Binary {
  std::string path, flag;  // one of the binary's own flags
};

std::vector<Binary> AllBinaries() {
  return {{LCIO_SERVER_BIN, "--listen"},
          {LCIO_CLIENT_BIN, "--target"},
          {LCIO_LOADGEN_BIN, "--concurrency"},
          {LCIO_REPORT_EXPORT_BIN, "--log"},
          {LCIO_TRAIN_BIN, "--algo"},
          {LCIO_EVAL_BIN, "--algos"},
          {LCIO_SYNTH_BIN, "--episodes"},
          {LCIO_POLICY_INFO_BIN, "--classify"},
          {LCIO_JOIN_BIN, "--decisions"},
          {LCIO_OPE_BIN, "--candidates"},
          {LCIO_CALIBRATE_BIN, "--target_cloud_share"}};
}

std::string BaseName(const std::string& path) { return path.substr(path.rfind('/') + 1); }

// --help used to print "No flags matched." on every binary, and --version no
// version.
TEST_F(EndToEndTest, EveryBinaryHasHelpWithItsOwnFlagsAndAVersion) {
  for (const Binary& binary : AllBinaries()) {
    const std::string name = BaseName(binary.path);
    auto [status, out] = Run({binary.path, "--help"}, 60s);
    EXPECT_EQ(status, 0) << name;
    EXPECT_TRUE(absl::StartsWith(out, absl::StrCat("usage: ", name, " "))) << out;
    EXPECT_TRUE(absl::StrContains(out, "\n  " + binary.flag + "  (default: ")) << name << out;
    EXPECT_TRUE(absl::StrContains(out, "--version")) << name;
    for (const char* noise : {"No flags matched", "absl", "--flagfile", "--undefok", ".cc"})
      EXPECT_FALSE(absl::StrContains(out, noise)) << name << ": " << noise;
    EXPECT_FALSE(absl::StrContains(out, LCIO_SOURCE_DIR)) << name;

    std::tie(status, out) = Run({binary.path, "--version"}, 60s);
    EXPECT_EQ(status, 0) << name;
    EXPECT_EQ(out, absl::StrCat(name, " ", LCIO_VERSION, "\n"));

    std::tie(status, out) = Run({binary.path, "--no_such_flag=1"}, 60s);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << name << " " << status;
    const std::string error = ReadFile(dir_.File("run.stderr"));
    EXPECT_TRUE(absl::StrContains(error, "--no_such_flag")) << error;
    EXPECT_TRUE(absl::StrContains(error, name + " --help")) << error;
  }
}

// A value a flag's type cannot hold (--turn=abc) exited 1, Abseil's own
// status, where every other usage error exits 2.
TEST_F(EndToEndTest, AFlagValueOfTheWrongTypeIsAUsageError) {
  const std::vector<std::vector<std::string>> cases = {{LCIO_CLIENT_BIN, "decide", "--turn=abc"},
                                                       {LCIO_TRAIN_BIN, "--timesteps", "many"},
                                                       {LCIO_SERVER_BIN, "--max_inflight=1.5"},
                                                       {LCIO_LOADGEN_BIN, "--json=maybe"}};
  for (const auto& argv : cases) {
    auto [status, out] = Run(argv, 60s);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << argv[0] << " " << status;
    const std::string error = ReadFile(dir_.File("run.stderr"));
    EXPECT_TRUE(absl::StrContains(error, "Illegal value")) << error;
    EXPECT_TRUE(absl::StrContains(error, "--help")) << error;
  }
  // lcio-client: a request field beside --json was ignored in silence, and a
  // negative timeout made three attempts that could not succeed.
  const std::vector<std::pair<std::vector<std::string>, std::string>> client_cases = {
      {{LCIO_CLIENT_BIN, "decide", "--json=" + dir_.File("request.json"), "--conversation=other",
        "--money_budget=0"},
       "--json is the whole request; remove --conversation, --money_budget"},
      // Also at its default value (it was compared with the default).
      {{LCIO_CLIENT_BIN, "decide", "--json=" + dir_.File("request.json"), "--turn=0",
        "--noexplain"},
       "--json is the whole request; remove --turn, --explain"},
      {{LCIO_CLIENT_BIN, "policy", "--timeout_s=-1"}, "--timeout_s=-1: must be in (0, 3600]"},
      // Abseil's own parse exited 1 for these two.
      {{LCIO_CLIENT_BIN, "decide", "--noexplain=x"},
       "--noexplain: a negated bool flag takes no value"},
      {{LCIO_CLIENT_BIN, "policy", "--timeout_s"}, "--timeout_s: needs a value"},
      // A bool flag's value written apart was a positional argument, ignored.
      {{LCIO_TRAIN_BIN, "--evaluate", "false"},
       "unexpected argument 'false' (a bool flag takes its value after '=': --flag=false)"},
      {{LCIO_CLIENT_BIN, "policy", "health"}, "unexpected argument 'health'"},
      {{LCIO_REPORT_EXPORT_BIN, "--log=a.log", "--out=b.json", "extra"},
       "unexpected argument 'extra'"},
      // A device was read without end; so was standard input.
      {{LCIO_CLIENT_BIN, "decide", "--json=/dev/zero"}, "not a regular file"},
      {{"/bin/bash", "-c", std::string(LCIO_CLIENT_BIN) + " decide --json=- </dev/zero"},
       "json = \"-\": standard input holds more than 16777216 bytes"},
      {{LCIO_SERVER_BIN, "--listen=127.0.0.1:0", "--metrics_listen=", "--tls_cert=/dev/zero",
        "--tls_key=/dev/zero"},
       "tls_cert = \"/dev/zero\": not a regular file"}};
  for (const auto& [argv, message] : client_cases) {
    auto [status, out] = Run(argv, 60s);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << message << " " << status;
    const std::string error = ReadFile(dir_.File("run.stderr"));
    EXPECT_TRUE(absl::StrContains(error, message)) << error;
  }
}

// --listen=50811 used to end in a raw gRPC error dump.
// lcio-synth: a size that asked for more memory or disk than a machine has
// is refused before any work, a directory as --out is a usage error (it
// exited 1), and the output appears whole or not at all.
TEST_F(EndToEndTest, TheSyntheticDataGeneratorRefusesWhatCannotWorkAndWritesWhole) {
  const std::string out = dir_.File("synth.json");
  for (const std::vector<std::string>& argv :
       {std::vector<std::string>{LCIO_SYNTH_BIN, "--episodes=2000000000", "--out=" + out},
        {LCIO_SYNTH_BIN, "--episodes=1", "--answer_length=2000000000", "--out=" + out},
        {LCIO_SYNTH_BIN, "--episodes=1", "--out=" + dir_.File("")}}) {
    auto [status, stdout_text] = Run(argv, 60s);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << argv[1] << " " << status;
    EXPECT_FALSE(std::filesystem::exists(out)) << argv[1];
  }
  auto [status, stdout_text] = Run({LCIO_SYNTH_BIN, "--episodes=3", "--out=" + out}, 60s);
  ASSERT_EQ(status, 0) << ReadFile(dir_.File("run.stderr"));
  EXPECT_TRUE(data::LoadM4A1File(out).ok());
  for (const auto& entry : std::filesystem::directory_iterator(dir_.File("")))
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos)
        << "a temporary file was left: " << entry.path();
}

// A flag file is read as the command line is: each error in it is a usage
// error (exit 2) naming the flag or the file. Abseil's own parse exited 1.
TEST_F(EndToEndTest, AFlagFileIsCheckedAsTheCommandLineIs) {
  const std::string missing = dir_.File("missing.flags");
  WriteFile(dir_.File("bad_value.flags"), "# a comment\n\n  --max_inflight=1.5  \n");
  WriteFile(dir_.File("unknown.flags"), "--no_such_flag=1\n");
  WriteFile(dir_.File("word.flags"), "serve\n");
  WriteFile(dir_.File("separate.flags"), "--listen\n127.0.0.1:0\n");
  WriteFile(dir_.File("loop.flags"), "--flagfile=" + dir_.File("loop.flags") + "\n");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {missing, "--flagfile: cannot read " + missing},
      {dir_.File("bad_value.flags"), "--max_inflight=1.5: Illegal value"},
      {dir_.File("unknown.flags"), "unknown flag --no_such_flag in flag file"},
      {dir_.File("word.flags"), "'serve' is not a flag"},
      {dir_.File("separate.flags"), "--listen: needs a value in flag file"},
      {dir_.File("loop.flags"), "flag files nested deeper than 8"}};
  for (const auto& [file, message] : cases) {
    auto [status, out] = Run({LCIO_SERVER_BIN, "--flagfile=" + file}, 60s);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << file << " " << status;
    const std::string error = ReadFile(dir_.File("run.stderr"));
    EXPECT_TRUE(absl::StrContains(error, message)) << error;
    EXPECT_TRUE(absl::StrContains(error, "lcio-server --help")) << error;
  }
  // A good one is read: its --version line ends the run before anything starts.
  WriteFile(dir_.File("good.flags"), "# comment\n--listen=127.0.0.1:0\n--version\n");
  auto [status, out] = Run({LCIO_SERVER_BIN, "--flagfile=" + dir_.File("good.flags")}, 60s);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(out, absl::StrCat("lcio-server ", LCIO_VERSION, "\n"));
}

TEST_F(EndToEndTest, AListenAddressWithoutHostIsAUsageErrorNamingFlagValueAndRule) {
  auto [status, out] = Run({LCIO_SERVER_BIN, "--listen=50811", "--metrics_listen="}, 60s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status;
  const std::string error = ReadFile(dir_.File("run.stderr"));
  EXPECT_TRUE(absl::StrContains(error, "listen = \"50811\"")) << error;
  EXPECT_TRUE(absl::StrContains(error, "HOST:PORT")) << error;
  EXPECT_FALSE(absl::StrContains(error, "grpc")) << error;
}

// An output naming an input (through any spelling) replaced it: the Report
// log, the decision log, the data set, with exit 0.
TEST_F(EndToEndTest, NoToolWritesItsOutputOverAnInput) {
  server::ReportRecord record;
  record.conversation_id = "c";
  record.task = "Query";
  record.view_names = {"v0", "v1", "v2"};
  record.association = {0.2, 0.3, 0.5};
  record.score = 5;
  record.interaction_time_s = 2;
  record.tasks = {"Assistive System", "Message Editing", "Query", "Recommendation"};
  const std::string reports = dir_.File("reports.log");
  const std::string line = server::EncodeReportLine(record);
  WriteFile(reports, line);
  std::filesystem::create_symlink(reports, dir_.File("alias.log"));
  const std::string data = dir_.File("data.json");
  std::filesystem::copy_file(std::string(LCIO_SOURCE_DIR) + "/data/M4A1.json", data);
  const std::string data_before = ReadFile(data);
  const std::string policy = WriteArtifact("policy.pt", 1);
  const std::string policy_before = ReadFile(policy);
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{LCIO_REPORT_EXPORT_BIN, "--log=" + reports, "--out=" + dir_.File("alias.log")}, "--out = "},
      {{LCIO_REPORT_EXPORT_BIN, "--log=" + reports, "--out=" + dir_.File("x.json"),
        "--rejects=" + reports},
       "--rejects = "},
      {{LCIO_REPORT_EXPORT_BIN, "--log=" + reports, "--out=" + dir_.File("x.json"),
        "--holdout_share=0.5", "--holdout_out=" + data, "--base=" + data},
       "--holdout_out = "},
      {{LCIO_JOIN_BIN, "--decisions=" + reports, "--reports=" + reports, "--out=" + reports},
       "--out = "},
      {{LCIO_EVAL_BIN, "--data=" + data, "--splits=1", "--oracle=false", "--json_out=" + data},
       "--json_out = "},
      {{LCIO_TRAIN_BIN, "--data=" + data, "--timesteps=64", "--out=" + data}, "--out = "},
      {{LCIO_OPE_BIN, "--data=" + data, "--simulate_out=" + data}, "--simulate_out = "},
      // Policy artifacts are inputs too.
      {{LCIO_EVAL_BIN, "--splits=1", "--oracle=false", "--fixed=false", "--policy=" + policy,
        "--json_out=" + policy},
       "--json_out = "},
      {{LCIO_OPE_BIN, "--logging_policy=" + policy, "--simulate_out=" + policy},
       "--simulate_out = "}};
  for (const auto& [argv, flag] : cases) {
    auto [status, out] = Run(argv, 120s);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << argv[0] << " " << status;
    const std::string error = ReadFile(dir_.File("run.stderr"));
    EXPECT_TRUE(absl::StrContains(error, flag)) << error;
    EXPECT_TRUE(absl::StrContains(error, "writing it would replace what is read")) << error;
    EXPECT_EQ(ReadFile(reports), line) << argv[0];
    EXPECT_EQ(ReadFile(data), data_before) << argv[0];
    EXPECT_EQ(ReadFile(policy), policy_before) << argv[0];
  }
  // Two outputs named by two spellings of one path: the hold-out replaced
  // the training export.
  for (const char* flag : {"--holdout_out=", "--rejects="}) {
    auto [status, out] =
        Run({LCIO_REPORT_EXPORT_BIN, "--log=" + reports, "--out=" + dir_.File("x.json"),
             "--holdout_share=0.5", "--holdout_out=" + dir_.File("h.json"),
             std::string(flag) + dir_.path() + "/./x.json"},
            60s);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << flag << " " << status;
    EXPECT_TRUE(absl::StrContains(ReadFile(dir_.File("run.stderr")), "must differ")) << flag;
  }
}

// A FIFO renamed over the policy path between the loader's size check and
// its open blocked the reload for ever (opening a FIFO waits for a writer),
// and SIGTERM, taken by the same thread, never ended the process. Swapping
// a FIFO and the policy in a tight loop under SIGHUPs hit the window within
// a tenth of a second.
TEST_F(EndToEndTest, APolicyPathSwappedForAFifoNeverHangsAReloadOrTheShutdown) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  const std::string served = dir_.File("served.pt");
  std::filesystem::copy_file(policy, served);
  Server server = StartServer({"--policy=" + served, "--watch_interval_ms=10",
                               "--drain_timeout_s=3", "--shutdown_grace_ms=0"});
  std::atomic<bool> stop{false};
  std::thread swapper([&] {
    for (int i = 0; !stop; ++i) {
      const std::string fifo = dir_.File(absl::StrCat("fifo", i));
      const std::string copy = dir_.File(absl::StrCat("copy", i));
      if (::mkfifo(fifo.c_str(), 0600) == 0) std::filesystem::rename(fifo, served);
      std::filesystem::copy_file(policy, copy);
      std::filesystem::rename(copy, served);
    }
  });
  const auto until = std::chrono::steady_clock::now() + 2s;
  while (std::chrono::steady_clock::now() < until) {
    server.process->Signal(SIGHUP);
    std::this_thread::sleep_for(5ms);
  }
  stop = true;
  swapper.join();
  auto health = MakeClient(server)->Health();
  EXPECT_TRUE(health.ok() && *health == "SERVING") << health.status();
  server.process->Signal(SIGTERM);
  auto exited = server.process->Wait(20s);
  ASSERT_TRUE(exited.has_value()) << "no exit 20 s after SIGTERM";
  EXPECT_TRUE(WIFEXITED(*exited) && WEXITSTATUS(*exited) == 0) << *exited;
}

// gRPC's default SO_REUSEPORT let a second server start on a taken port and
// take half of its connections.
TEST_F(EndToEndTest, AGrpcPortAlreadyTakenStopsTheStart) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  Server first = StartServer({"--policy=" + policy});
  auto [status, out] = Run({server_bin_, absl::StrCat("--listen=127.0.0.1:", first.port),
                            "--metrics_listen=", "--torch_device=cpu", "--policy=" + policy},
                           60s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status << " " << out;
  const std::string error = ReadFile(dir_.File("run.stderr"));
  EXPECT_TRUE(absl::StrContains(error, absl::StrCat("listen = \"127.0.0.1:", first.port, "\"")))
      << error;
  // The first server still answers.
  auto health = MakeClient(first)->Health();
  EXPECT_TRUE(health.ok() && *health == "SERVING") << health.status();
}

// An installed server (PREFIX/bin) used to default to the source tree's
// policy; it serves PREFIX/share/lcio/default_policy.pt.
TEST_F(EndToEndTest, AnInstalledServerDefaultsToTheInstalledPolicy) {
  std::filesystem::create_directories(dir_.File("prefix/bin"));
  std::filesystem::create_directories(dir_.File("prefix/share/lcio"));
  const std::string installed = dir_.File("prefix/bin/lcio-server");
  std::filesystem::copy_file(LCIO_SERVER_BIN, installed);
  policy::testing::TestArtifactOptions options;
  options.seed = 77;
  auto metadata =
      policy::testing::WriteTestArtifact(dir_.File("prefix/share/lcio/default_policy.pt"), options);
  ASSERT_TRUE(metadata.ok()) << metadata.status();
  server_bin_ = installed;
  // No --policy, from a directory without policy/ (which would come first).
  Server server = StartServer({}, true, {"--chdir=" + dir_.File("prefix")});
  auto client = MakeClient(server);
  v1::PolicyInfo info;
  ASSERT_TRUE(client->GetPolicy(&info).ok());
  EXPECT_EQ(info.policy_version(), metadata->policy_version);
}

// lcio-policy-info used to accept artifacts the server refuses (it checked
// less); both now run one validation.
TEST_F(EndToEndTest, PolicyInfoRefusesWhatTheServerRefuses) {
  policy::testing::TestArtifactOptions options;
  options.time_span = 65;  // beyond the server's conversation history window (64)
  const std::string artifact = dir_.File("long_history.pt");
  ASSERT_TRUE(policy::testing::WriteTestArtifact(artifact, options).ok());
  auto [status, out] = Run({LCIO_POLICY_INFO_BIN, artifact}, 60s);
  // 1: a valid artifact this server cannot serve (FAILED_PRECONDITION, as
  // every lcio-* tool maps it: cli::ExitStatus).
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status << out;
  EXPECT_TRUE(absl::StrContains(ReadFile(dir_.File("run.stderr")), "time_span = 65"))
      << ReadFile(dir_.File("run.stderr"));

  Server server = StartServer({"--policy=" + artifact}, /*expect_policy=*/false);
  auto health = MakeClient(server)->Health();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, "NOT_SERVING");
  EXPECT_TRUE(absl::StrContains(ReadFile(dir_.File("server.stderr")), "time_span = 65"));

  std::tie(status, out) = Run({LCIO_POLICY_INFO_BIN, WriteArtifact("good.pt", 1)}, 60s);
  EXPECT_EQ(status, 0) << ReadFile(dir_.File("run.stderr"));
  std::tie(status, out) =
      Run({LCIO_POLICY_INFO_BIN, "--device=bogus", WriteArtifact("good.pt", 1)}, 60s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status;  // it exited 1
}

// Services listed through gRPC server reflection (grpc.reflection.v1alpha),
// with a hand-encoded request (Debian ships no reflection .proto headers):
// ServerReflectionRequest{list_services: ""}, field 7.
absl::StatusOr<std::set<std::string>> ListServices(const std::string& target) {
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue queue;
  grpc::ClientContext context;
  const auto deadline = std::chrono::system_clock::now() + 30s;
  context.set_deadline(deadline);
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &queue);
  // Each operation is awaited before the next: one completion at a time.
  auto await = [&](intptr_t tag) {
    void* got = nullptr;
    bool ok = false;
    return queue.AsyncNext(&got, &ok, deadline) == grpc::CompletionQueue::GOT_EVENT && ok &&
           reinterpret_cast<intptr_t>(got) == tag;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  bool sent = await(1);
  grpc::Slice slice(std::string("\x3a\x00", 2));
  grpc::ByteBuffer request(&slice, 1), response;
  if (sent) {
    call->Write(request, reinterpret_cast<void*>(2));
    sent = await(2);
  }
  if (sent) {
    call->WritesDone(reinterpret_cast<void*>(3));
    sent = await(3);
  }
  bool read = false;
  if (sent) {
    call->Read(&response, reinterpret_cast<void*>(4));
    read = await(4);
  }
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  const bool finished = await(5);
  queue.Shutdown();
  void* got = nullptr;
  bool ok = false;
  while (queue.Next(&got, &ok)) {
  }
  if (!finished) return absl::DeadlineExceededError("reflection call did not finish");
  if (!status.ok())
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  if (!read) return absl::InternalError("no reflection response");
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (response.Dump(&slices).ok())
    for (const grpc::Slice& s : slices)
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  // ServerReflectionResponse.list_services_response (6) .service (1) .name (1)
  auto fields = [](const std::string& data, int number) {
    std::vector<std::string> found;
    google::protobuf::UnknownFieldSet set;
    if (!set.ParseFromString(data)) return found;
    for (int i = 0; i < set.field_count(); ++i)
      if (set.field(i).number() == number &&
          set.field(i).type() == google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED)
        found.push_back(set.field(i).length_delimited());
    return found;
  };
  std::set<std::string> names;
  for (const std::string& list : fields(bytes, 6))
    for (const std::string& service : fields(list, 1))
      for (const std::string& name : fields(service, 1)) names.insert(name);
  return names;
}

TEST_F(EndToEndTest, ReflectionListsTheServicesAndCanBeTurnedOff) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  {
    Server server = StartServer({"--policy=" + policy});
    auto services = ListServices(server.target());
    ASSERT_TRUE(services.ok()) << services.status();
    EXPECT_TRUE(services->count("lcio.v1.Offloader")) << absl::StrJoin(*services, ",");
    EXPECT_TRUE(services->count("grpc.health.v1.Health")) << absl::StrJoin(*services, ",");
  }
  Server server = StartServer({"--policy=" + policy, "--reflection=false"});
  EXPECT_EQ(ListServices(server.target()).status().code(), absl::StatusCode::kUnimplemented);
}

int ThreadCount(pid_t pid) {
  std::istringstream status(ReadFile(absl::StrCat("/proc/", pid, "/status")));
  std::string line;
  while (std::getline(status, line))
    if (absl::StartsWith(line, "Threads:")) return std::atoi(line.c_str() + 8);
  return -1;
}

// Reflection is a synchronous service: each open stream held a server
// thread, so idle streams grew the server by a thread (and its stack) each,
// without bound. They are bounded now; past the bound a reflection call is
// refused at once, Decide is untouched, and closing the streams frees them.
TEST_F(EndToEndTest, IdleReflectionStreamsAreBoundedAndDoNotTouchDecide) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  Server server = StartServer({"--policy=" + policy});
  auto client = MakeClient(server);
  v1::DecideResponse response;
  ASSERT_TRUE(client->Decide(FirstTurn("before"), &response).ok());
  const int base = ThreadCount(server.process->pid());
  ASSERT_GT(base, 0);

  constexpr int kStreams = 48;
  auto channel = grpc::CreateChannel(server.target(), grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue queue;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::GenericClientAsyncReaderWriter>> streams;
  for (int i = 0; i < kStreams; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    streams.push_back(
        stub.PrepareCall(contexts.back().get(),
                         "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &queue));
    streams.back()->StartCall(nullptr);
  }
  // Until the server holds as many as it will: a reflection call is refused.
  absl::Status listed;
  int threads = base;
  for (int i = 0; i < 200; ++i) {
    listed = ListServices(server.target()).status();
    threads = std::max(threads, ThreadCount(server.process->pid()));
    if (listed.code() == absl::StatusCode::kResourceExhausted) break;
    std::this_thread::sleep_for(25ms);
  }
  EXPECT_EQ(listed.code(), absl::StatusCode::kResourceExhausted) << listed;
  EXPECT_LE(threads, base + 24) << "threads grew with idle reflection streams";
  const absl::Status decided = client->Decide(FirstTurn("during"), &response);
  EXPECT_TRUE(decided.ok()) << decided;

  for (auto& context : contexts) context->TryCancel();
  for (int i = 0; i < 400 && !listed.ok(); ++i) {
    std::this_thread::sleep_for(25ms);
    listed = ListServices(server.target()).status();
  }
  EXPECT_TRUE(listed.ok()) << listed;
  streams.clear();
  queue.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (queue.Next(&tag, &ok)) {
  }
}

// --- Decision log, exploration and shadow policy ---

TEST_F(EndToEndTest, TheDecisionLogRecordsEveryDecisionWithExplorationAndTheShadowAndJoinsReports) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  const std::string shadow = WriteArtifact("shadow.pt", 2);
  const std::string decisions = dir_.File("decisions.jsonl");
  const std::string reports = dir_.File("reports.log");
  Server server =
      StartServer({"--policy=" + policy, "--shadow_policy=" + shadow, "--decision_log=" + decisions,
                   "--report_log=" + reports, "--explore=epsilon:0.9"});
  auto client = MakeClient(server);
  v1::PolicyInfo info;
  ASSERT_TRUE(client->GetPolicy(&info).ok());
  ASSERT_FALSE(info.shadow_policy_version().empty());
  EXPECT_NE(info.shadow_policy_version(), info.policy_version());
  std::map<std::string, v1::DecideResponse> answered;
  constexpr int kConversations = 4, kTurns = 5;
  for (int c = 0; c < kConversations; ++c)
    for (int turn = 0; turn < kTurns; ++turn) {
      v1::DecideRequest request = lcio::test::QueryTurn(absl::StrCat("d", c), turn);
      request.set_no_explore(c == 0);
      v1::DecideResponse r;
      ASSERT_TRUE(client->Decide(request, &r).ok());
      answered[r.decision_id()] = r;
      v1::ReportRequest report = TurnReport(request.conversation_id(), turn);
      report.set_decision_id(r.decision_id());
      v1::ReportResponse acknowledged;
      ASSERT_TRUE(client->Report(report, &acknowledged).ok());
    }
  const int n = kConversations * kTurns;
  auto m = WaitForMetrics(server.metrics_port, {{"lcio_decision_log_records_total", n},
                                                {"lcio_shadow_decisions_total", n}});
  EXPECT_EQ(Metric(m, "lcio_decision_log_records_total"), n);
  EXPECT_EQ(Metric(m, "lcio_shadow_decisions_total"), n);
  EXPECT_LE(Metric(m, "lcio_shadow_agreements_total"), n);
  EXPECT_EQ(Metric(m, "lcio_decision_log_dropped_total{reason=\"queue_full\"}"), 0);
  server.process->Signal(SIGTERM);
  auto status = server.process->Wait(60s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;

  std::map<std::string, data::DecisionRecord> records;
  auto scan = data::ScanDecisionLog(
      decisions, [&](data::DecisionRecord r) { records[r.decision_id] = std::move(r); });
  ASSERT_TRUE(scan.ok()) << scan.status();
  EXPECT_EQ(scan->skipped_lines, 0) << (scan->problems.empty() ? "" : scan->problems[0]);
  ASSERT_EQ(records.size(), answered.size());
  int explored = 0;
  for (const auto& [id, r] : answered) {
    SCOPED_TRACE(id);
    ASSERT_EQ(records.count(id), 1u);
    const data::DecisionRecord& d = records.at(id);
    EXPECT_EQ(d.taken_action, r.action());
    EXPECT_EQ(data::TakenProbability(d), r.probability());
    EXPECT_EQ(d.explored, r.explored());
    EXPECT_EQ(d.exploration.opted_out, d.conversation_id == "d0");
    if (d.exploration.opted_out) {
      EXPECT_FALSE(d.explored);
    }
    explored += d.explored;
    ASSERT_TRUE(d.shadow.has_value());
    EXPECT_EQ(d.shadow->policy_version, info.shadow_policy_version());
  }
  // 15 decisions may explore, each with probability 0.9 x (1 - 1/k) for k
  // allowed actions (the uniform draw may land on the unexplored choice):
  // with every action allowed at 30 s / 0.05 USD, none explored is 0.2^15.
  EXPECT_GT(explored, 0);
  // The join: every Report names a logged decision.
  auto report_log = server::ReadReportLog(reports);
  ASSERT_TRUE(report_log.ok()) << report_log.status();
  ASSERT_EQ(report_log->records.size(), static_cast<size_t>(n));
  for (const auto& report : report_log->records)
    EXPECT_EQ(records.count(report.decision_id), 1u) << report.decision_id;
}

TEST_F(EndToEndTest, AHungDecisionLogDropsAndCountsRecordsAndNeverDelaysDecide) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  const std::string decisions = dir_.File("decisions.jsonl");
  Server server =
      StartServer({"--policy=" + policy, "--decision_log=" + decisions,
                   "--decision_log_queue_max=2", "--drain_timeout_s=1"},
                  true,
                  {std::string("LD_PRELOAD=") + LCIO_FAULT_SHIM, "LCIO_FAULT_PATH=decisions.jsonl",
                   "LCIO_FAULT_FSYNC_DELAY_MS=120000"});  // hung for the test
  auto client = MakeClient(server);
  v1::DecideResponse first;
  ASSERT_TRUE(client->Decide(lcio::test::QueryTurn("first", 0), &first).ok());
  ASSERT_TRUE(WaitForBytes(decisions)) << "the first record never reached the log";
  // Its fdatasync hangs. Every Decide is still answered; the log's queues
  // (2 records for the worker, 2 for the disk, one of them the hung batch)
  // fill and the rest is dropped and counted.
  constexpr int kDecides = 30;
  for (int c = 0; c < kDecides; ++c) {
    v1::DecideResponse r;
    const absl::Status decided = client->Decide(lcio::test::QueryTurn(absl::StrCat("h", c), 0), &r);
    EXPECT_TRUE(decided.ok()) << decided;
  }
  auto m =
      WaitForMetrics(server.metrics_port,
                     {{"lcio_decision_log_dropped_total{reason=\"queue_full\"}", kDecides - 4}});
  EXPECT_GE(Metric(m, "lcio_decision_log_dropped_total{reason=\"queue_full\"}"), kDecides - 4);
  EXPECT_EQ(Metric(m, "lcio_decision_log_records_total"), 0);
  EXPECT_EQ(Metric(m, "lcio_decide_requests_total{code=\"OK\"}"), kDecides + 1);
  server.process->Signal(SIGTERM);
  // Far below the hung fdatasync: the process does not wait for the log.
  auto status = server.process->Wait(30s);
  EXPECT_TRUE(status.has_value()) << "the server waited for the hung decision log";
  if (status.has_value()) {
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  }
}

// Off-policy evaluation on what the real server logged: its decision log
// (with exploration) and Report log joined by lcio-join, evaluated by
// lcio-ope (docs/ope.md).
TEST_F(EndToEndTest, TheServersLogsAreJoinedWithPropensitiesAndEvaluatedOffPolicy) {
  const std::string policy = WriteArtifact("policy.pt", 1);
  const std::string decisions = dir_.File("decisions.jsonl");
  const std::string reports = dir_.File("reports.log");
  Server server = StartServer({"--policy=" + policy, "--decision_log=" + decisions,
                               "--report_log=" + reports, "--explore=epsilon:0.5"});
  auto client = MakeClient(server);
  // Per conversation, each turn's (action, probability) as answered.
  std::multiset<std::vector<std::pair<int, double>>> answered;
  constexpr int kConversations = 6, kTurns = 4;
  for (int c = 0; c < kConversations; ++c) {
    std::vector<std::pair<int, double>> conversation;
    for (int turn = 0; turn < kTurns; ++turn) {
      v1::DecideRequest request = lcio::test::QueryTurn(absl::StrCat("o", c), turn);
      v1::DecideResponse r;
      ASSERT_TRUE(client->Decide(request, &r).ok());
      conversation.emplace_back(r.action(), r.probability());
      // The client does what it was told; scores differ by turn, so that
      // an estimate reading another turn's reward shows.
      v1::ReportRequest report = TurnReport(request.conversation_id(), turn);
      report.set_score(0.2 + 0.1 * turn + 0.03 * c);
      report.set_decision_id(r.decision_id());
      report.set_target(r.target());
      for (const v1::UploadedView& v : r.upload()) report.add_uploaded_views(v.name());
      v1::ReportResponse acknowledged;
      ASSERT_TRUE(client->Report(report, &acknowledged).ok());
    }
    answered.insert(conversation);
  }
  const int n = kConversations * kTurns;
  const auto m = WaitForMetrics(server.metrics_port, {{"lcio_decision_log_records_total", n}});
  std::string log_metrics;  // what to look at if the log is short
  for (const auto& [name, value] : m)
    if (absl::StrContains(name, "decision_log"))
      absl::StrAppend(&log_metrics, name, " ", value, "\n");
  ASSERT_GE(Metric(m, "lcio_decision_log_records_total"), n) << log_metrics;
  server.process->Signal(SIGTERM);
  ASSERT_TRUE(server.process->Wait(60s).has_value());

  auto [status, out] = Run({LCIO_JOIN_BIN, "--decisions=" + decisions, "--reports=" + reports,
                            "--out=" + dir_.File("joined.json")});
  ASSERT_EQ(status, 0) << out << ReadFile(dir_.File("run.stderr"));
  const nlohmann::json summary = nlohmann::json::parse(out);
  EXPECT_EQ(summary["decisions"], n) << out;
  EXPECT_EQ(summary["reports"], n) << out;
  EXPECT_EQ(summary["turns"], n) << out;
  EXPECT_EQ(summary["conversations"], kConversations) << out;
  EXPECT_EQ(summary["deviated_turns"], 0) << out;
  EXPECT_EQ(summary["unmatched_reports"], 0) << out;
  // Every joined turn carries, in its conversation and in order, the action
  // and the probability the server answered with.
  const nlohmann::json joined = nlohmann::json::parse(ReadFile(dir_.File("joined.json")));
  ASSERT_EQ(joined.size(), static_cast<size_t>(kConversations));
  auto dataset = data::LoadM4A1File(dir_.File("joined.json"));
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  ASSERT_EQ(dataset->episodes.size(), joined.size());
  auto actions = env::ActionTable::Create(3);
  ASSERT_TRUE(actions.ok());
  std::vector<std::vector<int>> logged_action(joined.size());
  std::vector<std::vector<double>> propensity(joined.size());
  std::multiset<std::vector<std::pair<int, double>>> logged;
  for (size_t e = 0; e < joined.size(); ++e) {
    std::vector<std::pair<int, double>> conversation;
    for (size_t t = 0; t < joined[e]["interactions"].size(); ++t) {
      auto action = env::LoggedAction(*actions, dataset->episodes[e], static_cast<int>(t));
      ASSERT_TRUE(action.ok()) << action.status();
      logged_action[e].push_back(*action);
      propensity[e].push_back(joined[e]["interactions"][t]["propensity"].get<double>());
      conversation.emplace_back(*action, propensity[e].back());
    }
    logged.insert(conversation);
  }
  EXPECT_EQ(logged, answered);

  // Every fixed action, so that each logged turn matches one candidate.
  auto [ope_status, report] =
      Run({LCIO_OPE_BIN, "--log=" + dir_.File("joined.json"),
           "--candidates=local,fixed:1,fixed:2,fixed:3,fixed:4,fixed:5,fixed:6,fixed:7,fixed:8",
           "--format=json"});
  ASSERT_EQ(ope_status, 0) << ReadFile(dir_.File("run.stderr"));
  const nlohmann::json r = nlohmann::json::parse(report);
  ASSERT_EQ(r.size(), 9u);
  EXPECT_EQ(r[0]["overall"]["turns"], n);
  EXPECT_EQ(r[0]["cloud_share"], 0.0);
  EXPECT_EQ(r[1]["cloud_share"], 1.0);
  // IPS and SNIPS by hand (docs/ope.md): w = 1[logged action = the
  // candidate's] / propensity, r = the reward formula on the logged score and
  // the association of the views the action uploads, at lcio-ope's default
  // profile. (Every action fits 30 s and 0.05 USD: no shield replaces one.)
  env::SimulatorConfig config;
  std::vector<int> episodes(dataset->episodes.size());
  for (size_t e = 0; e < episodes.size(); ++e) episodes[e] = static_cast<int>(e);
  auto model = env::Simulator::Create(*dataset, episodes, config);
  ASSERT_TRUE(model.ok()) << model.status();
  int matched_in_all = 0;
  for (int candidate = 0; candidate < 9; ++candidate) {
    SCOPED_TRACE(candidate);
    double sum_wr = 0, sum_w = 0;
    int matched = 0;
    for (size_t e = 0; e < logged_action.size(); ++e)
      for (size_t t = 0; t < logged_action[e].size(); ++t) {
        if (logged_action[e][t] != candidate) continue;
        double association = 0;
        for (int v : actions->views(candidate))
          association += dataset->episodes[e].association[t][v];
        const double w = 1 / propensity[e][t];
        sum_wr += w * (*model)->Reward(dataset->episodes[e].turns[t].score, association, candidate);
        sum_w += w;
        ++matched;
      }
    matched_in_all += matched;
    const nlohmann::json& overall = r[candidate]["overall"];
    EXPECT_NEAR(overall["ips"]["estimate"].get<double>(), sum_wr / n, 1e-9) << overall.dump();
    if (matched > 0) {
      EXPECT_NEAR(overall["snips"]["estimate"].get<double>(), sum_wr / sum_w, 1e-9)
          << overall.dump();
    }
  }
  EXPECT_EQ(matched_in_all, n);  // each logged turn is one candidate's action
}

}  // namespace
}  // namespace lcio::test
