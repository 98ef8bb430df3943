#include "lcio/env/reference_kdtree.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace lcio::env {

ReferenceKdTree::ReferenceKdTree(const double* points, size_t num_points, int width, int leaf_size)
    : points_(points), num_points_(num_points), width_(width) {
  const double ratio =
      std::max(1.0, static_cast<double>(num_points == 0 ? 0 : num_points - 1) / leaf_size);
  const int levels = static_cast<int>(std::log2(ratio) + 1);
  nodes_.resize((size_t{1} << levels) - 1);
  lower_.assign(nodes_.size() * width_, 0.0);
  upper_.assign(nodes_.size() * width_, 0.0);
  order_.resize(num_points);
  std::iota(order_.begin(), order_.end(), 0u);
  if (num_points > 0) Build(0, 0, static_cast<uint32_t>(num_points));
}

void ReferenceKdTree::Build(size_t node, uint32_t begin, uint32_t end) {
  Node& n = nodes_[node];
  n.begin = begin;
  n.end = end;
  double* lo = &lower_[node * width_];
  double* hi = &upper_[node * width_];
  std::copy(Point(order_[begin]), Point(order_[begin]) + width_, lo);
  std::copy(Point(order_[begin]), Point(order_[begin]) + width_, hi);
  for (uint32_t i = begin + 1; i < end; ++i) {
    const double* p = Point(order_[i]);
    for (int d = 0; d < width_; ++d) {
      lo[d] = std::min(lo[d], p[d]);
      hi[d] = std::max(hi[d], p[d]);
    }
  }
  n.leaf = 2 * node + 1 >= nodes_.size() || end - begin < 2;
  if (n.leaf) return;

  int split = 0;  // the first dimension of strictly largest spread
  double widest = 0;
  for (int d = 0; d < width_; ++d) {
    if (hi[d] - lo[d] > widest) {
      widest = hi[d] - lo[d];
      split = d;
    }
  }
  const uint32_t middle = begin + (end - begin) / 2;
  std::nth_element(order_.begin() + begin, order_.begin() + middle, order_.begin() + end,
                   [&](uint32_t a, uint32_t b) {
                     const double x = Point(a)[split], y = Point(b)[split];
                     return x == y ? a < b : x < y;
                   });
  Build(2 * node + 1, begin, middle);
  Build(2 * node + 2, middle, end);
}

double ReferenceKdTree::MinSquaredDistance(size_t node, const double* query) const {
  // Written as the reference writes it so that non-integer inputs round alike.
  const double* lo = &lower_[node * width_];
  const double* hi = &upper_[node * width_];
  double sum = 0;
  for (int d = 0; d < width_; ++d) {
    const double below = lo[d] - query[d], above = query[d] - hi[d];
    const double gap = 0.5 * ((below + std::fabs(below)) + (above + std::fabs(above)));
    sum += gap * gap;
  }
  return sum;
}

void ReferenceKdTree::Heap::Push(double squared_distance, uint32_t index) {
  // A point tied with the current k-th distance is rejected: the first one
  // found stays.
  if (squared_distance >= distances[0]) return;
  const size_t size = distances.size();
  size_t i = 0;
  while (true) {
    const size_t left = 2 * i + 1, right = left + 1;
    size_t child;
    if (left >= size) break;
    if (right >= size) {
      if (!(distances[left] > squared_distance)) break;
      child = left;
    } else {
      child = distances[left] >= distances[right] ? left : right;
      if (!(squared_distance < distances[child])) break;
    }
    distances[i] = distances[child];
    indices[i] = indices[child];
    i = child;
  }
  distances[i] = squared_distance;
  indices[i] = index;
}

void ReferenceKdTree::Search(size_t node, double lower_bound, const double* query,
                             Heap* heap) const {
  if (lower_bound > heap->distances[0]) return;
  const Node& n = nodes_[node];
  if (n.leaf) {
    for (uint32_t i = n.begin; i < n.end; ++i) {
      const uint32_t j = order_[i];
      const double* p = Point(j);
      double sum = 0;
      for (int d = 0; d < width_; ++d) {
        const double diff = query[d] - p[d];
        sum += diff * diff;
      }
      heap->Push(sum, j);
    }
    return;
  }
  const size_t left = 2 * node + 1, right = left + 1;
  const double left_bound = MinSquaredDistance(left, query);
  const double right_bound = MinSquaredDistance(right, query);
  if (left_bound <= right_bound) {
    Search(left, left_bound, query, heap);
    Search(right, right_bound, query, heap);
  } else {
    Search(right, right_bound, query, heap);
    Search(left, left_bound, query, heap);
  }
}

std::vector<ReferenceKdTree::Neighbour> ReferenceKdTree::Query(const double* query, int k) const {
  const size_t size = std::min<size_t>(std::max(k, 0), num_points_);
  std::vector<Neighbour> out;
  if (size == 0) return out;
  Heap heap;
  heap.distances.assign(size, std::numeric_limits<double>::infinity());
  heap.indices.assign(size, 0);
  Search(0, MinSquaredDistance(0, query), query, &heap);
  out.reserve(size);
  for (size_t i = 0; i < size; ++i) out.push_back({heap.distances[i], heap.indices[i]});
  std::sort(out.begin(), out.end(), [](const Neighbour& a, const Neighbour& b) {
    return a.squared_distance != b.squared_distance ? a.squared_distance < b.squared_distance
                                                    : a.index < b.index;
  });
  return out;
}

}  // namespace lcio::env
