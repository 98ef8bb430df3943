// Decide latency while other clients Report: one sequential Decide caller
// measures p50/p99 for --duration_s while --reporters threads send Reports
// back to back. Run it against an lcio-server whose fdatasync is slowed by
// the fault shim (bench/report_bench.sh) to see whether the disk reaches
// Decide. Prints one JSON line.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "lcio/client/client.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "server");
ABSL_FLAG(int32_t, reporters, 4, "threads sending Reports back to back");
ABSL_FLAG(double, duration_s, 5, "how long the Decide caller measures");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  lcio::ClientOptions options;
  options.target = absl::GetFlag(FLAGS_target);
  options.timeout = absl::Seconds(60);
  options.max_attempts = 1;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> reports_ok{0}, reports_failed{0};
  std::vector<std::thread> reporters;
  for (int w = 0; w < absl::GetFlag(FLAGS_reporters); ++w)
    reporters.emplace_back([&, w] {
      auto client = lcio::Client::Create(options);
      if (!client.ok()) return;
      for (int turn = 0; !stop.load(); ++turn) {
        lcio::v1::ReportRequest r;
        r.set_conversation_id(absl::StrCat("bench-report-", w));
        r.set_turn_index(turn);
        r.set_prompt("What is on the table?");
        r.set_task("Query");
        r.set_target(lcio::v1::TARGET_LOCAL);
        for (double a : {0.1, 0.5, 0.9}) r.add_association(a);
        r.set_answer("a cup");
        r.set_score(1);
        r.set_interaction_time_s(1);
        r.set_usage_cost_usd(0.001);
        lcio::v1::ReportResponse response;
        ((*client)->Report(r, &response).ok() ? reports_ok : reports_failed)++;
      }
    });
  auto client = lcio::Client::Create(options);
  if (!client.ok()) return 1;
  std::vector<double> latencies_ms;
  int64_t failed = 0;
  const auto end = std::chrono::steady_clock::now() +
                   std::chrono::duration<double>(absl::GetFlag(FLAGS_duration_s));
  for (int turn = 0; std::chrono::steady_clock::now() < end; ++turn) {
    lcio::v1::DecideRequest r;
    r.set_conversation_id(absl::StrCat("bench-decide-", turn));  // always turn 0: no history
    r.set_turn_index(0);
    r.set_prompt("What is on the table?");
    r.set_task("Query");
    for (int v = 0; v < 3; ++v) {
      lcio::v1::View* view = r.add_views();
      view->set_name(absl::StrCat("view", v));
      view->set_association(0.5);
    }
    r.mutable_budget()->set_latency_s(30);
    r.mutable_budget()->set_money_usd(0.05);
    lcio::v1::DecideResponse response;
    const auto start = std::chrono::steady_clock::now();
    const bool ok = (*client)->DecideOnce(r, &response, absl::Seconds(60)).ok();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (ok)
      latencies_ms.push_back(ms);
    else
      ++failed;
  }
  stop.store(true);
  for (auto& t : reporters) t.join();
  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto quantile = [&](double q) {
    return latencies_ms.empty()
               ? 0.0
               : latencies_ms[std::min(latencies_ms.size() - 1,
                                       static_cast<size_t>(q * latencies_ms.size()))];
  };
  std::printf(
      "{\"reporters\": %d, \"decides\": %zu, \"decide_failed\": %lld, \"decide_p50_ms\": %.3f, "
      "\"decide_p99_ms\": %.3f, \"decide_max_ms\": %.3f, \"reports_ok\": %lld, "
      "\"reports_failed\": %lld}\n",
      absl::GetFlag(FLAGS_reporters), latencies_ms.size(), static_cast<long long>(failed),
      quantile(0.5), quantile(0.99), latencies_ms.empty() ? 0.0 : latencies_ms.back(),
      static_cast<long long>(reports_ok.load()), static_cast<long long>(reports_failed.load()));
  return 0;
}
