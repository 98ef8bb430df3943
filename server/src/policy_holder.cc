#include "lcio/server/policy_holder.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "lcio/server/log.h"
#include "lcio/server/metrics.h"
#include "lcio/server/micro_batcher.h"

namespace lcio::server {

PolicyHolder::PolicyHolder(PolicyHolderOptions options, Metrics* metrics, OnSwap on_swap)
    : options_(std::move(options)), metrics_(metrics), on_swap_(std::move(on_swap)) {}

PolicyHolder::~PolicyHolder() { StopWatching(); }

PolicyHolder::FileStamp PolicyHolder::Stamp(const std::string& path) {
  FileStamp stamp;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return stamp;
  stamp.inode = st.st_ino;
  stamp.size = st.st_size;
  stamp.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return stamp;
}

absl::Status PolicyHolder::Reload(const std::string& reason, bool wait) {
  std::unique_lock<std::mutex> lock(reload_mu_, std::defer_lock);
  if (wait) {
    lock.lock();
  } else if (!lock.try_lock()) {
    return absl::UnavailableError(absl::StrCat("reload (", reason, "): another reload of ",
                                               options_.path,
                                               " is still running (a slow or hung disk?)"));
  }
  last_attempt_ = Stamp(options_.path);
  const absl::Time start = absl::Now();
  auto fail = [&](const absl::Status& status) {
    if (metrics_ != nullptr) metrics_->CountReload(false);
    LogLine(LogLevel::kError, "policy_load_failed")
        .Str("path", options_.path)
        .Str("reason", reason)
        .Str("error", status.ToString())
        .Bool("still_serving_previous", Get() != nullptr);
    return status;
  };
  std::string extra_profiles;
  if (!options_.extra_profiles_path.empty()) {
    auto text = ServingPolicy::ReadProfilesFile(options_.extra_profiles_path);
    if (!text.ok()) return fail(text.status());
    extra_profiles = *std::move(text);
  }
  auto serving = ServingPolicy::Load(options_.path, options_.torch_device, extra_profiles,
                                     options_.max_history_window);
  // A read that returned after the server began to stop: nothing more is
  // touched (metrics, callbacks and their owners may be gone).
  std::lock_guard<std::mutex> swap(swap_mu_);
  if (stopping_.load()) return absl::CancelledError("the server is stopping");
  if (!serving.ok()) return fail(serving.status());
  std::shared_ptr<const ServingPolicy> previous = Get();
  std::atomic_store_explicit(&current_, *serving, std::memory_order_release);
  if (metrics_ != nullptr) {
    metrics_->CountReload(true);
    metrics_->SetPolicy((*serving)->version(), (*serving)->engine().metadata().algo);
  }
  {  // written when `line` goes out of scope: before on_swap_, as always
    LogLine line(LogLevel::kInfo, "policy_loaded");
    line.Str("path", options_.path)
        .Str("reason", reason)
        .Str("policy_version", (*serving)->version())
        .Str("algo", (*serving)->engine().metadata().algo)
        .Str("previous_version", previous ? previous->version() : "")
        .Str("torch_device", (*serving)->engine().device_name());
    if (options_.batcher != nullptr) line.Bool("batched", options_.batcher->Batches(**serving));
    line.Num("load_s", absl::ToDoubleSeconds(absl::Now() - start));
  }
  if (on_swap_) on_swap_(**serving);
  return absl::OkStatus();
}

void PolicyHolder::StartWatching(absl::Duration interval) {
  StopWatching();
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    stop_watching_ = false;
    watcher_running_ = true;
  }
  stopping_.store(false);
  const auto period = absl::ToChronoMilliseconds(std::max(interval, absl::Milliseconds(10)));
  watcher_ = std::thread([this, period] {
    std::unique_lock<std::mutex> lock(watch_mu_);
    for (;;) {
      watch_cv_.wait_for(lock, period,
                         [this] { return stop_watching_ || requested_reload_.has_value(); });
      if (stop_watching_) break;
      const std::optional<std::string> requested = std::exchange(requested_reload_, std::nullopt);
      lock.unlock();
      if (requested.has_value()) {
        Reload(*requested).IgnoreError();  // logged and counted inside
      } else {
        const FileStamp now = Stamp(options_.path);
        bool changed;
        {
          std::lock_guard<std::mutex> reload_lock(reload_mu_);
          changed = now.size >= 0 && !(now == last_attempt_);
        }
        if (changed) Reload("file changed").IgnoreError();
      }
      lock.lock();
    }
    watcher_running_ = false;
    watch_cv_.notify_all();
  });
}

absl::Status PolicyHolder::RequestReload(const std::string& reason) {
  {
    std::unique_lock<std::mutex> running(reload_mu_, std::try_to_lock);
    if (!running.owns_lock())
      return absl::UnavailableError(absl::StrCat("reload (", reason, "): another reload of ",
                                                 options_.path,
                                                 " is still running (a slow or hung disk?)"));
  }
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    if (watcher_running_ && !stop_watching_) {
      requested_reload_ = reason;
      watch_cv_.notify_all();
      return absl::OkStatus();
    }
  }
  return Reload(reason, /*wait=*/false);
}

void PolicyHolder::RequestStop() {
  stopping_.store(true);
  { std::lock_guard<std::mutex> swap(swap_mu_); }  // a swap under way ends first
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    stop_watching_ = true;
  }
  watch_cv_.notify_all();
}

bool PolicyHolder::StopWatching(absl::Time deadline) {
  RequestStop();
  if (!watcher_.joinable()) return true;
  {
    std::unique_lock<std::mutex> lock(watch_mu_);
    const auto done = [this] { return !watcher_running_; };
    if (deadline == absl::InfiniteFuture())
      watch_cv_.wait(lock, done);
    else if (!watch_cv_.wait_until(lock, absl::ToChronoTime(deadline), done))
      return false;
  }
  watcher_.join();
  return true;
}

}  // namespace lcio::server
