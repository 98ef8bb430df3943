// The kNN response estimator: the fast tie-inclusive search against the
// brute-force specification, and the scikit-learn-compatible k-d tree against
// a brute-force strict-k search.
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lcio/env/reference_kdtree.h"
#include "lcio/env/response_estimator.h"

namespace lcio::env {
namespace {

std::vector<double> SortedSquaredDistances(const std::vector<double>& points, int width,
                                           const double* query) {
  std::vector<double> out;
  for (size_t i = 0; i * width < points.size(); ++i) {
    double sum = 0;
    for (int d = 0; d < width; ++d) {
      const double diff = query[d] - points[i * width + d];
      sum += diff * diff;
    }
    out.push_back(sum);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// With heavy ties the tree may pick any of the tied points, but the k
// distances it reports must be the k smallest, and true for the rows it names.
TEST(ReferenceKdTreeTest, ReturnsTheKSmallestDistancesWithHeavyTies) {
  std::mt19937_64 rng(11);
  for (int n : {1, 4, 31, 32, 200, 1500}) {
    const int width = 5;
    std::vector<double> points;
    for (int i = 0; i < n * width; ++i) points.push_back(static_cast<double>(rng() % 3) - 1);
    const ReferenceKdTree tree(points.data(), n, width);
    for (int k : {1, 5, 17}) {
      for (int q = 0; q < 50; ++q) {
        double query[width];
        for (double& x : query) x = static_cast<double>(rng() % 5) - 2;
        const auto found = tree.Query(query, k);
        const auto all = SortedSquaredDistances(points, width, query);
        ASSERT_EQ(found.size(), std::min<size_t>(k, n));
        std::vector<uint32_t> rows;
        for (size_t i = 0; i < found.size(); ++i) {
          EXPECT_EQ(found[i].squared_distance, all[i]) << "n=" << n << " k=" << k;
          double sum = 0;
          for (int d = 0; d < width; ++d) {
            const double diff = query[d] - points[found[i].index * width + d];
            sum += diff * diff;
          }
          EXPECT_EQ(sum, found[i].squared_distance);
          rows.push_back(found[i].index);
        }
        std::sort(rows.begin(), rows.end());
        EXPECT_EQ(std::unique(rows.begin(), rows.end()), rows.end()) << "a row twice";
      }
    }
  }
}

// Without ties the choice is forced: the tree equals a strict-k brute force,
// and so does the kScikitKdTree estimate.
TEST(ReferenceKdTreeTest, EqualsStrictBruteForceWithoutTies) {
  std::mt19937_64 rng(12);
  std::uniform_real_distribution<double> uniform(-1, 1);
  const int width = 4, n = 700;
  std::vector<double> points, values;
  for (int i = 0; i < n * width; ++i) points.push_back(uniform(rng));
  for (int i = 0; i < n; ++i) values.push_back(uniform(rng));
  const ReferenceKdTree tree(points.data(), n, width);
  auto est = ResponseEstimator::FromPoints(width, points, values, 5, NeighbourRule::kScikitKdTree);
  ASSERT_TRUE(est.ok()) << est.status();
  for (int q = 0; q < 200; ++q) {
    double query[width];
    for (double& x : query) x = uniform(rng);
    std::vector<std::pair<double, uint32_t>> all;
    for (int i = 0; i < n; ++i) {
      double sum = 0;
      for (int d = 0; d < width; ++d) {
        const double diff = query[d] - points[i * width + d];
        sum += diff * diff;
      }
      all.emplace_back(sum, i);
    }
    std::sort(all.begin(), all.end());
    const auto found = tree.Query(query, 5);
    ASSERT_EQ(found.size(), 5u);
    double weighted = 0, weights = 0;
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(found[i].index, all[i].second);
      const double w = 1 / (std::sqrt(all[i].first) + 1e-6);
      weighted += w * values[all[i].second];
      weights += w;
    }
    EXPECT_NEAR((*est)->Estimate(query), weighted / weights, 1e-12);
  }
}

struct Case {
  const char* name;
  int width;
  int num_points;
  std::vector<int> key_values;    // keys drawn from these, or uniform [-1, 1) when empty
  std::vector<int> query_values;  // likewise for queries
};

// Estimate against the brute-force specification on random data with heavy
// ties, for k in {1, 5, 17}: the trie alone (near queries), the trie giving up
// and the column scan taking over (far queries on many unique keys), clamped
// and saturated lanes (queries far outside the int8 range), integer keys too
// wide for int8 columns, non-integer queries on integer keys, and non-integer
// keys.
TEST(ResponseEstimatorTest, EqualsBruteForceWithHeavyTies) {
  const std::vector<Case> cases = {
      {"near, few unique keys", 6, 3000, {-1, 0, 1}, {-1, 0, 1}},
      {"far, few unique keys", 6, 3000, {-1, 0, 1}, {-2, -1, 0, 1, 2, 3}},
      {"response-key shape", 29, 20000, {-1, 0, 0, 1}, {-1, 0, 1}},
      {"far, many unique keys", 29, 20000, {-1, 0, 1, 2, 3}, {-1, 0, 1, 2, 3}},
      {"queries beyond int8", 12, 4000, {-1, 0, 1}, {-300, -1, 0, 1, 2, 200}},
      {"keys beyond int8", 8, 4000, {-200, -1, 0, 1, 150}, {-200, -1, 0, 1, 150}},
      {"non-integer keys", 5, 2000, {}, {}},
  };
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> uniform(-1, 1);
  auto draw = [&](const std::vector<int>& from) {
    return from.empty() ? uniform(rng) : static_cast<double>(from[rng() % from.size()]);
  };
  for (const Case& c : cases) {
    std::vector<double> keys, values;
    for (int i = 0; i < c.num_points; ++i) {
      for (int d = 0; d < c.width; ++d) keys.push_back(draw(c.key_values));
      values.push_back(static_cast<double>(rng() % 10) / 9);
    }
    for (int k : {1, 5, 17}) {
      auto est = ResponseEstimator::FromPoints(c.width, keys, values, k);
      ASSERT_TRUE(est.ok()) << est.status();
      std::vector<double> query(c.width);
      for (int q = 0; q < 60; ++q) {
        if (q % 3 == 0) {  // a stored key: the exact-match path
          const size_t row = rng() % c.num_points;
          std::copy(keys.begin() + row * c.width, keys.begin() + (row + 1) * c.width,
                    query.begin());
        } else {
          for (double& x : query) x = draw(c.query_values);
        }
        if (q % 10 == 1) query[rng() % c.width] += 0.5;  // a non-integer query
        const double fast = (*est)->Estimate(query.data());
        const double brute = (*est)->EstimateBruteForce(query.data());
        EXPECT_NEAR(fast, brute, 1e-12 * std::max(1.0, std::abs(brute)))
            << c.name << ", k=" << k << ", query " << q;
      }
    }
  }
}

TEST(ResponseEstimatorTest, RejectsBadInput) {
  EXPECT_FALSE(ResponseEstimator::FromPoints(0, {}, {}, 5).ok());
  EXPECT_FALSE(ResponseEstimator::FromPoints(2, {0, 0}, {1}, 0).ok());
  EXPECT_FALSE(ResponseEstimator::FromPoints(2, {}, {}, 5).ok());
  EXPECT_FALSE(ResponseEstimator::FromPoints(2, {0, 0, 1}, {1, 2}, 5).ok());
}

// The artifact carries the fitted points as JSON: the rebuilt estimator
// answers every query exactly as the original (same points, same order).
TEST(ResponseEstimatorTest, JsonRoundTripAnswersTheSame) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> coordinate(-1, 3);
  std::uniform_real_distribution<double> score(0, 9);
  const int width = 6;
  std::vector<double> keys, values;
  for (int i = 0; i < 300; ++i) {
    for (int d = 0; d < width; ++d) keys.push_back(coordinate(rng));
    values.push_back(score(rng));
  }
  keys[0] = 0.5;  // one non-integer coordinate survives as a JSON number
  for (NeighbourRule rule : {NeighbourRule::kTieInclusive, NeighbourRule::kScikitKdTree}) {
    auto original = ResponseEstimator::FromPoints(width, keys, values, 5, rule);
    ASSERT_TRUE(original.ok());
    auto rebuilt = ResponseEstimator::FromJson((*original)->ToJson());
    ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
    EXPECT_EQ((*rebuilt)->rule(), rule);
    EXPECT_EQ((*rebuilt)->k_neighbors(), 5);
    EXPECT_EQ((*rebuilt)->num_points(), 300u);
    EXPECT_DOUBLE_EQ((*rebuilt)->mean_value(), (*original)->mean_value());
    std::vector<double> query(width);
    for (int q = 0; q < 200; ++q) {
      for (double& x : query) x = coordinate(rng);
      EXPECT_EQ((*rebuilt)->Estimate(query.data()), (*original)->Estimate(query.data()));
    }
  }
}

// Keys sharing a prefix (one context, every action) answered in one pass:
// the same answers as one query per key, under both rules.
TEST(ResponseEstimatorTest, SharedPrefixQueriesEqualSingleQueries) {
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int> coordinate(-1, 2);
  std::uniform_real_distribution<double> score(0, 9);
  const int width = 8, prefix_width = 5, suffix_width = width - prefix_width, count = 6;
  std::vector<double> keys, values;
  for (int i = 0; i < 400; ++i) {
    for (int d = 0; d < width; ++d) keys.push_back(coordinate(rng));
    values.push_back(score(rng));
  }
  for (NeighbourRule rule : {NeighbourRule::kTieInclusive, NeighbourRule::kScikitKdTree}) {
    auto est = ResponseEstimator::FromPoints(width, keys, values, 5, rule);
    ASSERT_TRUE(est.ok());
    for (int q = 0; q < 100; ++q) {
      std::vector<double> prefix(prefix_width), suffixes(count * suffix_width);
      for (double& x : prefix) x = coordinate(rng);
      for (double& x : suffixes) x = coordinate(rng);
      std::vector<double> shared(count);
      (*est)->EstimateSharedPrefix(prefix.data(), prefix_width, suffixes.data(), count,
                                   shared.data());
      for (int s = 0; s < count; ++s) {
        std::vector<double> key = prefix;
        key.insert(key.end(), suffixes.begin() + s * suffix_width,
                   suffixes.begin() + (s + 1) * suffix_width);
        EXPECT_NEAR(shared[s], (*est)->Estimate(key.data()), 1e-12)
            << "query " << q << " key " << s;
      }
    }
  }
}

TEST(ResponseEstimatorTest, FromJsonRejectsMalformedModels) {
  const std::string good =
      R"({"key_width":2,"k_neighbors":1,"rule":"tie-inclusive","keys":[[0,1],[1,0]],"values":[1,2]})";
  ASSERT_TRUE(ResponseEstimator::FromJson(good).ok());
  for (
      const char* bad : {
          "",
          "[]",
          "{}",
          "not json",
          R"({"key_width":2,"k_neighbors":0,"rule":"tie-inclusive","keys":[[0,1]],"values":[1]})",
          R"({"key_width":0,"k_neighbors":1,"rule":"tie-inclusive","keys":[[]],"values":[1]})",
          R"({"key_width":2,"k_neighbors":1,"rule":"nearest","keys":[[0,1]],"values":[1]})",
          R"({"key_width":2,"k_neighbors":1,"rule":"tie-inclusive","keys":[[0]],"values":[1]})",
          R"({"key_width":2,"k_neighbors":1,"rule":"tie-inclusive","keys":[[0,1]],"values":[]})",
          R"({"key_width":2,"k_neighbors":1,"rule":"tie-inclusive","keys":[[0,"a"]],"values":[1]})",
          R"({"key_width":2,"k_neighbors":1,"rule":"tie-inclusive","keys":[[0,1e999]],"values":[1]})",
          R"({"key_width":2,"k_neighbors":1,"rule":"tie-inclusive","keys":[[0,1]],"values":[1e999]})",
          R"({"key_width":2,"k_neighbors":1,"rule":"tie-inclusive","keys":[],"values":[]})",
      }) {
    EXPECT_FALSE(ResponseEstimator::FromJson(bad).ok()) << bad;
  }
}

// Fewer points than k: every point counts.
TEST(ResponseEstimatorTest, FewerPointsThanK) {
  auto est = ResponseEstimator::FromPoints(1, {0, 2}, {1, 3}, 5);
  ASSERT_TRUE(est.ok());
  const double q = 1;
  EXPECT_NEAR((*est)->Estimate(&q), 2.0, 1e-15);
  auto reference =
      ResponseEstimator::FromPoints(1, {0, 2}, {1, 3}, 5, NeighbourRule::kScikitKdTree);
  ASSERT_TRUE(reference.ok());
  EXPECT_NEAR((*reference)->Estimate(&q), 2.0, 1e-15);
}

}  // namespace
}  // namespace lcio::env
