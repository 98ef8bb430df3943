// The kNN response estimator: the fast tie-inclusive search against the
// brute-force specification, and the scikit-learn-compatible k-d tree against
// a brute-force strict-k search.
#include <algorithm>
#include <cmath>
#include <random>
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

}  // namespace
}  // namespace lcio::env
