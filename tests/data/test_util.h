// Helpers shared by the data-layer tests.
#pragma once

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "lcio/data/m4a1.h"

namespace lcio::data::testing {

// Exact equality of every field (doubles compared bit-for-bit through ==).
inline void ExpectSameDataset(const Dataset& a, const Dataset& b) {
  EXPECT_EQ(a.tasks, b.tasks);
  EXPECT_EQ(a.num_views, b.num_views);
  ASSERT_EQ(a.episodes.size(), b.episodes.size());
  for (size_t e = 0; e < a.episodes.size(); ++e) {
    const Episode& x = a.episodes[e];
    const Episode& y = b.episodes[e];
    ASSERT_EQ(x.id, y.id);
    EXPECT_EQ(x.image_paths, y.image_paths);
    EXPECT_EQ(x.association, y.association) << "episode " << x.id;
    ASSERT_EQ(x.turns.size(), y.turns.size());
    for (size_t t = 0; t < x.turns.size(); ++t) {
      const Turn& p = x.turns[t];
      const Turn& q = y.turns[t];
      SCOPED_TRACE(::testing::Message() << "episode " << x.id << " turn " << t);
      EXPECT_EQ(p.question, q.question);
      EXPECT_EQ(p.task, q.task);
      EXPECT_EQ(p.task_index, q.task_index);
      EXPECT_EQ(p.target, q.target);
      EXPECT_EQ(p.uploaded_views, q.uploaded_views);
      EXPECT_EQ(p.answer, q.answer);
      EXPECT_EQ(p.score, q.score);
      EXPECT_EQ(p.interaction_time_s, q.interaction_time_s);
      EXPECT_EQ(p.usage_cost_usd, q.usage_cost_usd);
    }
  }
}

// The status has this code and its message contains every piece.
inline void ExpectError(const absl::Status& s, absl::StatusCode code,
                        std::initializer_list<std::string_view> pieces) {
  EXPECT_EQ(s.code(), code) << s;
  for (std::string_view p : pieces) {
    // absl::string_view is not std::string_view in Debian's abseil.
    EXPECT_NE(std::string(s.message()).find(p), std::string::npos)
        << "message lacks \"" << p << "\": " << s.message();
  }
}

}  // namespace lcio::data::testing
