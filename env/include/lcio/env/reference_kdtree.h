// A k-d tree that returns, query for query, the same k neighbours as the
// original Python implementation did (scikit-learn's KDTree with leaf size 30,
// behind NearestNeighbors(algorithm='kd_tree')), including which of several
// points tied at the k-th distance it kept. That choice is an accident of the
// tree layout and the traversal order, so reproducing it means rebuilding the
// same tree and walking it the same way:
//   - nodes are laid out as a complete binary tree with
//     2^(floor(log2(max(1, (n-1)/leaf_size))) + 1) - 1 nodes; a node is a leaf
//     when it has no children in that layout or fewer than 2 points;
//   - an inner node splits on the first dimension of largest spread, at the
//     median position found by std::nth_element (libstdc++'s introselect; ties
//     on the split coordinate ordered by point index);
//   - a query is depth-first, nearer child (by the box lower bound) first,
//     pruning boxes whose bound exceeds the current k-th distance, with a
//     bounded max-heap that rejects a point tied with the current k-th.
// Used only by NeighbourRule::kScikitKdTree (see response_estimator.h and
// docs/simulator.md); lcio's own rule includes every tie.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace lcio::env {

class ReferenceKdTree {
 public:
  struct Neighbour {
    double squared_distance;
    uint32_t index;  // row of the points the tree was built on
  };

  // `points` is row-major, num_points x width, and must outlive the tree.
  ReferenceKdTree(const double* points, size_t num_points, int width, int leaf_size = 30);

  // The min(k, num_points) neighbours, sorted by (distance, index).
  std::vector<Neighbour> Query(const double* query, int k) const;

  size_t num_nodes() const { return nodes_.size(); }

 private:
  struct Node {
    uint32_t begin = 0, end = 0;  // range in order_
    bool leaf = true;
  };
  // The bounded max-heap; slot 0 holds the current k-th distance.
  struct Heap {
    std::vector<double> distances;
    std::vector<uint32_t> indices;
    void Push(double squared_distance, uint32_t index);
  };

  void Build(size_t node, uint32_t begin, uint32_t end);
  void Search(size_t node, double lower_bound, const double* query, Heap* heap) const;
  double MinSquaredDistance(size_t node, const double* query) const;
  const double* Point(uint32_t i) const { return points_ + static_cast<size_t>(i) * width_; }

  const double* points_;
  size_t num_points_;
  int width_;
  std::vector<uint32_t> order_;  // point indices, permuted by the build
  std::vector<Node> nodes_;
  std::vector<double> lower_, upper_;  // per node, per dimension: the bounding box
};

}  // namespace lcio::env
