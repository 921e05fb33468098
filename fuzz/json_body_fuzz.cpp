// Fuzz target: the JSON request bodies (server/api/fields.hpp): ttfb::parse_body and each field
// reader the handlers use — opt_string, req_string, opt_int, workflow_names, worker_facts — on
// the fields of the API's bodies (README "API"). ApiError(invalid_argument) for bad input is the
// contract; any other exception, or a crash, is a finding. Asserts: a body nested deeper than
// kMaxBodyDepth is refused (Boost.JSON's parser is not recursive, and refusing keeps the
// value's recursive destructor and serialiser shallow); an accepted body is an object that
// serialises and parses back equal (numbers to within Boost.JSON's rounding); every string a reader returns is valid UTF-8 within its
// limit; every error message is valid UTF-8 and its error body parses back to it.
// Input: the raw body.
#include "fuzz/check.hpp"
#include "server/api/fields.hpp"

#include <boost/json.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace json = boost::json;

namespace {

// The deepest nesting of arrays and objects in `text`, outside strings (accurate for valid JSON,
// which is all it is asked about).
std::size_t nesting_depth(std::string_view text) {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

// Equal values, where numbers may differ in the last bits: Boost.JSON 1.81 parses decimals
// without correct rounding (11e32 comes back one ulp off after serialising), which no field of
// the API cares about.
bool same_value(const json::value& a, const json::value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind() != json::kind::double_ || b.kind() != json::kind::double_) return a == b;
    const double x = a.get_double(), y = b.get_double();
    return x == y || std::abs(x - y) <= 1e-15 * std::max(std::abs(x), std::abs(y));
  }
  if (a.kind() != b.kind()) return false;
  if (a.is_array()) {
    const auto &p = a.get_array(), &q = b.get_array();
    if (p.size() != q.size()) return false;
    for (std::size_t i = 0; i < p.size(); ++i)
      if (!same_value(p[i], q[i])) return false;
    return true;
  }
  if (a.is_object()) {
    const auto &p = a.get_object(), &q = b.get_object();
    if (p.size() != q.size()) return false;
    for (const auto& kv : p) {
      const auto* other = q.if_contains(kv.key());
      if (!other || !same_value(kv.value(), *other)) return false;
    }
    return true;
  }
  return a == b;
}

template <typename F>
void expect_value_or_api_error(F&& read) {
  try {
    read();
  } catch (const ttfb::ApiError& e) {
    FUZZ_CHECK(e.code() == ttfb::ErrorCode::invalid_argument, "a reader threw %s", std::string(to_string(e.code())).c_str());
    ttfb::fuzz::check_error_message(e.code(), e.what());
  }
}

void check_string(const std::optional<std::string>& s, std::size_t max_bytes) {
  if (!s) return;
  FUZZ_CHECK(s->size() <= max_bytes, "a string of %zu bytes passed a limit of %zu", s->size(), max_bytes);
  FUZZ_CHECK(ttfb::is_valid_utf8(*s), "a string field is not valid UTF-8");
  FUZZ_CHECK(s->find('\0') == std::string::npos, "a string field holds a NUL");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  json::object o;
  try {
    o = ttfb::parse_body(body);
  } catch (const ttfb::ApiError& e) {
    FUZZ_CHECK(e.code() == ttfb::ErrorCode::invalid_argument, "parse_body threw %s", std::string(to_string(e.code())).c_str());
    ttfb::fuzz::check_error_message(e.code(), e.what());
    return 0;
  }
  FUZZ_CHECK(nesting_depth(body) <= ttfb::kMaxBodyDepth, "accepted a body nested %zu deep", nesting_depth(body));
  const std::string again = json::serialize(o);
  FUZZ_CHECK(same_value(json::parse(again), json::value(o)), "the body does not survive serialising and parsing");

  // The fields of POST /api/v1/experiments, releases, bisections, calibrate and worker/claim.
  for (const char* key : {"repo", "base", "candidate", "author", "title", "change_url", "purpose", "name", "good",
                          "bad", "workflow", "owner", "owner_email", "worker", "error"}) {
    expect_value_or_api_error([&] { check_string(ttfb::opt_string(o, key), ttfb::kMaxFieldBytes); });
    expect_value_or_api_error([&] { check_string(ttfb::req_string(o, key, "a hint", 200), 200); });
  }
  expect_value_or_api_error([&] { check_string(ttfb::opt_string(o, "diff", 1 << 20), 1 << 20); });
  for (const char* key : {"runs_per_arm", "batches", "limit", "attempt", "cores"}) {
    expect_value_or_api_error([&] {
      if (auto v = ttfb::opt_int(o, key, 2, 500)) FUZZ_CHECK(*v >= 2 && *v <= 500, "opt_int out of range: %ld", *v);
    });
  }
  expect_value_or_api_error([&] {
    const auto names = ttfb::workflow_names(o);
    FUZZ_CHECK(names.size() <= ttfb::kMaxWorkflowNames, "%zu workflow names", names.size());
    for (const auto& n : names) check_string(n, ttfb::kMaxFieldBytes);
  });
  expect_value_or_api_error([&] {
    const ttfb::WorkerFacts f = ttfb::worker_facts(o);
    FUZZ_CHECK(!f.name.empty(), "a worker without a name");
    check_string(f.name, 200);
    check_string(f.host, 256);
    check_string(f.cpu_model, 256);
    check_string(f.kernel, 256);
    check_string(f.version, 64);
    FUZZ_CHECK(f.cores >= 0 && f.cores <= 100000, "cores out of range: %d", f.cores);
  });
  return 0;
}
