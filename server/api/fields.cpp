#include "server/api/fields.hpp"

#include "common/errors.hpp"
#include "common/utf8.hpp"

#include <boost/json.hpp>

#include <cmath>

namespace ttfb {
namespace json = boost::json;
namespace {

// Boost.JSON reads a number beyond a double's range (1e400) as infinity, which it then writes as
// `Infinity` — not JSON — and no field of the API means it. The body is at most kMaxBodyDepth
// deep, so the recursion is too.
bool has_non_finite_number(const json::value& v) {
  if (v.is_double()) return !std::isfinite(v.get_double());
  if (v.is_array())
    for (const auto& x : v.get_array())
      if (has_non_finite_number(x)) return true;
  if (v.is_object())
    for (const auto& kv : v.get_object())
      if (has_non_finite_number(kv.value())) return true;
  return false;
}

}  // namespace

json::object parse_body(std::string_view body) {
  if (body.empty()) throw ApiError(ErrorCode::invalid_argument, "request body is empty: send a JSON object");
  json::parse_options options;
  options.max_depth = kMaxBodyDepth;
  json::error_code ec;
  json::value v = json::parse(body, ec, json::storage_ptr(), options);
  if (ec == json::error::too_deep) {
    throw ApiError(ErrorCode::invalid_argument,
                   "request body is nested deeper than " + std::to_string(kMaxBodyDepth) + " levels");
  }
  if (ec) throw ApiError(ErrorCode::invalid_argument, "request body is not valid JSON: " + ec.message());
  if (has_non_finite_number(v))
    throw ApiError(ErrorCode::invalid_argument, "request body holds a number too large for a double (e.g. 1e400)");
  if (!v.is_object())
    throw ApiError(ErrorCode::invalid_argument,
                   "request body must be a JSON object, not " + std::string(json::to_string(v.kind())));
  return std::move(v.as_object());
}

std::optional<std::string> opt_string(const json::object& o, const char* key, std::size_t max_bytes) {
  const auto* v = o.if_contains(key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_string()) throw ApiError(ErrorCode::invalid_argument, std::string("'") + key + "' must be a string");
  const auto& s = v->get_string();
  if (s.size() > max_bytes)
    throw ApiError(ErrorCode::invalid_argument,
                   std::string("'") + key + "' is longer than " + std::to_string(max_bytes) + " bytes");
  if (s.find('\0') != json::string::npos)
    throw ApiError(ErrorCode::invalid_argument, std::string("'") + key + "' holds a NUL character");
  return std::string(s);
}

std::string req_string(const json::object& o, const char* key, const std::string& hint, std::size_t max_bytes) {
  auto s = opt_string(o, key, max_bytes);
  if (!s || s->empty()) throw ApiError(ErrorCode::invalid_argument, std::string("'") + key + "' is required: " + hint);
  return *s;
}

std::optional<long> opt_int(const json::object& o, const char* key, long lo, long hi) {
  const auto* v = o.if_contains(key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_int64() || v->as_int64() < lo || v->as_int64() > hi)
    throw ApiError(ErrorCode::invalid_argument,
                   std::string("'") + key + "' must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
  return v->as_int64();
}

std::vector<std::string> workflow_names(const json::object& body) {
  std::vector<std::string> names;
  if (const auto* w = body.if_contains("workflows"); w && !w->is_null()) {
    if (!w->is_array()) throw ApiError(ErrorCode::invalid_argument, "'workflows' must be an array of workflow names");
    if (w->get_array().size() > kMaxWorkflowNames)
      throw ApiError(ErrorCode::invalid_argument,
                     "'workflows' names more than " + std::to_string(kMaxWorkflowNames) + " workflows");
    for (const auto& x : w->get_array()) {
      if (!x.is_string() || x.get_string().size() > kMaxFieldBytes)
        throw ApiError(ErrorCode::invalid_argument, "'workflows' must contain only names (strings)");
      // As opt_string: PostgreSQL's text cannot hold a NUL (found by fuzz/json_body_fuzz).
      if (x.get_string().find('\0') != json::string::npos)
        throw ApiError(ErrorCode::invalid_argument, "'workflows' holds a name with a NUL character");
      names.emplace_back(x.get_string());
    }
  }
  return names;
}

namespace {

std::string bounded_string(const json::value& v, const std::string& where) {
  if (!v.is_string()) throw ApiError(ErrorCode::invalid_argument, where + " must be a string");
  const auto& s = v.get_string();
  if (s.size() > kMaxFieldBytes)
    throw ApiError(ErrorCode::invalid_argument, where + " is longer than " + std::to_string(kMaxFieldBytes) + " bytes");
  if (s.find('\0') != json::string::npos) throw ApiError(ErrorCode::invalid_argument, where + " holds a NUL character");
  return std::string(s);
}

std::vector<std::string> command_words(const json::object& body, const char* key, const char* example) {
  std::vector<std::string> out;
  const auto* v = body.if_contains(key);
  if (!v || v->is_null()) return out;
  const std::string what = std::string("'") + key + "'";
  if (!v->is_array())
    throw ApiError(ErrorCode::invalid_argument, what + " must be an array of strings, e.g. " + example +
                                                    " (an array, not one string: no shell splits it)");
  const auto& a = v->get_array();
  if (a.empty()) throw ApiError(ErrorCode::invalid_argument, what + " is empty: give at least one word, or leave it out");
  if (a.size() > kMaxCommandWords)
    throw ApiError(ErrorCode::invalid_argument, what + " has more than " + std::to_string(kMaxCommandWords) + " words");
  for (std::size_t i = 0; i < a.size(); ++i) {
    out.push_back(bounded_string(a[i], what + "[" + std::to_string(i) + "]"));
    if (out.back().empty()) throw ApiError(ErrorCode::invalid_argument, what + "[" + std::to_string(i) + "] is empty");
  }
  return out;
}

bool is_variable_name(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
  if (!alpha(s[0])) return false;
  for (char c : s)
    if (!alpha(c) && !(c >= '0' && c <= '9')) return false;
  return true;
}

}  // namespace

CandidateRuntime candidate_runtime(const json::object& body) {
  CandidateRuntime r;
  if (const auto* v = body.if_contains("candidate_env"); v && !v->is_null()) {
    if (!v->is_object())
      throw ApiError(ErrorCode::invalid_argument,
                     "'candidate_env' must be an object of variable names to a string (set) or null (removed), "
                     "e.g. {\"PYTHONPROFILEIMPORTTIME\": \"1\", \"OMP_NUM_THREADS\": null}");
    const auto& o = v->get_object();
    if (o.size() > kMaxEnvVariables)
      throw ApiError(ErrorCode::invalid_argument,
                     "'candidate_env' sets more than " + std::to_string(kMaxEnvVariables) + " variables");
    for (const auto& kv : o) {
      const std::string name(kv.key());
      if (!is_variable_name(name))
        throw ApiError(ErrorCode::invalid_argument,
                       "'candidate_env' has a bad variable name '" + std::string(utf8_prefix(name, 64)) +
                           "': a name is a letter or _ followed by letters, digits or _ (at most 128)");
      if (name.rfind("TTFB_", 0) == 0)
        throw ApiError(ErrorCode::invalid_argument, "'candidate_env' cannot set " + name +
                                                        ": TTFB_* variables are the lab's own (TTFB_PROBE_FD is the probe's pipe)");
      if (kv.value().is_null()) r.env[name] = std::nullopt;
      else r.env[name] = bounded_string(kv.value(), "'candidate_env." + name + "'");
    }
  }
  r.command_prefix = command_words(body, "candidate_command_prefix", "[\"nice\", \"-n\", \"10\"]");
  r.interpreter = command_words(body, "candidate_interpreter", "[\"python3\", \"-X\", \"importtime\"]");
  return r;
}

std::optional<DependencyRequest> dependency_request(const json::object& body, std::size_t diff_limit) {
  const auto* v = body.if_contains("dependency");
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_object())
    throw ApiError(ErrorCode::invalid_argument,
                   "'dependency' must be an object: {\"repo\": \"<a repository the workflows declare in [[dependencies]]>\", "
                   "\"diff\": \"<a unified diff of it>\"} or {\"repo\": ..., \"candidate\": \"<a revision of it>\"}");
  const auto& o = v->get_object();
  for (const auto& kv : o) {
    const std::string_view k = kv.key();
    if (k != "repo" && k != "base" && k != "candidate" && k != "diff")
      throw ApiError(ErrorCode::invalid_argument, "'dependency." + std::string(utf8_prefix(k, 64)) +
                                                      "' is not a key of a dependency (repo, base, candidate, diff)");
  }
  DependencyRequest r;
  if (!o.contains("repo"))
    throw ApiError(ErrorCode::invalid_argument,
                   "'dependency.repo' is required: the dependency's repository, as the workflows' [[dependencies]] name it");
  r.repo = req_string(o, "repo", "the dependency's repository, as the workflows' [[dependencies]] name it");
  r.base = opt_string(o, "base");
  r.candidate = opt_string(o, "candidate");
  r.diff = opt_string(o, "diff", diff_limit);
  if (r.diff && r.candidate) throw ApiError(ErrorCode::invalid_argument, "give 'dependency.diff' or 'dependency.candidate', not both");
  if (!r.diff && !r.candidate)
    throw ApiError(ErrorCode::invalid_argument,
                   "'dependency' needs 'diff' (a unified diff of " + r.repo + ") or 'candidate' (a revision of it)");
  if (r.diff && r.diff->find_first_not_of(" \t\r\n") == std::string::npos)
    throw ApiError(ErrorCode::invalid_argument, "'dependency.diff' is empty: there is nothing to compare");
  return r;
}

WorkerFacts worker_facts(const json::object& body) {
  const auto* w = body.if_contains("worker");
  if (!w || !w->is_object()) throw ApiError(ErrorCode::invalid_argument, "'worker' must be an object with at least a 'name'");
  const auto& o = w->get_object();
  WorkerFacts f;
  f.name = req_string(o, "name", "the worker's unique name", 200);
  f.host = opt_string(o, "host", 256).value_or("");
  f.cpu_model = opt_string(o, "cpu_model", 256).value_or("");
  f.kernel = opt_string(o, "kernel", 256).value_or("");
  f.version = opt_string(o, "version", 64).value_or("");
  f.cores = static_cast<int>(opt_int(o, "cores", 0, 100000).value_or(0));
  return f;
}

}  // namespace ttfb
