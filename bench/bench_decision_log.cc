// What encoding a decision record costs the decision log's worker thread:
// records per second and bytes per record of data::AppendJsonLine, appending
// batches of records to one buffer as the server's worker does. The record
// is a typical one of the shipped policy (9 actions, 3 views, a history of
// 2 turns, no shadow), read from its JSON line below. With --parse, what
// reading the line back costs instead (data::ParseDecisionLine: lcio-join's
// and the exporters' per-record work).
//
//   build/bench/bench_decision_log [--records=200000] [--runs=5] [--batch=256] [--parse]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "lcio/data/decision_log.h"

ABSL_FLAG(int64_t, records, 200000, "records encoded per run");
ABSL_FLAG(int, runs, 5, "repetitions; the median is reported");
ABSL_FLAG(int, batch, 256, "records appended to one buffer before it is handed on (--chunk_kb=0)");
ABSL_FLAG(int, chunk_kb, 0,
          "instead of --batch: records appended to a buffer reserved to this many KiB until it "
          "is within 4 KiB of full (what the server's worker does)");
ABSL_FLAG(bool, parse, false, "measure ParseDecisionLine of the record's line instead");

namespace {

lcio::data::DecisionRecord TypicalRecord() {
  lcio::data::DecisionRecord r;
  r.decision_id = "lg-12856-92108044-0-0/2/69d4bd289f37e46f";
  r.time_utc = "2026-12-03T02:59:52.109391Z";
  r.policy_version = "rc-ppo-8b07ce9382ff";
  r.conversation_id = "lg-12856-92108044-0-0";
  r.turn_index = 2;
  auto& c = r.context;
  c.task = "Assistive System";
  c.task_inferred = true;
  c.task_confidence = 1.0;
  c.view_names = {"view0", "view1", "view2"};
  c.association = {0.19165587425231934, 0.19590717554092407, 0.1941680610179901};
  c.latency_budget_s = 23.539699999999996;
  c.money_budget_usd = 0.04951;
  c.request_money_budget_usd = 0.04951;
  c.device = "Jetson TX2";
  c.network = "Wired";
  c.history = {{1, "Assistive System"}, {0, "Assistive System"}};
  const char* names[] = {"local",       "cloud",       "cloud+{0}",   "cloud+{1}",    "cloud+{2}",
                         "cloud+{0,1}", "cloud+{0,2}", "cloud+{1,2}", "cloud+{0,1,2}"};
  const double latency[] = {
      0.011428571428571429, 6.4603, 4.76134, 4.76134, 4.76134, 6.24569, 6.24569, 6.24569, 6.98211};
  const double money[] = {
      7.942857142857142e-09, 0.00049, 0.005, 0.005, 0.005, 0.00945, 0.00945, 0.00945, 0.01368};
  const double scores[] = {1.996416687965393,  5.254922389984131,   -2.135327100753784,
                           -0.947269082069397, -3.2991533279418945, -1.5843098163604736,
                           -4.788042068481445, -1.2512763738632202, -3.2064273357391357};
  for (int a = 0; a < 9; ++a) {
    lcio::data::DecisionAction action;
    action.description = names[a];
    action.score = scores[a];
    action.probability = a == 1 ? 1.0 : 0.0;
    action.allowed = true;
    action.expected_latency_s = latency[a];
    action.expected_money_usd = money[a];
    r.actions.push_back(action);
  }
  r.proposed_action = r.taken_action = 1;
  r.expected_latency_s = latency[1];
  r.expected_money_usd = money[1];
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int64_t n = std::max<int64_t>(1, absl::GetFlag(FLAGS_records));
  const int batch = std::max(1, absl::GetFlag(FLAGS_batch));
  const lcio::data::DecisionRecord record = TypicalRecord();
  const size_t bytes = lcio::data::ToJsonLine(record).size() + 1;
  if (!lcio::data::ParseDecisionLine(lcio::data::ToJsonLine(record)).ok()) {
    std::fprintf(stderr, "bench_decision_log: the typical record does not read back\n");
    return 1;
  }
  std::vector<double> ns;
  if (absl::GetFlag(FLAGS_parse)) {
    const std::string line = lcio::data::ToJsonLine(record);
    for (int run = 0; run < std::max(1, absl::GetFlag(FLAGS_runs)); ++run) {
      int64_t read = 0;
      const auto start = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < n; ++i) read += lcio::data::ParseDecisionLine(line).ok();
      const auto end = std::chrono::steady_clock::now();
      ns.push_back(std::chrono::duration<double, std::nano>(end - start).count() / n);
      if (read != n) return 1;
    }
    std::sort(ns.begin(), ns.end());
    std::printf("{\"bytes_per_record\": %zu, \"parse_ns_per_record\": %.0f, \"runs\": %zu}\n",
                bytes, ns[ns.size() / 2], ns.size());
    return 0;
  }
  for (int run = 0; run < std::max(1, absl::GetFlag(FLAGS_runs)); ++run) {
    size_t sink = 0;
    const auto start = std::chrono::steady_clock::now();
    const size_t chunk = static_cast<size_t>(std::max(0, absl::GetFlag(FLAGS_chunk_kb))) << 10;
    for (int64_t done = 0; done < n;) {
      std::string lines;
      if (chunk > 0) {
        lines.reserve(chunk);
        while (done < n && lines.size() + 4096 <= chunk) {
          lcio::data::AppendJsonLine(record, &lines);
          ++done;
        }
      } else {
        for (int k = 0; k < batch && done < n; ++k, ++done)
          lcio::data::AppendJsonLine(record, &lines);
      }
      sink += lines.size();
    }
    const auto end = std::chrono::steady_clock::now();
    ns.push_back(std::chrono::duration<double, std::nano>(end - start).count() / n);
    if (sink != bytes * static_cast<size_t>(n)) return 1;
  }
  std::sort(ns.begin(), ns.end());
  std::printf(
      "{\"bytes_per_record\": %zu, \"ns_per_record\": %.0f, \"runs\": %zu, \"batch\": %d, "
      "\"chunk_kb\": %d}\n",
      bytes, ns[ns.size() / 2], ns.size(), batch, absl::GetFlag(FLAGS_chunk_kb));
  return 0;
}
