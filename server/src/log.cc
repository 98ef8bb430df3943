#include "lcio/server/log.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/stubs/logging.h"
#include "lcio/data/utf8.h"

namespace lcio::server {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

void AppendHex(std::string* out, unsigned char c) {
  static const char* hex = "0123456789abcdef";
  out->append("\\x");
  out->push_back(hex[c >> 4]);
  out->push_back(hex[c & 15]);
}

// "...(N bytes)" after a cut value.
std::string CutNote(size_t total) { return absl::StrCat("...(", total, " bytes)"); }

thread_local ProtobufErrorCapture* t_capture = nullptr;

void ProtobufLogHandler(google::protobuf::LogLevel level, const char* filename, int line,
                        const std::string& message) {
  if (t_capture != nullptr && level != google::protobuf::LOGLEVEL_FATAL) {
    t_capture->Append(message);
    return;
  }
  LogLevel ours = LogLevel::kInfo;
  if (level == google::protobuf::LOGLEVEL_WARNING) ours = LogLevel::kWarning;
  if (level >= google::protobuf::LOGLEVEL_ERROR) ours = LogLevel::kError;
  LogLine out(ours, "protobuf");
  out.Str("message", BoundMessage(message))
      .Str("file", filename != nullptr ? filename : "")
      .Int("line", line);
  // Protobuf aborts right after a fatal message: it cannot wait in a queue.
  if (level == google::protobuf::LOGLEVEL_FATAL) out.Synchronous();
}

}  // namespace

absl::StatusOr<LogLevel> ParseLogLevel(const std::string& name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warning") return LogLevel::kWarning;
  if (name == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(
      absl::StrCat("log_level = \"", name, "\": must be one of debug, info, warning, error"));
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

std::string JsonQuote(absl::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('"');
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
      ++i;
    } else if (c == '\n') {
      out += "\\n", ++i;
    } else if (c == '\t') {
      out += "\\t", ++i;
    } else if (c == '\r') {
      out += "\\r", ++i;
    } else if (c < 0x20 || c == 0x7F) {
      out += absl::StrFormat("\\u%04x", c), ++i;
    } else if (c < 0x80) {
      out.push_back(static_cast<char>(c)), ++i;
    } else if (size_t n = data::Utf8SequenceLength({text.data(), text.size()}, i); n > 0) {
      out.append(text.data() + i, n), i += n;
    } else {
      out += absl::StrFormat("\\u%04x", c), ++i;
    }
  }
  out.push_back('"');
  return out;
}

std::string QuoteClientValue(absl::string_view value, size_t max_bytes) {
  std::string out = "\"";
  size_t i = 0;
  while (i < value.size()) {
    const auto c = static_cast<unsigned char>(value[i]);
    size_t n = c < 0x80 ? 1 : data::Utf8SequenceLength({value.data(), value.size()}, i);
    if (i + std::max<size_t>(n, 1) > max_bytes) break;
    // C1 controls (U+0080..U+009F) are control characters too.
    const bool c1_control = n == 2 && c == 0xC2 && static_cast<unsigned char>(value[i + 1]) < 0xA0;
    if (n == 0 || c1_control) {
      for (size_t k = 0; k < std::max<size_t>(n, 1); ++k)
        AppendHex(&out, static_cast<unsigned char>(value[i + k]));
      i += std::max<size_t>(n, 1);
    } else if (n == 1 && (c < 0x20 || c == 0x7F || c == '"' || c == '\\')) {
      AppendHex(&out, c);
      ++i;
    } else {
      out.append(value.data() + i, n);
      i += n;
    }
  }
  out += "\"";
  if (i < value.size()) out += CutNote(value.size());
  return out;
}

std::string BoundMessage(absl::string_view message, size_t max_bytes) {
  if (message.size() <= max_bytes) return std::string(message);
  size_t end = max_bytes;
  // Back up to the start of a character.
  while (end > 0 && (static_cast<unsigned char>(message[end]) & 0xC0) == 0x80) --end;
  return absl::StrCat(message.substr(0, end), CutNote(message.size()));
}

LogRateLimiter::LogRateLimiter(int per_second, std::function<absl::Time()> clock)
    : per_second_(per_second), clock_(std::move(clock)) {}

bool LogRateLimiter::Allow(int64_t* suppressed) {
  const int64_t second = absl::ToUnixSeconds(clock_());
  std::lock_guard<std::mutex> lock(mu_);
  if (second != second_) {
    second_ = second;
    written_ = 0;
  }
  if (written_ >= per_second_) {
    ++suppressed_;
    return false;
  }
  ++written_;
  *suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

void InstallProtobufLogHandler() { google::protobuf::SetLogHandler(&ProtobufLogHandler); }

ProtobufErrorCapture::ProtobufErrorCapture() : previous_(t_capture) { t_capture = this; }
ProtobufErrorCapture::~ProtobufErrorCapture() { t_capture = previous_; }
void ProtobufErrorCapture::Append(absl::string_view message) {
  if (!text_.empty()) text_ += "; ";
  absl::StrAppend(&text_, message);
}

namespace {

// Writes `text` whole to stderr (retrying short writes and EINTR); gives up
// on any other error, as a log line has nowhere else to go.
void WriteToStderr(absl::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(STDERR_FILENO, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<size_t>(n));
  }
}

// The queue between LogLine's callers and the one thread that writes to
// stderr. Never destroyed: a writer blocked in write(2) on a stalled stderr
// may outlive main.
class LogWriter {
 public:
  static LogWriter& Get() {
    static LogWriter* const writer = new LogWriter;
    return *writer;
  }

  // False when the writer is not running: the caller writes the line itself.
  bool Push(std::string* line) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!running_) return false;
    if (queued_bytes_ + line->size() > max_queued_bytes_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      ++dropped_unreported_;
      work_cv_.notify_one();  // the notice of the drop is a line to write
      return true;
    }
    queued_bytes_ += line->size();
    queue_.push_back(std::move(*line));
    work_cv_.notify_one();
    return true;
  }

  void Start(size_t max_queued_bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    max_queued_bytes_ = max_queued_bytes;
    if (running_) return;
    running_ = true;
    if (!thread_started_) {
      thread_started_ = true;
      std::thread([this] { Run(); }).detach();
    }
  }

  // Waits until everything queued is written, or `deadline`; `stop`: then
  // callers write their lines themselves again.
  bool Drain(absl::Time deadline, bool stop) {
    std::unique_lock<std::mutex> lock(mu_);
    const bool drained = idle_cv_.wait_until(lock, absl::ToChronoTime(deadline), [this] {
      return queue_.empty() && dropped_unreported_ == 0 && !writing_;
    });
    if (drained && stop) running_ = false;
    return drained;
  }

  int64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      work_cv_.wait(lock, [this] { return !queue_.empty() || dropped_unreported_ > 0; });
      std::string batch;
      while (!queue_.empty()) {
        batch += queue_.front();
        queue_.pop_front();
      }
      // Still counted while being written: a batch stuck in write(2) on a
      // stalled stderr is memory held too.
      const size_t taken = queued_bytes_;
      if (dropped_unreported_ > 0) {
        absl::StrAppend(&batch, "{\"ts\":\"",
                        absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone()),
                        "\",\"level\":\"warning\",\"event\":\"log_lines_dropped\",\"count\":",
                        dropped_unreported_, ",\"hint\":\"stderr did not keep up\"}\n");
        dropped_unreported_ = 0;
      }
      writing_ = true;
      lock.unlock();
      WriteToStderr(batch);
      lock.lock();
      queued_bytes_ -= taken;
      writing_ = false;
      idle_cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable work_cv_;  // the writer waits for lines
  std::condition_variable idle_cv_;  // Stop waits for the queue to drain
  std::deque<std::string> queue_;
  size_t queued_bytes_ = 0;
  size_t max_queued_bytes_ = kMaxQueuedLogBytes;
  int64_t dropped_unreported_ = 0;
  std::atomic<int64_t> dropped_{0};
  bool running_ = false;
  bool thread_started_ = false;
  bool writing_ = false;
};

}  // namespace

void StartLogWriter(size_t max_queued_bytes) { LogWriter::Get().Start(max_queued_bytes); }
bool FlushLogWriter(absl::Time deadline) { return LogWriter::Get().Drain(deadline, false); }
bool StopLogWriter(absl::Time deadline) { return LogWriter::Get().Drain(deadline, true); }
int64_t LogLinesDropped() { return LogWriter::Get().dropped(); }

LogLine::LogLine(LogLevel level, absl::string_view event) : enabled_(LogEnabled(level)) {
  if (!enabled_) return;
  text_ = absl::StrCat("{\"ts\":\"",
                       absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone()),
                       "\",\"level\":\"", LevelName(level), "\",\"event\":", JsonQuote(event));
}

LogLine::~LogLine() {
  if (!enabled_) return;
  text_ += "}\n";
  // One write(2) per line keeps lines from concurrent threads whole.
  if (synchronous_ || !LogWriter::Get().Push(&text_)) WriteToStderr(text_);
}

LogLine& LogLine::Str(absl::string_view key, absl::string_view value) {
  // Bounded: a value from outside (a policy file's error quoting its content)
  // made a log line of megabytes.
  constexpr size_t kMaxValueBytes = 4096;
  if (!enabled_) return *this;
  if (value.size() <= kMaxValueBytes) {
    absl::StrAppend(&text_, ",", JsonQuote(key), ":", JsonQuote(value));
  } else {
    // Cut, not escaped: JsonQuote escapes (Shorten's \xNN would be escaped
    // again, so a long value would read otherwise than a short one).
    absl::StrAppend(&text_, ",", JsonQuote(key), ":",
                    JsonQuote(BoundMessage(value, kMaxValueBytes)));
  }
  return *this;
}

LogLine& LogLine::Num(absl::string_view key, double value) {
  if (!enabled_) return *this;
  if (std::isfinite(value))
    absl::StrAppend(&text_, ",", JsonQuote(key), ":", absl::StrFormat("%.9g", value));
  else
    absl::StrAppend(&text_, ",", JsonQuote(key), ":null");
  return *this;
}

LogLine& LogLine::Int(absl::string_view key, int64_t value) {
  if (enabled_) absl::StrAppend(&text_, ",", JsonQuote(key), ":", value);
  return *this;
}

LogLine& LogLine::Bool(absl::string_view key, bool value) {
  if (enabled_) absl::StrAppend(&text_, ",", JsonQuote(key), ":", value ? "true" : "false");
  return *this;
}

}  // namespace lcio::server
