// lcio-loadgen: replays M4A1 conversations against lcio-server (or the no-op
// bench server) from --concurrency closed-loop workers, each running one
// conversation at a time turn by turn with the budget the server reports
// back. Stops after --duration_s or --requests, whichever comes first, and
// prints the OK calls' latency percentiles and rate, and counts per status
// code (--json for scripts). Exit status 0; 1 with --fail_on_error and a
// failed call, or when the server cannot be reached; 2 for a usage error.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "cli_help.h"
#include "lcio/client/client.h"
#include "lcio/data/m4a1.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "server address");
ABSL_FLAG(int32_t, concurrency, 8, "closed-loop workers (each with one call in flight)");
ABSL_FLAG(double, duration_s, 10, "stop after this long (0: no time limit)");
ABSL_FLAG(int64_t, requests, 0, "stop after this many calls (0: no count limit)");
ABSL_FLAG(int64_t, warmup_requests, 0, "calls made (and not measured) before measuring");
ABSL_FLAG(std::string, data, "",
          "M4A1 JSON whose conversations are replayed (default: data/M4A1.json in the working "
          "directory, else share/lcio/M4A1.json beside an installed binary, else the source tree)");
ABSL_FLAG(double, latency_budget, 30, "per-conversation latency budget, seconds");
ABSL_FLAG(double, money_budget, 0.05, "per-conversation money budget, USD");
ABSL_FLAG(double, timeout_ms, 2000, "deadline of each call");
ABSL_FLAG(bool, give_task, false, "send the logged task (else the server infers it)");
ABSL_FLAG(bool, explain, false, "ask for every action's score");
ABSL_FLAG(int32_t, channels, 1, "gRPC channels (connections) shared round-robin by workers");
ABSL_FLAG(std::string, conversation_prefix, "",
          "conversation id prefix (default: lg-<pid>-<time>)");
ABSL_FLAG(bool, json, false, "print one JSON object instead of text");
ABSL_FLAG(bool, fail_on_error, false, "exit 1 when any call did not return OK");
ABSL_FLAG(std::string, tls_ca, "", "CA certificate (PEM): use TLS");
ABSL_FLAG(std::string, tls_cert, "", "client certificate (PEM) for mutual TLS");
ABSL_FLAG(std::string, tls_key, "", "client key (PEM) for mutual TLS");
ABSL_FLAG(std::string, tls_server_name, "", "expected server certificate name");
ABSL_FLAG(bool, stateless, false,
          "send each conversation's history with every turn (DecideRequest.history), for a "
          "target that spreads calls over several servers, which share no conversations");

namespace {

// SIGINT/SIGTERM end the run early; the results so far are printed.
std::atomic<bool> g_stop{false};
extern "C" void OnStopSignal(int) { g_stop.store(true); }

struct Worker {
  std::vector<int64_t> ok_latencies_ns;  // measured calls answered OK
  std::map<std::string, int64_t> codes;  // every measured call
};

}  // namespace

// The nearest-rank q-quantile of sorted values: the smallest value with at
// least q of them at or below it (p50 of two values is the first).
double Percentile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(q * static_cast<double>(sorted.size()));
  const size_t index = std::min(sorted.size() - 1, static_cast<size_t>(std::max(1.0, rank)) - 1);
  return static_cast<double>(sorted[index]);
}

namespace {}  // namespace

int main(int argc, char** argv) {
  lcio::cli::ParseCommandLine(argc, argv, "--target HOST:PORT --concurrency N --duration_s S",
                              "Replays M4A1 conversations against lcio-server and reports "
                              "throughput and latency.");
  const int concurrency = absl::GetFlag(FLAGS_concurrency);
  const double duration_s = absl::GetFlag(FLAGS_duration_s);
  const int64_t max_requests = absl::GetFlag(FLAGS_requests);
  if (concurrency < 1 || concurrency > 4096) {
    std::fprintf(stderr, "lcio-loadgen: --concurrency must be in [1, 4096]\n");
    return 2;
  }
  // Every call would fail DEADLINE_EXCEEDED, and the run measure nothing.
  if (const double timeout_ms = absl::GetFlag(FLAGS_timeout_ms);
      !(timeout_ms > 0 && timeout_ms <= 3.6e6)) {
    std::fprintf(stderr, "lcio-loadgen: --timeout_ms=%g: must be in (0, 3600000]\n", timeout_ms);
    return 2;
  }
  if (!(duration_s > 0) && max_requests <= 0) {
    std::fprintf(stderr, "lcio-loadgen: give --duration_s > 0 or --requests > 0 (it must stop)\n");
    return 2;
  }
  std::string data_path = absl::GetFlag(FLAGS_data);
  if (data_path.empty()) data_path = lcio::cli::DefaultDataFile("data/M4A1.json");
  auto dataset = lcio::data::LoadM4A1File(data_path);
  if (!dataset.ok()) {
    std::fprintf(stderr, "lcio-loadgen: %s\n", dataset.status().ToString().c_str());
    return 2;
  }
  std::vector<const lcio::data::Episode*> episodes;
  for (const auto& e : dataset->episodes)
    if (!e.turns.empty()) episodes.push_back(&e);
  if (episodes.empty()) {
    std::fprintf(stderr, "lcio-loadgen: the data has no turns\n");
    return 2;
  }

  lcio::ClientOptions options;
  options.target = absl::GetFlag(FLAGS_target);
  options.tls_ca = absl::GetFlag(FLAGS_tls_ca);
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  options.max_attempts = 1;
  std::vector<std::unique_ptr<lcio::Client>> clients;
  for (int c = 0; c < std::max(1, absl::GetFlag(FLAGS_channels)); ++c) {
    auto client = lcio::Client::Create(options);
    if (!client.ok()) {
      std::fprintf(stderr, "lcio-loadgen: %s\n", client.status().ToString().c_str());
      return 2;
    }
    clients.push_back(*std::move(client));
  }
  // The server's view names (the no-op server answers GetPolicy too).
  lcio::v1::PolicyInfo info;
  {
    lcio::ClientOptions probe = options;
    probe.max_attempts = 20;
    probe.timeout = absl::Seconds(2);
    // Waiting for a server that is starting, within the run's own time.
    if (duration_s > 0)
      probe.max_attempts =
          std::clamp(static_cast<int>(std::ceil(duration_s / 2)), 1, probe.max_attempts);
    auto client = lcio::Client::Create(probe);
    if (!client.ok() || !(*client)->GetPolicy(&info).ok() || info.view_names_size() == 0) {
      std::fprintf(stderr, "lcio-loadgen: GetPolicy on %s failed; is the server up?\n",
                   options.target.c_str());
      return 1;
    }
  }
  const std::vector<std::string> views(info.view_names().begin(), info.view_names().end());
  std::string prefix = absl::GetFlag(FLAGS_conversation_prefix);
  if (prefix.empty())
    prefix = absl::StrCat("lg-", getpid(), "-", absl::ToUnixMicros(absl::Now()) % 100000000);
  const absl::Duration timeout = absl::Milliseconds(absl::GetFlag(FLAGS_timeout_ms));
  const bool give_task = absl::GetFlag(FLAGS_give_task), explain = absl::GetFlag(FLAGS_explain);
  const double latency_budget = absl::GetFlag(FLAGS_latency_budget);
  const double money_budget = absl::GetFlag(FLAGS_money_budget);
  const int64_t warmup = std::max<int64_t>(0, absl::GetFlag(FLAGS_warmup_requests));
  const bool stateless = absl::GetFlag(FLAGS_stateless);

  signal(SIGINT, OnStopSignal);
  signal(SIGTERM, OnStopSignal);
  std::atomic<int64_t> issued{0};
  std::atomic<bool> measuring{warmup == 0};
  std::atomic<int64_t> warm_done{0};
  std::vector<Worker> workers(concurrency);
  absl::Time start = absl::Now();
  absl::Time end_of_time =
      duration_s > 0 ? start + absl::Seconds(duration_s) : absl::InfiniteFuture();
  std::mutex start_mu;
  std::vector<std::thread> threads;
  for (int w = 0; w < concurrency; ++w) {
    threads.emplace_back([&, w] {
      Worker& me = workers[w];
      const lcio::Client& client = *clients[w % clients.size()];
      int64_t conversation = 0;
      absl::Duration failure_wait = absl::ZeroDuration();
      size_t episode_index = static_cast<size_t>(w) % episodes.size();
      for (;;) {
        const lcio::data::Episode& episode = *episodes[episode_index];
        episode_index = (episode_index + concurrency) % episodes.size();
        const std::string id = absl::StrCat(prefix, "-", w, "-", conversation++);
        double latency_left = latency_budget, money_left = money_budget;
        lcio::v1::ConversationHistory history;  // --stateless: the turns decided so far
        for (size_t t = 0; t < episode.turns.size(); ++t) {
          if (!measuring.load() && warm_done.fetch_add(1) >= warmup) {
            std::lock_guard<std::mutex> lock(start_mu);
            if (!measuring.load()) {
              start = absl::Now();
              if (duration_s > 0) end_of_time = start + absl::Seconds(duration_s);
              measuring.store(true);
            }
          }
          if (g_stop.load()) return;
          // A call is measured when it starts measured: a warm-up call that
          // returns after measuring began is not counted.
          const bool measured = measuring.load();
          if (measured) {
            std::lock_guard<std::mutex> lock(start_mu);
            if (absl::Now() >= end_of_time) return;
          }
          if (measured && max_requests > 0 && issued.fetch_add(1) >= max_requests) return;
          const lcio::data::Turn& turn = episode.turns[t];
          lcio::v1::DecideRequest request;
          request.set_conversation_id(id);
          request.set_turn_index(static_cast<int>(t));
          request.set_prompt(turn.question.empty() ? std::string("(empty)") : turn.question);
          if (give_task) request.set_task(turn.task);
          for (size_t v = 0; v < views.size(); ++v) {
            lcio::v1::View* view = request.add_views();
            view->set_name(views[v]);
            const auto& association = episode.association[t];
            view->set_association(association.empty() ? 0.5 : association[v % association.size()]);
          }
          request.mutable_budget()->set_latency_s(std::max(0.0, latency_left));
          request.mutable_budget()->set_money_usd(std::max(0.0, money_left));
          request.set_explain(explain);
          if (stateless) *request.mutable_history() = history;
          lcio::v1::DecideResponse response;
          const absl::Time sent = absl::Now();
          const absl::Status status = client.DecideOnce(request, &response, timeout);
          const int64_t ns = absl::ToInt64Nanoseconds(absl::Now() - sent);
          if (measured) {
            if (status.ok()) me.ok_latencies_ns.push_back(ns);
            ++me.codes[absl::StatusCodeToString(status.code())];
          }
          if (!status.ok()) {
            // A server that fails every call fast (down, overloaded) is not
            // hammered in a spin: each failure waits a little, up to 100 ms.
            failure_wait = std::min(absl::Milliseconds(100),
                                    std::max(absl::Milliseconds(1), 2 * failure_wait));
            absl::SleepFor(failure_wait);
            break;  // the conversation's state is uncertain: start another
          }
          failure_wait = absl::ZeroDuration();
          lcio::v1::HistoryTurn* decided = history.add_turns();
          decided->set_action(response.action());
          decided->set_task(response.task());
          latency_left = response.budget_after().latency_s();
          money_left = response.budget_after().money_usd();
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const double elapsed_s = absl::ToDoubleSeconds(absl::Now() - start);

  // Rate and latency are the OK calls': a failed call (a refusal, a server
  // that is down) returns fast and would flatter both.
  std::vector<int64_t> all;
  std::map<std::string, int64_t> codes;
  int64_t requests = 0;
  for (const Worker& w : workers) {
    all.insert(all.end(), w.ok_latencies_ns.begin(), w.ok_latencies_ns.end());
    for (const auto& [code, n] : w.codes) {
      codes[code] += n;
      requests += n;
    }
  }
  std::sort(all.begin(), all.end());
  const double qps = elapsed_s > 0 ? static_cast<double>(all.size()) / elapsed_s : 0;
  const double p50 = Percentile(all, 0.50) / 1e3, p90 = Percentile(all, 0.90) / 1e3,
               p99 = Percentile(all, 0.99) / 1e3, max = all.empty() ? 0 : all.back() / 1e3;
  const int64_t ok = static_cast<int64_t>(all.size());
  const int64_t failed = requests - ok;
  if (absl::GetFlag(FLAGS_json)) {
    std::vector<std::string> parts;
    for (const auto& [code, n] : codes) parts.push_back(absl::StrCat("\"", code, "\": ", n));
    std::printf(
        "{\"target\": \"%s\", \"concurrency\": %d, \"requests\": %zu, \"elapsed_s\": %.3f, "
        "\"qps\": %.1f, \"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f, "
        "\"ok\": %lld, \"failed\": %lld, \"codes\": {%s}}\n",
        options.target.c_str(), concurrency, static_cast<size_t>(requests), elapsed_s, qps, p50,
        p90, p99, max, static_cast<long long>(ok), static_cast<long long>(failed),
        absl::StrJoin(parts, ", ").c_str());
  } else {
    std::printf("target %s  concurrency %d  requests %lld  elapsed %.2f s  OK QPS %.0f\n",
                options.target.c_str(), concurrency, static_cast<long long>(requests), elapsed_s,
                qps);
    std::printf("latency of OK calls, us: p50 %.0f  p90 %.0f  p99 %.0f  max %.0f\n", p50, p90, p99,
                max);
    for (const auto& [code, n] : codes)
      std::printf("  %-20s %lld\n", code.c_str(), static_cast<long long>(n));
  }
  return absl::GetFlag(FLAGS_fail_on_error) && failed > 0 ? 1 : 0;
}
