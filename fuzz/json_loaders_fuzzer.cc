// libFuzzer target: every JSON reader of lcio on the same bytes: the M4A1
// data loader, the profiles file, artifact metadata, the task classifier and
// response model embedded in artifacts, Report log records and the client's
// --json requests. Aborts on a crash or hang (libFuzzer), on text past the
// depth limit that a reader accepted, or when a data set the loader accepted
// does not read back the same after writing it.
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "google/protobuf/stubs/logging.h"
#include "lcio/client/client.h"
#include "lcio/data/json_depth.h"
#include "lcio/data/m4a1.h"
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
  return 0;
}
