// Plain aligned text tables for human-readable CLI output.
#pragma once

#include <string>
#include <vector>

namespace r1r::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace r1r::cli
