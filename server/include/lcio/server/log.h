// Structured logs: one JSON object per line on stderr, e.g.
// {"ts":"2024-05-01T12:00:00.123456Z","level":"info","event":"decide","conversation_id":"c1",...}
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lcio::server {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

absl::StatusOr<LogLevel> ParseLogLevel(const std::string& name);
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

// JSON string literal (with quotes) of arbitrary bytes; invalid UTF-8 bytes
// become \u00XX so that a hostile prompt cannot break the line format.
std::string JsonQuote(absl::string_view text);

// Builds one line and writes it atomically (a single write(2)) when it goes
// out of scope, if its level is enabled.
class LogLine {
 public:
  LogLine(LogLevel level, absl::string_view event);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;

  LogLine& Str(absl::string_view key, absl::string_view value);
  LogLine& Num(absl::string_view key, double value);
  LogLine& Int(absl::string_view key, int64_t value);
  LogLine& Bool(absl::string_view key, bool value);

 private:
  bool enabled_;
  std::string text_;
};

}  // namespace lcio::server
