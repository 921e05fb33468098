// Reader for the reference tables R writes into tests/data/stats/ (see make_reference.R there):
// '#' lines are comments, the first other line is the header, fields are split on ',', a sample
// is one field of space-separated numbers, "NA" is a value R leaves undefined (read as NaN).
//
//   auto table = ttfb::stats::testing::read_reference("welch_reference.csv");
//   for (const auto& row : table.rows) double t = table.number(row, "t");
#pragma once

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace ttfb::stats::testing {

inline std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, sep)) out.push_back(field);
  if (!line.empty() && line.back() == sep) out.emplace_back();
  return out;
}

inline double parse_number(const std::string& s) {
  if (s == "NA") return std::numeric_limits<double>::quiet_NaN();
  double v = 0.0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    throw std::runtime_error("reference table: not a number: '" + s + "'");
  }
  return v;
}

struct ReferenceTable {
  std::vector<std::string> header;
  std::map<std::string, std::size_t> column;
  std::vector<std::vector<std::string>> rows;

  const std::string& field(const std::vector<std::string>& row, const std::string& name) const {
    const auto it = column.find(name);
    if (it == column.end()) throw std::runtime_error("reference table: no column " + name);
    return row.at(it->second);
  }
  double number(const std::vector<std::string>& row, const std::string& name) const {
    return parse_number(field(row, name));
  }
  std::vector<double> numbers(const std::vector<std::string>& row, const std::string& name) const {
    std::vector<double> out;
    for (const std::string& s : split(field(row, name), ' ')) {
      if (!s.empty()) out.push_back(parse_number(s));
    }
    return out;
  }
};

// Reads tests/data/stats/<file>; throws when the file is missing or ragged, so a broken table
// fails the test loudly instead of silently testing nothing.
inline ReferenceTable read_reference(const std::string& file) {
  const std::string path = std::string(TTFB_LAB_TEST_DATA) + "/stats/" + file;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open reference table " + path);
  ReferenceTable t;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto fields = split(line, ',');
    if (t.header.empty()) {
      t.header = std::move(fields);
      for (std::size_t i = 0; i < t.header.size(); ++i) t.column[t.header[i]] = i;
      continue;
    }
    if (fields.size() != t.header.size()) {
      throw std::runtime_error(path + ": row '" + fields.at(0) + "' has " +
                               std::to_string(fields.size()) + " fields, header has " +
                               std::to_string(t.header.size()));
    }
    t.rows.push_back(std::move(fields));
  }
  return t;
}

// |actual - expected| <= rel * max(|actual|, |expected|) + abs. Exact equality (including both
// infinite) always passes; a NaN never does.
inline ::testing::AssertionResult near_rel(double actual, double expected, double rel,
                                           double abs = 0.0) {
  if (actual == expected) return ::testing::AssertionSuccess();
  const double diff = std::fabs(actual - expected);
  const double tol = rel * std::fmax(std::fabs(actual), std::fabs(expected)) + abs;
  if (diff <= tol) return ::testing::AssertionSuccess();
  std::ostringstream msg;
  msg.precision(17);
  msg << "actual " << actual << " vs expected " << expected << ": difference " << diff
      << " exceeds " << tol << " (rel " << rel << ", abs " << abs << ")";
  return ::testing::AssertionFailure() << msg.str();
}

// Expects fn() to throw std::invalid_argument whose message contains needle (edge-case tests).
template <typename Fn>
void expect_invalid(Fn fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected std::invalid_argument mentioning '" << needle << "'";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace ttfb::stats::testing
