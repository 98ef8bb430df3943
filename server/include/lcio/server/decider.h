// The decision path of one Decide call: validate, recall the conversation,
// infer the task, encode the observation, score it (in a micro-batch where
// batching pays), apply the budget shield, answer, and record the final
// action in the history.
// Transport-free (absl::Status in, absl::Status out) so that the gRPC
// service and the fuzz target drive the same code.
#pragma once

#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "lcio/server/conversation_store.h"
#include "lcio/server/exploration.h"
#include "lcio/server/fleet_control.h"
#include "lcio/server/log.h"
#include "lcio/server/micro_batcher.h"
#include "lcio/server/policy_holder.h"
#include "lcio/server/request.h"
#include "lcio/v1/offloader.pb.h"

namespace lcio::server {

class DecisionLogger;
class Metrics;

class Decider {
 public:
  using Done = std::function<void(absl::Status)>;
  // metrics and decision_log may be null. `explore`: --explore. `fleet`
  // (--fleet_target; may be null): observes every answered decision and,
  // under control, lowers the money budget the policy and the shield see.
  Decider(const RequestLimits& limits, PolicyHolder* policies, ConversationStore* store,
          MicroBatcher* batcher, Metrics* metrics, DecisionLogger* decision_log = nullptr,
          ExploreConfig explore = {}, std::unique_ptr<FleetController> fleet = nullptr)
      : limits_(limits),
        policies_(policies),
        store_(store),
        batcher_(batcher),
        metrics_(metrics),
        decision_log_(decision_log),
        explore_(explore),
        fleet_(std::move(fleet)) {}

  // `request` and `response` must stay valid until `done` runs; it runs
  // exactly once, on the calling thread or the batcher's. On error the
  // conversation is unchanged. `peer_identity`: the client's certificate
  // identity under mutual TLS (stored conversations are bound to it), else
  // empty. `serialized` (optional, valid until `done`): a new decision the
  // conversation store keeps leaves there the response's serialization, the
  // bytes stored for retries, so that the caller need not serialize it
  // again; it stays empty otherwise.
  void Decide(const v1::DecideRequest& request, v1::DecideResponse* response, absl::Time deadline,
              Done done, const std::string& peer_identity = "", std::string* serialized = nullptr);

  const RequestLimits& limits() const { return limits_; }
  const FleetController* fleet() const { return fleet_.get(); }

  // The log line of a refused Decide: internal errors always, client errors
  // (INVALID_ARGUMENT and the like) at most kRejectedLinesPerSecond a second,
  // since a client can send them as fast as it likes; a metric counts them all.
  static constexpr int kRejectedLinesPerSecond = 10;
  void LogRejected(const absl::Status& status, absl::string_view conversation_id, int turn_index);

 private:
  // One call's state from admission to answer (decider.cc).
  struct Pending;
  using PendingPtr = std::shared_ptr<Pending>;
  // The steps of Decide, in order. Each returns not-OK to refuse the call.
  absl::Status RecallHistory(Pending& pending, const std::string& peer_identity, bool* replayed);
  absl::Status Encode(Pending& pending, std::vector<float>* row);
  void Scored(const PendingPtr& pending, absl::Status status, std::vector<float> scores);
  struct Choice;
  // Where the fallback table answers, replaces `scores` by its ranking.
  absl::StatusOr<Choice> Choose(const Pending& pending, std::vector<float>& scores) const;
  void Answer(Pending& pending, const Choice& choice, const std::vector<float>& scores);
  void Record(PendingPtr pending, Choice choice, std::vector<float> scores);
  // Ends a refused call: releases the conversation (if held), logs, answers.
  void Refuse(Pending& pending, const absl::Status& status);
  // Withdraws the call's announcement to the micro-batcher, once.
  void Unannounce(Pending& pending);

  LogRateLimiter rejected_log_{kRejectedLinesPerSecond};
  RequestLimits limits_;
  PolicyHolder* policies_;
  ConversationStore* store_;
  MicroBatcher* batcher_;
  Metrics* metrics_;
  DecisionLogger* decision_log_;
  ExploreConfig explore_;
  std::unique_ptr<FleetController> fleet_;
};

}  // namespace lcio::server
