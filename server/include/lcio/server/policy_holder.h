// Holds the serving policy and replaces it on reload. A reload loads and
// fully validates the new artifact off the request path, then swaps one
// shared_ptr; requests keep the policy they started with until they finish.
// A bad artifact is logged and counted and the old policy keeps serving.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "lcio/server/serving_policy.h"

namespace lcio::server {

class Metrics;
class MicroBatcher;

struct PolicyHolderOptions {
  std::string path;
  std::string torch_device = "auto";
  std::string extra_profiles_path;  // --profiles, re-read on every load
  int max_history_window = 64;
  // When set, policy_loaded says whether the policy's rows are batched
  // (--micro_batching and the device), since the batch flags act on those only.
  const MicroBatcher* batcher = nullptr;
};

class PolicyHolder {
 public:
  // Called after every successful swap (e.g. to report SERVING).
  using OnSwap = std::function<void(const ServingPolicy&)>;
  PolicyHolder(PolicyHolderOptions options, Metrics* metrics, OnSwap on_swap = nullptr);
  ~PolicyHolder();

  std::shared_ptr<const ServingPolicy> Get() const {
    return std::atomic_load_explicit(&current_, std::memory_order_acquire);
  }
  // Loads the file now (serialised with other reloads). OK when the new
  // policy serves. With `wait` false, a reload already running (perhaps
  // stuck in a read on a hung disk) is not waited for: UNAVAILABLE.
  absl::Status Reload(const std::string& reason, bool wait = true);
  // Hands a reload to the watcher thread and returns at once (OK: asked;
  // the outcome is logged and counted as any reload's). UNAVAILABLE when a
  // reload is running. Without a watcher it reloads here, not waiting
  // behind another.
  absl::Status RequestReload(const std::string& reason);
  const std::string& path() const { return options_.path; }
  // Polls the file's (inode, size, mtime) every `interval` and reloads on a
  // change. Changes that fail to load are not retried until the file changes
  // again.
  void StartWatching(absl::Duration interval);
  // Asks the watcher to stop, without waiting for its read. A reload that
  // finishes its read after this swaps nothing and touches nothing outside
  // the holder (it returns CANCELLED): the server may be gone by then. A
  // swap already under way (a reload past its read) is waited for.
  void RequestStop();
  // Stops the watcher and waits for it until `deadline`. False when it is
  // still running then (a reload stuck in a read on a hung disk): the holder
  // must then outlive the process (ServerApp::Shutdown leaks it).
  bool StopWatching(absl::Time deadline = absl::InfiniteFuture());

 private:
  struct FileStamp {
    ino_t inode = 0;
    off_t size = -1;
    int64_t mtime_ns = -1;
    bool operator==(const FileStamp& o) const {
      return inode == o.inode && size == o.size && mtime_ns == o.mtime_ns;
    }
  };
  static FileStamp Stamp(const std::string& path);

  PolicyHolderOptions options_;
  Metrics* metrics_;
  OnSwap on_swap_;
  std::shared_ptr<const ServingPolicy> current_;  // atomic_load/atomic_store only
  std::mutex reload_mu_;
  // Held from the stop check to the end of a swap (never across a read):
  // RequestStop takes it, so no swap runs after RequestStop returns.
  std::mutex swap_mu_;
  FileStamp last_attempt_;  // guarded by reload_mu_
  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  bool stop_watching_ = false;
  std::optional<std::string> requested_reload_;  // its reason; guarded by watch_mu_
  bool watcher_running_ = false;                 // guarded by watch_mu_
  std::atomic<bool> stopping_{false};
  std::thread watcher_;
};

}  // namespace lcio::server
