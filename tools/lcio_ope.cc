// lcio-ope: a candidate policy's value on logged traffic, estimated
// off-policy (IPS, SNIPS, doubly robust), and the simulator study that
// validates those estimators (--validate). docs/ope.md.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli_common.h"
#include "cli_help.h"
#include "lcio/data/atomic_file.h"
#include "lcio/data/message.h"
#include "lcio/env/split.h"
#include "lcio/ope/off_policy.h"
#include "nlohmann/json.hpp"
#include "ope_cli.h"

ABSL_FLAG(std::string, log, "",
          "joined traffic, a regular file (M4A1 JSON with per-turn \"propensity\" in [1e-100, 1]; "
          "lcio-join writes it)");
ABSL_FLAG(std::vector<std::string>, candidates, {},
          "policies to evaluate: local, fixed:N or artifact paths");
ABSL_FLAG(std::string, baseline, "",
          "the policy each candidate is compared with, paired on the same turns (usually the "
          "serving one; one of --candidates or another): candidate - baseline per estimator, "
          "95% intervals clustered by conversation; with --validate, also the differences' bias "
          "and coverage");
ABSL_FLAG(double, default_propensity, 0,
          "propensity of turns that record none, in [1e-100, 1] (1: the log was served without "
          "exploration); 0: such a turn is an error");
ABSL_FLAG(double, half_width, 0.05, "interval half-width to size the exploration advice for");
ABSL_FLAG(bool, shield, true, "pass the candidate's choices through the budget shield");
ABSL_FLAG(uint64_t, seed, 1, "cross-fitting folds and randomised policies");
ABSL_FLAG(std::string, format, "markdown", "stdout format: markdown or json");
ABSL_FLAG(bool, validate, false,
          "simulator study: log --data with an exploring --logging_policy, estimate each "
          "candidate, compare with its simulated value, over --repetitions logs");
ABSL_FLAG(std::string, simulate_out, "",
          "write one simulated exploring joined log of --data to this file and exit");
ABSL_FLAG(std::string, logging_policy, "local", "--validate/--simulate_out: the serving policy");
ABSL_FLAG(double, epsilon, 0.2,
          "--validate/--simulate_out: share of turns drawn uniformly over all actions");
ABSL_FLAG(int, copies, 4,
          "--validate/--simulate_out: times each conversation is replayed, 1 to 10000");
ABSL_FLAG(std::string, direct_method, "task_action",
          "response model family of the direct method: knn, task_action or pessimistic");
ABSL_FLAG(int, repetitions, 200, "--validate: simulated logs, 1 to 100000");
ABSL_FLAG(std::string, interval, "effective",
          "how the 95% intervals are built from the conversations (docs/ope.md, \"Intervals\"): "
          "effective (plug-in clustered standard error, t quantile with the effective number of "
          "conversations as degrees of freedom), normal (estimate +/- 1.96 plug-in clustered "
          "standard errors), jackknife (leave-one-conversation-out, t quantile), or a cluster "
          "bootstrap: percentile, bca, studentized");
ABSL_FLAG(int, resamples, 999,
          "bootstrap intervals: resampled logs, 99 to 1000000 (seeded by --seed)");

namespace lcio {
namespace {

using nlohmann::json;

json IntervalJson(const ope::Interval& i) {
  return {{"estimate", i.estimate},
          {"standard_error", i.standard_error},
          {"low", i.low},
          {"high", i.high}};
}

json EstimatesJson(const ope::Estimates& e) {
  return {{"ips", IntervalJson(e.ips)},
          {"snips", IntervalJson(e.snips)},
          {"dr", IntervalJson(e.dr)},
          {"dm", IntervalJson(e.dm)},
          {"turns", e.turns},
          {"conversations", e.clusters},
          {"matches", e.matches},
          {"deterministic_turns", e.deterministic},
          {"min_propensity", e.min_propensity},
          {"effective_turns", e.effective_turns}};
}

json DifferencesJson(const ope::Differences& d) {
  return {{"ips", IntervalJson(d.ips)},
          {"snips", IntervalJson(d.snips)},
          {"dr", IntervalJson(d.dr)},
          {"dm", IntervalJson(d.dm)},
          {"turns", d.turns},
          {"conversations", d.clusters},
          {"disagreements", d.disagreements}};
}

// Why an interval with an infinite bound is undefined: the sample shows no
// spread (for a difference, or one side's own estimate has none, which is
// no evidence either), or, with a finite standard error, the bootstrap-t's
// resamples do (too few conversations: a resample of one conversation has
// standard error 0 and an infinite t).
std::string UndefinedWhy(const ope::Interval& i, bool difference) {
  if (!std::isinf(i.standard_error)) return "too few conversations for the bootstrap-t";
  return difference ? "no spread in the sample, or none in one policy's own estimate"
                    : "no spread in the sample";
}

std::string DifferenceCell(const ope::Interval& i) {
  if (std::isnan(i.estimate)) return "undefined (a policy never agrees with the log)";
  if (!std::isfinite(i.low) || !std::isfinite(i.high))
    return absl::StrFormat("%+.3f [interval undefined: %s]", i.estimate, UndefinedWhy(i, true));
  return absl::StrFormat("%+.3f [%+.3f, %+.3f]", i.estimate, i.low, i.high);
}

void PrintPaired(const ope::PairedReport& p, const std::string& baseline) {
  std::cout << absl::StrFormat(
                   "### Paired with the baseline %s: candidate - baseline\n\n"
                   "On the same turns (they choose differently on %d of %d); 95%% intervals "
                   "(%s) clustered by conversation, from the per-conversation difference of the "
                   "two policies' contributions, so the noise they share cancels.\n\n",
                   baseline, static_cast<int>(p.overall.disagreements),
                   static_cast<int>(p.overall.turns), absl::GetFlag(FLAGS_interval))
            << "| scope | turns | differs | IPS difference | SNIPS difference | DR difference | "
               "direct method |\n|---|---|---|---|---|---|---|\n";
  auto row = [](const std::string& scope, const ope::Differences& d) {
    std::cout << "| " << scope << " | " << d.turns << " | " << d.disagreements << " | "
              << DifferenceCell(d.ips) << " | " << DifferenceCell(d.snips) << " | "
              << DifferenceCell(d.dr) << " | " << absl::StrFormat("%+.3f", d.dm.estimate) << " |\n";
  };
  row("overall", p.overall);
  for (const ope::TaskDifferences& t : p.per_task) row(t.task, t.differences);
  std::cout << "\n";
}

std::string Cell(const ope::Interval& i) {
  if (std::isnan(i.estimate)) return "undefined (no agreeing turn)";
  if (!std::isfinite(i.low) || !std::isfinite(i.high))
    return absl::StrFormat("%.3f [interval undefined: %s]", i.estimate, UndefinedWhy(i, false));
  return absl::StrFormat("%.3f [%.3f, %.3f]", i.estimate, i.low, i.high);
}

// What the estimators can and cannot tell on this log (docs/ope.md).
std::string Advice(const ope::OpeReport& r, double half_width) {
  const ope::Estimates& e = r.overall;
  std::string out;
  const double deterministic = static_cast<double>(e.deterministic) / std::max<int64_t>(1, e.turns);
  if (deterministic > 0.5) {
    absl::StrAppendFormat(
        &out,
        "- %.0f%% of turns were logged without exploration (propensity above 0.999). There IPS "
        "counts a "
        "turn where the candidate differs from the log as reward 0 and SNIPS averages only the "
        "turns where they agree: neither says anything about the candidate's different choices. "
        "DR is then the direct method plus a correction on agreeing turns: only the response "
        "model extrapolates, and its error is not in any interval.\n",
        100 * deterministic);
  }
  const double agree = static_cast<double>(e.matches) / std::max<int64_t>(1, e.turns);
  absl::StrAppendFormat(&out,
                        "- The candidate agrees with the log on %.1f%% of turns; the weighted "
                        "estimates are worth %.0f of %d turns.\n",
                        100 * agree, e.effective_turns, static_cast<int>(e.turns));
  const double h = (e.ips.high - e.ips.low) / 2;
  if (h > 0 && std::isfinite(h))
    absl::StrAppendFormat(&out,
                          "- IPS half-width here %.3f; a half-width of %.3f at this exploration "
                          "needs about %.0f turns.\n",
                          h, half_width, e.turns * (h / half_width) * (h / half_width));
  for (double eps : {0.05, 0.1, 0.2}) {
    const double n =
        ope::TurnsForHalfWidth(half_width, eps, r.num_actions, r.logged_mean_square_reward);
    absl::StrAppendFormat(&out,
                          "- With %.0f%% uniform exploration, a candidate that never agrees with "
                          "the serving policy needs about %.0f turns for a half-width of %.3f.\n",
                          100 * eps, n, half_width);
  }
  return out;
}

absl::StatusOr<ope::IntervalOptions> IntervalFromFlags(uint64_t seed) {
  auto method = ope::ParseIntervalMethod(absl::GetFlag(FLAGS_interval));
  if (!method.ok())
    return absl::InvalidArgumentError(absl::StrCat("--interval: ", method.status().message()));
  ope::IntervalOptions o;
  o.method = *method;
  o.resamples = absl::GetFlag(FLAGS_resamples);
  o.seed = seed;
  if (auto s = ope::ValidateIntervalOptions(o); !s.ok())
    return absl::InvalidArgumentError(
        absl::StrCat("--resamples = ", o.resamples,
                     " with --interval=", absl::GetFlag(FLAGS_interval), ": ", s.message()));
  return o;
}

absl::Status Evaluate() {
  const std::string path = absl::GetFlag(FLAGS_log);
  if (path.empty()) return absl::InvalidArgumentError("--log is required (a joined traffic log)");
  const double dp = absl::GetFlag(FLAGS_default_propensity);
  if (!(dp == 0 || (dp >= ope::kMinPropensity && dp <= 1)))
    return absl::InvalidArgumentError(absl::StrCat("--default_propensity = ", data::ExactNumber(dp),
                                                   ": must be in [", ope::kMinPropensity,
                                                   ", 1], or 0 for none"));
  const double half_width = absl::GetFlag(FLAGS_half_width);
  if (!(std::isfinite(half_width) && half_width > 0))
    return absl::InvalidArgumentError(absl::StrCat("--half_width = ", data::ExactNumber(half_width),
                                                   ": must be a finite number > 0"));
  if (absl::GetFlag(FLAGS_candidates).empty())
    return absl::InvalidArgumentError("--candidates is empty (local, fixed:N or artifact paths)");
  auto interval = IntervalFromFlags(absl::GetFlag(FLAGS_seed));
  if (!interval.ok()) return interval.status();
  auto log = ope::LoadJoinedLog(path, dp > 0 ? std::optional<double>(dp) : std::nullopt);
  if (!log.ok()) return log.status();
  if (log->dataset.episodes.size() < 2)
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", log->dataset.episodes.size(),
                     " conversations; off-policy evaluation needs at least 2"));
  auto config = cli::SimulatorConfigFromFlags();
  if (!config.ok()) return config.status();
  auto list = cli::ResolveBaseline(absl::GetFlag(FLAGS_candidates), absl::GetFlag(FLAGS_baseline));
  if (!list.ok()) return list.status();
  // Conversations are priced with the catalog the serving policy priced
  // them with (docs/ope.md): the baseline's, else the first candidate's.
  const std::string& serving = list->specs[std::max(0, list->baseline)];
  if (auto s = cli::UseServingCatalog(serving, absl::GetFlag(FLAGS_profiles), &*config); !s.ok())
    return s;
  auto simulator = env::Simulator::Create(log->dataset, {0}, *config);
  if (!simulator.ok()) return simulator.status();
  ope::OpeOptions options;
  options.config = *config;
  options.default_budget = cli::BudgetFromFlags();
  options.shield = absl::GetFlag(FLAGS_shield);
  options.seed = absl::GetFlag(FLAGS_seed);
  options.interval = *interval;
  auto family = env::ParseResponseModelFamily(absl::GetFlag(FLAGS_direct_method));
  if (!family.ok()) return family.status();
  options.direct_method = *family;
  const bool markdown = absl::GetFlag(FLAGS_format) == "markdown";
  // Every policy is made (so checked) before any report is printed: a bad
  // spec late in the list fails the run before it has printed half a table.
  std::vector<std::unique_ptr<env::Policy>> policies;
  for (int i = 0; i < static_cast<int>(list->specs.size()); ++i) {
    auto policy = cli::MakeFlagPolicy(i == list->baseline ? "baseline" : "candidates",
                                      list->specs[i], log->dataset, **simulator);
    if (!policy.ok()) return policy.status();
    policies.push_back(*std::move(policy));
  }
  // The baseline first: every other candidate is paired with its report.
  std::optional<ope::OpeReport> baseline;
  std::string baseline_name;
  if (list->baseline >= 0) {
    auto r = ope::EvaluateOffPolicy(*log, *policies[list->baseline], options);
    if (!r.ok()) return r.status();
    baseline = *std::move(r);
    baseline_name = policies[list->baseline]->name();
  }
  json all = json::array();
  for (int i = 0; i < static_cast<int>(list->specs.size()); ++i) {
    const std::string& spec = list->specs[i];
    env::Policy& candidate = *policies[i];
    absl::StatusOr<ope::OpeReport> r =
        i == list->baseline ? *baseline : ope::EvaluateOffPolicy(*log, candidate, options);
    if (!r.ok()) return r.status();
    std::optional<ope::PairedReport> paired;
    if (baseline && i != list->baseline) {
      auto p = ope::ComparePaired(*log, *r, *baseline, options.interval);
      if (!p.ok()) return p.status();
      paired = *std::move(p);
    }
    if (markdown) {
      std::cout << "## " << candidate.name() << (i == list->baseline ? " (baseline)" : "") << "\n\n"
                << absl::StrFormat(
                       "%s: %d conversations, %d turns; logged policy's mean reward %.3f, cloud "
                       "share %.1f%%, spend %.5f USD per conversation; 95%% intervals: %s, "
                       "clustered by conversation\n\n",
                       path, static_cast<int>(r->overall.clusters),
                       static_cast<int>(r->overall.turns), r->logged_value,
                       100 * r->logged_cloud_share, r->logged_spend_per_conversation_usd,
                       absl::GetFlag(FLAGS_interval))
                << "| scope | turns | IPS [95% CI] | SNIPS [95% CI] | DR [95% CI] | direct "
                   "method |\n|---|---|---|---|---|---|\n";
      auto row = [](const std::string& scope, const ope::Estimates& e) {
        std::cout << "| " << scope << " | " << e.turns << " | " << Cell(e.ips) << " | "
                  << Cell(e.snips) << " | " << Cell(e.dr) << " | "
                  << absl::StrFormat("%.3f", e.dm.estimate) << " |\n";
      };
      row("overall", r->overall);
      for (const ope::TaskEstimates& t : r->per_task) row(t.task, t.estimates);
      std::cout << "\n";
      if (paired) PrintPaired(*paired, baseline_name);
      std::cout << absl::StrFormat(
                       "Candidate on this traffic (cost model): cloud share %.1f%%, spend %.5f "
                       "USD per conversation.\n\n",
                       100 * r->cloud_share, r->spend_per_conversation_usd)
                << Advice(*r, absl::GetFlag(FLAGS_half_width)) << "\n";
    }
    json j = {{"candidate", candidate.name()},
              {"spec", spec},
              {"overall", EstimatesJson(r->overall)},
              {"logged_value", r->logged_value},
              {"cloud_share", r->cloud_share},
              {"spend_per_conversation_usd", r->spend_per_conversation_usd},
              {"logged_cloud_share", r->logged_cloud_share},
              {"logged_spend_per_conversation_usd", r->logged_spend_per_conversation_usd},
              {"advice", Advice(*r, absl::GetFlag(FLAGS_half_width))},
              {"interval", absl::GetFlag(FLAGS_interval)}};
    json tasks = json::array();
    for (const ope::TaskEstimates& t : r->per_task)
      tasks.push_back({{"task", t.task}, {"estimates", EstimatesJson(t.estimates)}});
    j["per_task"] = std::move(tasks);
    if (i == list->baseline) j["baseline"] = true;
    if (paired) {
      json per_task = json::array();
      for (const ope::TaskDifferences& t : paired->per_task)
        per_task.push_back({{"task", t.task}, {"differences", DifferencesJson(t.differences)}});
      j["versus_baseline"] = {{"baseline", baseline_name},
                              {"spec", list->specs[list->baseline]},
                              {"overall", DifferencesJson(paired->overall)},
                              {"per_task", std::move(per_task)}};
    }
    all.push_back(std::move(j));
  }
  if (!markdown)
    std::cout << all.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return absl::OkStatus();
}

struct Setup {
  std::shared_ptr<const env::Simulator> truth;
  std::vector<int> episodes;
  ope::ExplorationOptions exploration;
};

absl::StatusOr<Setup> MakeSetup(const data::Dataset& data) {
  auto config = cli::SimulatorConfigFromFlags();
  if (!config.ok()) return config.status();
  Setup s;
  for (size_t i = 0; i < data.episodes.size(); ++i) s.episodes.push_back(static_cast<int>(i));
  // The simulated world: the response model fitted on all of --data.
  auto truth = env::Simulator::Create(data, s.episodes, *config);
  if (!truth.ok()) return truth.status();
  s.truth = *truth;
  s.exploration.epsilon = absl::GetFlag(FLAGS_epsilon);
  s.exploration.copies = absl::GetFlag(FLAGS_copies);
  s.exploration.budget = cli::BudgetFromFlags();
  s.exploration.shield = absl::GetFlag(FLAGS_shield);
  s.exploration.seed = absl::GetFlag(FLAGS_seed);
  return s;
}

absl::Status SimulateOut(const data::Dataset& data) {
  const std::string path = absl::GetFlag(FLAGS_simulate_out);
  if (absl::Status replaceable = data::CheckReplaceableOutput(path); !replaceable.ok())
    return absl::InvalidArgumentError(absl::StrCat("--simulate_out: ", replaceable.message()));
  // Specs that are not files (local, fixed:N) are skipped: nothing exists there.
  std::vector<std::string> inputs = absl::GetFlag(FLAGS_candidates);
  inputs.push_back(absl::GetFlag(FLAGS_logging_policy));
  inputs.push_back(absl::GetFlag(FLAGS_log));
  if (absl::Status s =
          data::CheckOutputIsNoInput("--simulate_out", path, cli::InputFiles(std::move(inputs)));
      !s.ok())
    return s;
  auto s = MakeSetup(data);
  if (!s.ok()) return s.status();
  auto base =
      cli::MakeFlagPolicy("logging_policy", absl::GetFlag(FLAGS_logging_policy), data, *s->truth);
  if (!base.ok()) return base.status();
  auto log = ope::SimulateExploringLog(*s->truth, data, s->episodes, **base, s->exploration);
  if (!log.ok()) return log.status();
  // Written beside it and renamed over it whole: a failed run leaves it as it was.
  const std::string temp = data::TemporaryPathFor(path);
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out)
      return absl::PermissionDeniedError(
          absl::StrCat("--simulate_out: ", data::Shorten(temp, 128), ": cannot write"));
    absl::Status written = ope::WriteJoinedLog(*log, out);
    out.flush();
    if (written.ok() && !out)
      written = absl::UnavailableError(
          absl::StrCat("--simulate_out: writing ", data::Shorten(temp, 128), " failed"));
    if (!written.ok()) {
      std::remove(temp.c_str());
      return written;
    }
  }
  if (absl::Status published = data::PublishTemporaryFile(temp, path); !published.ok())
    return published;
  std::cerr << "lcio-ope: wrote " << log->dataset.episodes.size() << " simulated conversations to "
            << path << "\n";
  return absl::OkStatus();
}

// Bias, RMSE, coverage and width of each estimator over repeated logs.
struct Tally {
  double bias = 0, square = 0, width = 0;
  int covered = 0, defined = 0;
  std::vector<double> widths;
  void Add(const ope::Interval& i, double truth) {
    if (std::isnan(i.estimate)) return;
    ++defined;
    bias += i.estimate - truth;
    square += (i.estimate - truth) * (i.estimate - truth);
    width += i.high - i.low;
    widths.push_back(i.high - i.low);
    covered += i.low <= truth && truth <= i.high;
  }
  double MedianWidth() {
    if (widths.empty()) return std::numeric_limits<double>::quiet_NaN();
    std::nth_element(widths.begin(), widths.begin() + widths.size() / 2, widths.end());
    return widths[widths.size() / 2];
  }
};

absl::Status Validate(const data::Dataset& data) {
  auto s = MakeSetup(data);
  if (!s.ok()) return s.status();
  const int repetitions = absl::GetFlag(FLAGS_repetitions);
  constexpr int kMaxRepetitions = 100000;  // each one simulates and estimates a whole log
  if (repetitions < 1 || repetitions > kMaxRepetitions)
    return absl::InvalidArgumentError(
        absl::StrCat("--repetitions = ", repetitions, ": must be in [1, ", kMaxRepetitions, "]"));
  auto base =
      cli::MakeFlagPolicy("logging_policy", absl::GetFlag(FLAGS_logging_policy), data, *s->truth);
  if (!base.ok()) return base.status();
  if (absl::GetFlag(FLAGS_candidates).empty())
    return absl::InvalidArgumentError("--candidates is empty");
  auto list = cli::ResolveBaseline(absl::GetFlag(FLAGS_candidates), absl::GetFlag(FLAGS_baseline));
  if (!list.ok()) return list.status();
  std::vector<std::unique_ptr<env::Policy>> candidates;
  for (int i = 0; i < static_cast<int>(list->specs.size()); ++i) {
    auto c = cli::MakeFlagPolicy(i == list->baseline ? "baseline" : "candidates", list->specs[i],
                                 data, *s->truth);
    if (!c.ok()) return c.status();
    candidates.push_back(*std::move(c));
  }
  auto family = env::ParseResponseModelFamily(absl::GetFlag(FLAGS_direct_method));
  if (!family.ok()) return family.status();
  if (auto i = IntervalFromFlags(1); !i.ok()) return i.status();
  std::vector<std::array<Tally, 4>> tally(candidates.size());
  // Every interval method on the same logs: IPS, SNIPS, DR and the paired DR
  // difference.
  constexpr ope::IntervalMethod kMethods[] = {
      ope::IntervalMethod::kNormal,    ope::IntervalMethod::kJackknife,
      ope::IntervalMethod::kEffective, ope::IntervalMethod::kPercentile,
      ope::IntervalMethod::kBca,       ope::IntervalMethod::kStudentized};
  constexpr int kNumMethods = sizeof(kMethods) / sizeof(kMethods[0]);
  std::vector<std::array<std::array<Tally, 4>, kNumMethods>> by_method(candidates.size());
  std::vector<double> truth_sum(candidates.size()), agree(candidates.size());
  // Paired with the baseline: the four estimators' differences, then DR's
  // difference with the two standard errors combined as if independent, and
  // the previous gate's rule (the candidate's DR interval minus the
  // baseline's DR estimate).
  std::vector<std::array<Tally, 6>> paired(candidates.size());
  std::vector<double> true_difference(candidates.size()), differs(candidates.size());
  std::vector<int> passes_paired(candidates.size()), passes_upper(candidates.size()),
      passes_previous(candidates.size());
  int64_t turns = 0;
  for (int rep = 0; rep < repetitions; ++rep) {
    ope::ExplorationOptions x = s->exploration;
    x.seed = env::MixSeed(s->exploration.seed, rep);
    auto log = ope::SimulateExploringLog(*s->truth, data, s->episodes, **base, x);
    if (!log.ok()) return log.status();
    ope::OpeOptions options;
    options.config = s->truth->config();
    options.default_budget = x.budget;
    options.shield = x.shield;
    options.seed = x.seed;
    options.direct_method = *family;
    options.interval = *IntervalFromFlags(x.seed);
    std::vector<ope::OpeReport> reports;
    for (size_t c = 0; c < candidates.size(); ++c) {
      auto r = ope::EvaluateOffPolicy(*log, *candidates[c], options, s->truth.get());
      if (!r.ok()) return r.status();
      const ope::Estimates& e = r->overall;
      tally[c][0].Add(e.ips, r->true_value);
      tally[c][1].Add(e.snips, r->true_value);
      tally[c][2].Add(e.dr, r->true_value);
      tally[c][3].Add(e.dm, r->true_value);
      truth_sum[c] += r->true_value;
      agree[c] += static_cast<double>(e.matches) / e.turns;
      turns = e.turns;
      reports.push_back(*std::move(r));
    }
    for (int m = 0; m < kNumMethods; ++m) {
      ope::IntervalOptions io = options.interval;
      io.method = kMethods[m];
      for (size_t c = 0; c < candidates.size(); ++c) {
        const ope::Estimates e = ope::Estimate(reports[c].turns, io);
        by_method[c][m][0].Add(e.ips, reports[c].true_value);
        by_method[c][m][1].Add(e.snips, reports[c].true_value);
        by_method[c][m][2].Add(e.dr, reports[c].true_value);
        if (list->baseline < 0 || static_cast<int>(c) == list->baseline) continue;
        auto d = ope::EstimateDifference(reports[c].turns, reports[list->baseline].turns, io);
        if (!d.ok()) return d.status();
        by_method[c][m][3].Add(d->dr, reports[c].true_value - reports[list->baseline].true_value);
      }
    }
    if (list->baseline < 0) continue;
    const ope::OpeReport& b = reports[list->baseline];
    for (size_t c = 0; c < candidates.size(); ++c) {
      if (static_cast<int>(c) == list->baseline) continue;
      auto p = ope::ComparePaired(*log, reports[c], b, options.interval);
      if (!p.ok()) return p.status();
      const double truth = p->true_difference;
      paired[c][0].Add(p->overall.ips, truth);
      paired[c][1].Add(p->overall.snips, truth);
      paired[c][2].Add(p->overall.dr, truth);
      paired[c][3].Add(p->overall.dm, truth);
      const ope::Interval& cd = reports[c].overall.dr;
      ope::Interval unpaired;
      unpaired.estimate = cd.estimate - b.overall.dr.estimate;
      unpaired.standard_error = std::hypot(cd.standard_error, b.overall.dr.standard_error);
      unpaired.low = unpaired.estimate - 1.96 * unpaired.standard_error;
      unpaired.high = unpaired.estimate + 1.96 * unpaired.standard_error;
      paired[c][4].Add(unpaired, truth);
      ope::Interval previous = cd;
      previous.estimate -= b.overall.dr.estimate;
      previous.low -= b.overall.dr.estimate;
      previous.high -= b.overall.dr.estimate;
      paired[c][5].Add(previous, truth);
      true_difference[c] += truth;
      differs[c] += static_cast<double>(p->overall.disagreements) / p->overall.turns;
      passes_paired[c] += p->overall.dr.estimate >= 0;  // the gate's rule
      passes_upper[c] += p->overall.dr.high >= 0;       // "not significantly worse"
      passes_previous[c] += previous.high >= 0;
    }
  }
  std::cout << absl::StrFormat(
      "%d simulated logs of %d turns (%d conversations x %d copies), logging policy %s with "
      "%.0f%% uniform exploration; truth: the %s response model fitted on %s; direct method: %s, "
      "cross-fitted on each log; intervals: %s\n\n",
      repetitions, static_cast<int>(turns), static_cast<int>(s->episodes.size()),
      s->exploration.copies, (*base)->name(), 100 * s->exploration.epsilon,
      env::ResponseModelFamilyName(s->truth->config().response_model), data.source,
      absl::GetFlag(FLAGS_direct_method), absl::GetFlag(FLAGS_interval));
  std::cout << "| candidate | agrees | true value | estimator | bias | RMSE | 95% coverage | mean "
               "width |\n|---|---|---|---|---|---|---|---|\n";
  const char* names[] = {"IPS", "SNIPS", "DR", "direct method"};
  for (size_t c = 0; c < candidates.size(); ++c)
    for (int k = 0; k < 4; ++k) {
      const Tally& t = tally[c][k];
      const double n = std::max(1, t.defined);
      std::cout << absl::StrFormat("| %s | %.1f%% | %.3f | %s | %+.4f | %.4f | %.1f%% | %.3f |\n",
                                   candidates[c]->name(), 100 * agree[c] / repetitions,
                                   truth_sum[c] / repetitions, names[k], t.bias / n,
                                   std::sqrt(t.square / n), 100.0 * t.covered / n, t.width / n);
    }
  std::cout << "\nEvery interval method on the same logs (--interval picks the one above): 95% "
               "coverage / mean width / median width\n\n| candidate | interval | IPS | SNIPS | DR "
               "| paired DR |\n|---|---|---|---|---|---|\n";
  for (size_t c = 0; c < candidates.size(); ++c)
    for (int m = 0; m < kNumMethods; ++m) {
      std::cout << "| " << candidates[c]->name() << " | " << ope::IntervalMethodName(kMethods[m]);
      for (Tally& t : by_method[c][m]) {
        if (t.defined == 0) {
          std::cout << " | -";
          continue;
        }
        std::cout << absl::StrFormat(" | %.1f%% / %.3f / %.3f", 100.0 * t.covered / t.defined,
                                     t.width / t.defined, t.MedianWidth());
      }
      std::cout << " |\n";
    }
  if (list->baseline < 0) return absl::OkStatus();
  std::cout << absl::StrFormat(
      "\nPaired with the baseline %s: candidate - baseline on the same log, compared with the "
      "true difference on the same contexts. \"DR, unpaired\": the two DR standard errors "
      "combined as if independent; \"DR, previous gate\": the candidate's DR interval minus the "
      "baseline's DR estimate. \"gate passes\": share of logs whose paired DR difference is >= 0 "
      "(the gate at LCIO_GATE_MARGIN=0; in brackets: whose interval's upper end is).\n\n",
      candidates[list->baseline]->name());
  std::cout << "| candidate | differs | true difference | estimator | bias | RMSE | 95% coverage "
               "| mean width | gate passes |\n|---|---|---|---|---|---|---|---|---|\n";
  const char* paired_names[] = {"IPS",           "SNIPS",        "DR",
                                "direct method", "DR, unpaired", "DR, previous gate"};
  for (size_t c = 0; c < candidates.size(); ++c) {
    if (static_cast<int>(c) == list->baseline) continue;
    for (int k = 0; k < 6; ++k) {
      const Tally& t = paired[c][k];
      const double n = std::max(1, t.defined);
      std::string gate = "";
      if (k == 2)
        gate = absl::StrFormat("%.1f%% (%.1f%%)", 100.0 * passes_paired[c] / repetitions,
                               100.0 * passes_upper[c] / repetitions);
      if (k == 5) gate = absl::StrFormat("%.1f%%", 100.0 * passes_previous[c] / repetitions);
      std::cout << absl::StrFormat(
          "| %s | %.1f%% | %+.3f | %s | %+.4f | %.4f | %.1f%% | %.3f | %s |\n",
          candidates[c]->name(), 100 * differs[c] / repetitions, true_difference[c] / repetitions,
          paired_names[k], t.bias / n, std::sqrt(t.square / n), 100.0 * t.covered / n, t.width / n,
          gate);
    }
  }
  return absl::OkStatus();
}

absl::Status Run() {
  if (absl::GetFlag(FLAGS_format) != "markdown" && absl::GetFlag(FLAGS_format) != "json")
    return absl::InvalidArgumentError(absl::StrCat(
        "--format = \"", data::Shorten(absl::GetFlag(FLAGS_format), 64), "\": markdown or json"));
  if (!absl::GetFlag(FLAGS_validate) && absl::GetFlag(FLAGS_simulate_out).empty())
    return Evaluate();
  // They simulate their own traffic: a --log would be ignored.
  if (!absl::GetFlag(FLAGS_log).empty())
    return absl::InvalidArgumentError(
        absl::StrCat("--log: ", absl::GetFlag(FLAGS_validate) ? "--validate" : "--simulate_out",
                     " simulates its own traffic from --data and reads no log; drop one of them"));
  // --simulate_out writes a log and estimates nothing: a baseline or
  // candidates there would be silently ignored.
  if (!absl::GetFlag(FLAGS_simulate_out).empty() &&
      (!absl::GetFlag(FLAGS_baseline).empty() || !absl::GetFlag(FLAGS_candidates).empty()))
    return absl::InvalidArgumentError(
        "--simulate_out writes a simulated log and estimates nothing: --baseline and "
        "--candidates apply to --log or --validate");
  auto data = cli::LoadDataset();
  if (!data.ok()) return data.status();
  if (!absl::GetFlag(FLAGS_simulate_out).empty()) return SimulateOut(*data);
  return Validate(*data);
}

}  // namespace
}  // namespace lcio

int main(int argc, char** argv) {
  lcio::cli::ParseCommandLine(
      argc, argv, "[flags]",
      "Off-policy evaluation of candidate policies on joined traffic (docs/ope.md).\n"
      "  lcio-ope --log=joined.json --candidates=local,fixed:2,policy.pt\n"
      "  lcio-ope --log=joined.json --candidates=serving.pt,new.pt --baseline=serving.pt\n"
      "  lcio-ope --validate --logging_policy=local --candidates=fixed:1,policy.pt\n"
      "  lcio-ope --simulate_out=joined.json --logging_policy=policy.pt --epsilon=0.2");
  const absl::Status s = lcio::Run();
  if (!s.ok()) {
    std::cerr << "lcio-ope: " << s.message() << "\n";
    return lcio::cli::ExitStatus(s);
  }
  return 0;
}
