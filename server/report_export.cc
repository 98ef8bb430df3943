// lcio-report-export: turns lcio-server's report log (--report_log) into
// M4A1-schema JSON that lcio-train and lcio-eval read (--data); with
// --base, the base data set's episodes followed by the exported ones (the
// training data of a retraining run). Streams the logs: memory grows with
// the number of records (an index entry each), not with their size; the
// base is loaded (and validated) whole.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli_help.h"
#include "lcio/data/atomic_file.h"
#include "lcio/server/report_log.h"

ABSL_FLAG(std::string, log, "",
          "report log written by lcio-server --report_log; its rotated predecessors (LOG.000001, "
          "...) are read first. Several logs: comma-separated");
ABSL_FLAG(std::string, out, "",
          "M4A1 JSON output, a regular file or absent (written beside it, fsynced, renamed)");
ABSL_FLAG(std::string, rejects, "",
          "where records whose views or tasks differ from the first record's go (a report log "
          "of its own); without it such records make the export fail");
ABSL_FLAG(std::string, base, "",
          "M4A1 JSON whose episodes come first in the output, the exported ones numbered after "
          "its largest episode id; records must have its view count and tasks (others are "
          "rejects)");
ABSL_FLAG(bool, pretty, false, "indent the JSON");

int main(int argc, char** argv) {
  lcio::cli::ParseCommandLine(
      argc, argv,
      "--log reports.log[,more.log] --out traffic.json [--base base.json] [--rejects rejects.log]",
      "Turns the server's report log (and its rotated files) into M4A1-schema JSON; with --base, "
      "appended to a base data set (the training data of a retraining run).");
  const std::string log = absl::GetFlag(FLAGS_log), out = absl::GetFlag(FLAGS_out);
  if (log.empty() || out.empty()) {
    std::fprintf(stderr, "lcio-report-export: --log and --out are required\n");
    return 2;
  }
  std::vector<std::string> files;
  for (const std::string& path :
       std::vector<std::string>(absl::StrSplit(log, ',', absl::SkipEmpty()))) {
    const std::vector<std::string> series = lcio::server::ReportLogSeries(path);
    if (series.empty()) {
      std::fprintf(stderr, "lcio-report-export: --log: %s: no such file\n", path.c_str());
      return 1;
    }
    files.insert(files.end(), series.begin(), series.end());
  }
  lcio::server::ExportOptions options;
  options.pretty = absl::GetFlag(FLAGS_pretty);
  options.rejects_path = absl::GetFlag(FLAGS_rejects);
  absl::StatusOr<lcio::data::Dataset> base;
  if (const std::string path = absl::GetFlag(FLAGS_base); !path.empty()) {
    base = lcio::data::LoadM4A1File(path);
    if (!base.ok()) {
      std::fprintf(stderr, "lcio-report-export: --base: %s\n", base.status().ToString().c_str());
      return 1;
    }
    options.base = &*base;
  }
  if (absl::Status replaceable = lcio::data::CheckReplaceableOutput(out); !replaceable.ok()) {
    std::fprintf(stderr, "lcio-report-export: --out: %s\n", replaceable.ToString().c_str());
    return 1;
  }
  const std::string temp = lcio::data::TemporaryPathFor(out);
  absl::StatusOr<lcio::server::ExportSummary> summary;
  {
    std::ofstream file(temp, std::ios::binary | std::ios::trunc);
    if (!file) {
      std::fprintf(stderr, "lcio-report-export: cannot write %s: %s\n", temp.c_str(),
                   std::strerror(errno));
      return 1;
    }
    summary = lcio::server::ExportReportLogs(files, file, options);
    file.flush();
    if (summary.ok() && !file)  // e.g. a full disk: never publish a truncated export
      summary = absl::UnavailableError(absl::StrCat("writing ", temp, " failed"));
  }
  if (!summary.ok()) {
    std::remove(temp.c_str());
    std::fprintf(stderr, "lcio-report-export: %s\n", summary.status().ToString().c_str());
    return 1;
  }
  for (const std::string& problem : summary->problems)
    std::fprintf(stderr, "lcio-report-export: skipped %s\n", problem.c_str());
  if (absl::Status published = lcio::data::PublishTemporaryFile(temp, out); !published.ok()) {
    std::fprintf(stderr, "lcio-report-export: %s\n", published.ToString().c_str());
    return 1;
  }
  std::printf(
      "{\"files\": %zu, \"records\": %lld, \"skipped_lines\": %d, \"rejected\": %lld, "
      "\"orphaned\": %lld, \"base_episodes\": %lld, \"episodes\": %lld, \"turns\": %lld}\n",
      files.size(), static_cast<long long>(summary->records), summary->skipped_lines,
      static_cast<long long>(summary->rejected), static_cast<long long>(summary->orphaned),
      static_cast<long long>(summary->base_episodes), static_cast<long long>(summary->episodes),
      static_cast<long long>(summary->turns));
  return 0;
}
