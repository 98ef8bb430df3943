// libFuzzer target: every JSON reader of lcio on the same bytes: the M4A1
// data loader, the profiles file, artifact metadata, the task classifier and
// response model embedded in artifacts, Report log records, decision log
// lines and the client's --json requests. Aborts on a crash or hang (libFuzzer), on text past the
// depth limit that a reader accepted, or when a data set the loader accepted
// does not read back the same after writing it.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "google/protobuf/stubs/logging.h"
#include "lcio/client/client.h"
#include "lcio/data/decision_log.h"
#include "lcio/data/json_depth.h"
#include "lcio/data/m4a1.h"
#include "lcio/env/fallback.h"
#include "lcio/env/profiles.h"
#include "lcio/env/response_estimator.h"
#include "lcio/policy/artifact.h"
#include "lcio/policy/task_classifier.h"
#include "lcio/server/report_log.h"

namespace {

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

// The fallback table's reader (an artifact's "fallback"), and lookups with a
// valid table at every entry's costs and at budgets and histories of any kind:
// answers are -1 or an action, never a crash.
void CheckFallbackTable(const std::string& text, bool too_deep) {
  auto table = lcio::env::FallbackTable::FromJson(text, "fuzz");
  Check(!(table.ok() && too_deep), "the fallback reader accepted text past the depth limit");
  if (!table.ok()) return;
  auto again = lcio::env::FallbackTable::FromJson(table->ToJson(), "fuzz (written)");
  Check(again.ok() && again->entries().size() == table->entries().size(),
        "an accepted fallback table does not read back the same");
  constexpr int kActions = 9;
  if (!table->Validate(kActions, "fuzz").ok()) return;
  const double budgets[] = {0, 1e-9, 8, 30, 1e300, INFINITY, NAN, -1};
  size_t checked = 0;
  for (const lcio::env::FallbackEntry& e : table->entries()) {
    if (++checked > 4) break;
    lcio::env::DecisionContext c;
    c.action_time_s = e.action_time_s;
    c.action_money_usd = e.action_money_usd;
    c.previous_actions = {0, kActions - 1, -5, kActions, 1 << 30};
    for (double latency : budgets)
      for (double money : budgets) {
        c.remaining_latency_s = latency;
        c.remaining_money_usd = money;
        const int looked_up = table->Lookup(c);
        const int decided = table->Decide(c);
        Check(looked_up >= -1 && looked_up < kActions && decided >= -1 && decided < kActions,
              "a fallback lookup answered outside the action table");
        Check((looked_up < 0) == (decided < 0), "the fallback's lookup and answer disagree");
      }
  }
}

// The decision log's reader (lcio-join, lcio-ope and lcio-calibrate read
// it) and, on every record it accepts, the writer: written, read back and
// written again, the same line.
void CheckDecisionLine(const std::string& text, bool too_deep) {
  auto record = lcio::data::ParseDecisionLine(text);
  Check(!(record.ok() && too_deep), "the decision log reader accepted text past the depth limit");
  if (!record.ok()) return;
  const std::string line = lcio::data::ToJsonLine(*record);
  auto again = lcio::data::ParseDecisionLine(line);
  Check(again.ok(), "an accepted decision record is written as a line the reader refuses");
  Check(lcio::data::ToJsonLine(*again) == line,
        "an accepted decision record does not read back the same");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);  // invalid UTF-8 is logged otherwise
    return true;
  }();
  (void)quiet;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const bool too_deep = !lcio::data::CheckJsonDepth(text, "fuzz").ok();

  auto dataset = lcio::data::ParseM4A1(text, "fuzz");
  Check(!(too_deep && dataset.ok()), "the data loader accepted text past the depth limit");
  if (dataset.ok()) {
    std::ostringstream written;
    Check(lcio::data::WriteM4A1Json(*dataset, written).ok(),
          "an accepted data set cannot be written");
    auto again = lcio::data::ParseM4A1(written.str(), "fuzz (written)");
    Check(again.ok() && again->num_turns() == dataset->num_turns() &&
              again->tasks == dataset->tasks && again->num_views == dataset->num_views,
          "an accepted data set does not read back the same");
  }

  lcio::env::ProfileCatalog catalog = lcio::env::ProfileCatalog::BuiltIn();
  Check(!(catalog.MergeJson(text, "fuzz").ok() && too_deep),
        "the profiles reader accepted text past the depth limit");
  Check(!(lcio::policy::MetadataFromJson(text, "fuzz").ok() && too_deep),
        "the metadata reader accepted text past the depth limit");
  Check(!(lcio::policy::TaskClassifier::FromJson(text).ok() && too_deep),
        "the task classifier reader accepted text past the depth limit");
  Check(!(lcio::env::ResponseEstimator::FromJson(text).ok() && too_deep),
        "the response model reader accepted text past the depth limit");
  Check(!(lcio::server::ReportRecordFromJson(text).ok() && too_deep),
        "the report record reader accepted text past the depth limit");
  lcio::v1::DecideRequest request;
  Check(!(lcio::FromJson(text, &request).ok() && too_deep),
        "the client's JSON reader accepted text past the depth limit");
  CheckFallbackTable(text, too_deep);
  CheckDecisionLine(text, too_deep);
  return 0;
}
