// A number for a JSON document: NaN and infinities, which JSON cannot carry, become null.
//
//   o["effect_pct"] = ttfb::json_number(w.effect_pct);   // null when the test had too few runs
#pragma once

#include <boost/json.hpp>

#include <cmath>

namespace ttfb {

inline boost::json::value json_number(double x) {
  return std::isfinite(x) ? boost::json::value(x) : boost::json::value(nullptr);
}

}  // namespace ttfb
