// lcio-calibrate: the per-conversation money budget at which a policy meets a
// fleet target (share of turns sent to the cloud, or mean spend per
// conversation) on a traffic log, fitted on one part of the conversations and
// validated on the other. docs/ope.md, "Calibration".
#include <cmath>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli_common.h"
#include "cli_help.h"
#include "lcio/data/message.h"
#include "lcio/ope/calibrate.h"
#include "lcio/ope/joined_log.h"
#include "lcio/ope/off_policy.h"
#include "nlohmann/json.hpp"
#include "ope_cli.h"

ABSL_FLAG(std::string, log, "",
          "traffic log, M4A1 JSON (lcio-report-export or lcio-join output); default --data");
ABSL_FLAG(std::string, policy, "", "the serving policy: local, fixed:N or an artifact path");
ABSL_FLAG(double, target_cloud_share, -1, "target share of turns sent to the cloud, in [0, 1]");
ABSL_FLAG(double, target_spend_usd, -1, "target mean spend per conversation, USD");
ABSL_FLAG(double, min_money, 1e-4, "smallest money budget tried, USD per conversation");
ABSL_FLAG(double, max_money, 1.0, "largest money budget tried, USD per conversation (finite)");
ABSL_FLAG(int, grid, 64, "money budgets tried (geometric grid), 2 to 100000");
ABSL_FLAG(double, holdout_share, 0.5, "share of conversations held out for validation");
ABSL_FLAG(uint64_t, seed, 1, "which conversations are held out");
ABSL_FLAG(std::string, format, "markdown", "stdout format: markdown or json");

namespace lcio {
namespace {

absl::Status Run() {
  const std::string format = absl::GetFlag(FLAGS_format);
  if (format != "markdown" && format != "json")
    return absl::InvalidArgumentError(
        absl::StrCat("--format = \"", data::Shorten(format, 64), "\": markdown or json"));
  const double share = absl::GetFlag(FLAGS_target_cloud_share);
  const double spend = absl::GetFlag(FLAGS_target_spend_usd);
  // Given is what counts (-1, the default, means "not given"): a negative or
  // NaN value given is out of its range, not missing.
  const bool share_given = cli::FlagGiven("target_cloud_share");
  const bool spend_given = cli::FlagGiven("target_spend_usd");
  if (share_given == spend_given)
    return absl::InvalidArgumentError(
        "give exactly one of --target_cloud_share and --target_spend_usd");
  if (share_given && !(share >= 0 && share <= 1))
    return absl::InvalidArgumentError(
        absl::StrCat("--target_cloud_share = ", data::ExactNumber(share), ": must be in [0, 1]"));
  if (spend_given && !(spend > 0 && std::isfinite(spend)))
    return absl::InvalidArgumentError(absl::StrCat(
        "--target_spend_usd = ", data::ExactNumber(spend), ": must be a finite number > 0"));
  if (absl::GetFlag(FLAGS_policy).empty())
    return absl::InvalidArgumentError("--policy is required (local, fixed:N or an artifact)");
  // A joined log names the profile each conversation was served for; one
  // without (M4A1 data, lcio-report-export output) is priced under
  // --device/--network. Propensities play no part here.
  ope::JoinedLog joined;
  if (absl::GetFlag(FLAGS_log).empty()) {
    auto embedded = cli::LoadDataset();
    if (!embedded.ok()) return embedded.status();
    joined.dataset = *std::move(embedded);
  } else {
    auto read = ope::LoadJoinedLog(absl::GetFlag(FLAGS_log), /*default_propensity=*/1.0);
    if (!read.ok()) return read.status();
    joined = *std::move(read);
  }
  const data::Dataset* log = &joined.dataset;
  auto config = cli::SimulatorConfigFromFlags();
  if (!config.ok()) return config.status();
  if (auto s = cli::UseServingCatalog(absl::GetFlag(FLAGS_policy), absl::GetFlag(FLAGS_profiles),
                                      &*config);
      !s.ok())
    return s;
  // Only the cost model and the shield decide share and spend; the response
  // model is fitted because a response-aware policy observes it.
  std::vector<int> all(log->episodes.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  auto simulator = env::Simulator::Create(*log, all, *config);
  if (!simulator.ok()) return simulator.status();
  auto policy = cli::MakePolicy(absl::GetFlag(FLAGS_policy), *log, **simulator);
  if (!policy.ok()) return policy.status();
  ope::CalibrationOptions o;
  o.metric = share_given ? ope::CalibrationMetric::kCloudShare
                         : ope::CalibrationMetric::kSpendPerConversation;
  o.target = share_given ? share : spend;
  o.latency_budget_s = cli::BudgetFromFlags().latency_s;
  o.min_money_usd = absl::GetFlag(FLAGS_min_money);
  o.max_money_usd = absl::GetFlag(FLAGS_max_money);
  o.grid = absl::GetFlag(FLAGS_grid);
  o.holdout_share = absl::GetFlag(FLAGS_holdout_share);
  o.seed = absl::GetFlag(FLAGS_seed);
  auto pricing = ope::ServedPricing(*simulator, joined);
  if (!pricing.ok()) return pricing.status();
  auto r = ope::Calibrate(**pricing, *log, **policy, o);
  if (!r.ok()) return r.status();
  const bool is_share = o.metric == ope::CalibrationMetric::kCloudShare;
  if (format == "json") {
    nlohmann::json j = {{"policy", (*policy)->name()},
                        {"metric", is_share ? "cloud_share" : "spend_per_conversation_usd"},
                        {"target", o.target},
                        {"latency_budget_s", o.latency_budget_s},
                        {"money_budget_usd", r->money_budget_usd},
                        {"low_money_budget_usd", r->low_money_budget_usd},
                        {"low_share", r->low_share},
                        {"fit_conversations", r->fit_conversations},
                        {"fit_achieved", r->fit_achieved},
                        {"holdout_conversations", r->holdout_conversations},
                        {"holdout_achieved", r->holdout_achieved},
                        {"holdout_error", r->holdout_error},
                        {"holdout_relative_error", r->holdout_relative_error}};
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return absl::OkStatus();
  }
  const std::string setting =
      r->low_share > 0
          ? absl::StrFormat(
                "money budget %.9g USD per conversation, except %.1f%% of conversations (drawn at "
                "random) at %.9g USD",
                r->money_budget_usd, 100 * r->low_share, r->low_money_budget_usd)
          : absl::StrFormat("money budget %.9g USD per conversation", r->money_budget_usd);
  auto show = [&](double v) {
    return is_share ? absl::StrFormat("%.1f%%", 100 * v) : absl::StrFormat("%.5f USD", v);
  };
  std::cout << absl::StrFormat(
      "policy %s, target %s %s, latency budget %.3g s\n"
      "setting: %s\n"
      "fit (%d conversations): %s\n"
      "held out (%d conversations): %s, error %s\n",
      (*policy)->name(), is_share ? "cloud share" : "spend per conversation", show(o.target),
      o.latency_budget_s, setting, r->fit_conversations, show(r->fit_achieved),
      r->holdout_conversations, show(r->holdout_achieved),
      is_share ? absl::StrFormat("%+.1f points", 100 * r->holdout_error)
               : absl::StrFormat("%+.1f%%", 100 * r->holdout_relative_error));
  return absl::OkStatus();
}

}  // namespace
}  // namespace lcio

int main(int argc, char** argv) {
  lcio::cli::ParseCommandLine(
      argc, argv, "[flags] --log=FILE --policy=FILE",
      "The money budget that meets a fleet target on a traffic log (docs/ope.md).\n"
      "  lcio-calibrate --log=traffic.json --policy=policy.pt --target_cloud_share=0.3\n"
      "  lcio-calibrate --log=traffic.json --policy=policy.pt --target_spend_usd=0.01");
  const absl::Status s = lcio::Run();
  if (!s.ok()) {
    std::cerr << "lcio-calibrate: " << s.message() << "\n";
    return lcio::cli::ExitStatus(s);
  }
  return 0;
}
