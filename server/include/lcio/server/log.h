// Structured logs: one JSON object per line on stderr, e.g.
// {"ts":"2024-05-01T12:00:00.123456Z","level":"info","event":"decide","conversation_id":"c1",...}
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace lcio::server {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

absl::StatusOr<LogLevel> ParseLogLevel(const std::string& name);
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

// JSON string literal (with quotes) of arbitrary bytes; invalid UTF-8 bytes
// become \u00XX so that a hostile prompt cannot break the line format.
std::string JsonQuote(absl::string_view text);

// A client-supplied value quoted for an error message or a log field: cut to
// `max_bytes` (on a character boundary, then "...(N bytes)"), with quotes,
// backslashes, control characters and invalid UTF-8 escaped as \xNN, so a
// hostile value can neither flood a message nor forge its layout.
inline constexpr size_t kMaxQuotedBytes = 64;
std::string QuoteClientValue(absl::string_view value, size_t max_bytes = kMaxQuotedBytes);

// Status messages leave the server at most this long: gRPC clients refuse
// trailers over 8 KiB by default (they would see RESOURCE_EXHAUSTED).
inline constexpr size_t kMaxStatusMessageBytes = 1024;
// `message` cut to `max_bytes` on a UTF-8 character boundary, with
// "...(N bytes)" appended when cut.
std::string BoundMessage(absl::string_view message, size_t max_bytes = kMaxStatusMessageBytes);

// At most `per_second` lines per clock second for one kind of event; the
// first line allowed after some were dropped says how many.
class LogRateLimiter {
 public:
  explicit LogRateLimiter(int per_second, std::function<absl::Time()> clock = absl::Now);
  // True if a line may be written now; *suppressed is then the number of
  // lines dropped since the last one written.
  bool Allow(int64_t* suppressed);

 private:
  const int per_second_;
  const std::function<absl::Time()> clock_;
  std::mutex mu_;
  int64_t second_ = -1;  // the clock second being counted
  int written_ = 0;      // lines written in it
  int64_t suppressed_ = 0;
};

// Routes protobuf's own log messages (e.g. "String field ... contains invalid
// UTF-8") into JSON lines, so that stderr stays one JSON object per line.
void InstallProtobufLogHandler();

// While one is alive, protobuf messages on this thread are collected here
// instead of logged: they explain a parse failure the caller reports itself.
class ProtobufErrorCapture {
 public:
  ProtobufErrorCapture();
  ~ProtobufErrorCapture();
  ProtobufErrorCapture(const ProtobufErrorCapture&) = delete;
  ProtobufErrorCapture& operator=(const ProtobufErrorCapture&) = delete;
  const std::string& text() const { return text_; }
  void Append(absl::string_view message);

 private:
  std::string text_;
  ProtobufErrorCapture* previous_;
};

// Log lines go to stderr from a writer thread between these two calls, so
// that no caller (a gRPC thread refusing a request) waits for a stalled stderr,
// e.g. a full pipe to a log collector. Lines that would queue more than
// `max_queued_bytes` are dropped; the next line written says how many, and
// LogLinesDropped() counts them. Outside, each line is one write(2) by its
// caller.
inline constexpr size_t kMaxQueuedLogBytes = 4 << 20;
void StartLogWriter(size_t max_queued_bytes = kMaxQueuedLogBytes);
// Waits until the queued lines are written or `deadline` passes (a stderr
// that never drains must not hold up the exit); true if all were written.
// Lines are then written by their callers again.
bool StopLogWriter(absl::Time deadline);
// The same wait, the writer kept: the start-up lines are on stderr before the
// server says it listens (what a supervisor or a test reads next).
bool FlushLogWriter(absl::Time deadline);
int64_t LogLinesDropped();

// Builds one line and writes it whole (a single write(2), or handed whole to
// the writer thread) when it goes out of scope, if its level is enabled.
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
  // Written by this thread when it goes out of scope, past the writer's
  // queue: for a line the process may not outlive (a fatal one).
  LogLine& Synchronous() {
    synchronous_ = true;
    return *this;
  }

 private:
  bool enabled_;
  bool synchronous_ = false;
  std::string text_;
};

}  // namespace lcio::server
