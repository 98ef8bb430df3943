// Shared fixtures for env tests: the embedded data set and reference figures.
#pragma once

#include <string>

#include "gtest/gtest.h"
#include "lcio/data/m4a1.h"

namespace lcio::testing {

inline const data::Dataset& EmbeddedDataset() {
  static const data::Dataset* dataset = [] {
    auto loaded = data::LoadM4A1File(std::string(LCIO_SOURCE_DIR) + "/data/M4A1.json");
    if (!loaded.ok()) {
      ADD_FAILURE() << loaded.status();
      return new data::Dataset();
    }
    return new data::Dataset(*std::move(loaded));
  }();
  return *dataset;
}

inline std::string TestDataPath(const std::string& name) {
  return std::string(LCIO_SOURCE_DIR) + "/tests/env/testdata/" + name;
}

}  // namespace lcio::testing
