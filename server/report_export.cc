// lcio-report-export: turns lcio-server's report log (--report_log) into
// M4A1-schema JSON that lcio-train and lcio-eval read (--data).
#include <cstdio>
#include <fstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "lcio/data/m4a1.h"
#include "lcio/server/report_log.h"

ABSL_FLAG(std::string, log, "", "report log written by lcio-server --report_log");
ABSL_FLAG(std::string, out, "", "M4A1 JSON output (written atomically)");
ABSL_FLAG(bool, pretty, false, "indent the JSON");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("lcio-report-export --log reports.log --out traffic.json");
  absl::ParseCommandLine(argc, argv);
  const std::string log = absl::GetFlag(FLAGS_log), out = absl::GetFlag(FLAGS_out);
  if (log.empty() || out.empty()) {
    std::fprintf(stderr, "lcio-report-export: --log and --out are required\n");
    return 2;
  }
  auto contents = lcio::server::ReadReportLog(log);
  if (!contents.ok()) {
    std::fprintf(stderr, "lcio-report-export: %s\n", contents.status().ToString().c_str());
    return 1;
  }
  for (const std::string& problem : contents->problems)
    std::fprintf(stderr, "lcio-report-export: skipped %s\n", problem.c_str());
  auto exported = lcio::server::ReportsToDataset(contents->records);
  if (!exported.ok()) {
    std::fprintf(stderr, "lcio-report-export: %s\n", exported.status().ToString().c_str());
    return 1;
  }
  const std::string temp = out + ".tmp";
  {
    std::ofstream file(temp, std::ios::binary | std::ios::trunc);
    file << lcio::data::ToM4A1Json(exported->dataset, absl::GetFlag(FLAGS_pretty));
    if (!file.good()) {
      std::fprintf(stderr, "lcio-report-export: cannot write %s\n", temp.c_str());
      return 1;
    }
  }
  if (std::rename(temp.c_str(), out.c_str()) != 0) {
    std::fprintf(stderr, "lcio-report-export: cannot rename %s to %s\n", temp.c_str(), out.c_str());
    return 1;
  }
  std::printf(
      "{\"records\": %zu, \"skipped_lines\": %d, \"dropped\": %d, \"episodes\": %zu, "
      "\"turns\": %zu}\n",
      contents->records.size(), contents->skipped_lines, exported->dropped,
      exported->dataset.episodes.size(), exported->dataset.num_turns());
  return 0;
}
