// Reading a request's JSON body as untrusted input: the body parsed with Boost.JSON under a
// depth limit, and each field read with a message that names it and says what it should be.
// Every failure is ApiError(invalid_argument); nothing here touches the database.
//
//   json::object body = ttfb::parse_body(req.body);
//   std::string repo = ttfb::req_string(body, "repo", "the name of a configured repository");
//   auto runs = ttfb::opt_int(body, "runs_per_arm", 2, 500);
#pragma once

#include "server/scheduler/plan.hpp"  // CandidateRuntime
#include "server/store/jobs.hpp"       // WorkerFacts

#include <boost/json/object.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ttfb {

// Nesting deeper than this is refused (no request of the API nests more than 4 levels).
constexpr std::size_t kMaxBodyDepth = 32;
// A string field is at most this long unless its reader says otherwise (a diff does).
constexpr std::size_t kMaxFieldBytes = 4096;
constexpr std::size_t kMaxWorkflowNames = 256;

// The body as a JSON object: refused when empty, not JSON, nested deeper than kMaxBodyDepth,
// holding a number beyond a double's range (found by fuzz/json_body_fuzz), or not an object.
boost::json::object parse_body(std::string_view body);

std::optional<std::string> opt_string(const boost::json::object& o, const char* key,
                                      std::size_t max_bytes = kMaxFieldBytes);
// Present and not empty.
std::string req_string(const boost::json::object& o, const char* key, const std::string& hint,
                       std::size_t max_bytes = kMaxFieldBytes);
// An integer in [lo, hi].
std::optional<long> opt_int(const boost::json::object& o, const char* key, long lo, long hi);
// The optional "workflows" array of names.
std::vector<std::string> workflow_names(const boost::json::object& body);
// What the candidate arm runs differently (an infra owner's experiment): "candidate_env" (an
// object of variable names to a string, or null to remove the variable), "candidate_command_prefix"
// and "candidate_interpreter" (arrays of words). Empty when none is given. Names are
// [A-Za-z_][A-Za-z0-9_]*, not TTFB_* (the lab's own, e.g. TTFB_PROBE_FD); at most kMaxEnvVariables
// variables and kMaxCommandWords words; every string bounded and free of NUL.
CandidateRuntime candidate_runtime(const boost::json::object& body);
constexpr std::size_t kMaxEnvVariables = 64;
// The optional "dependency" object of an experiment: {"repo": name, "diff": text | "candidate":
// revision, "base": revision?}: exactly one of diff and candidate; the diff at most `diff_limit`
// bytes and not blank. nullopt when absent or null.
struct DependencyRequest {
  std::string repo;
  std::optional<std::string> base, candidate, diff;
};
std::optional<DependencyRequest> dependency_request(const boost::json::object& body, std::size_t diff_limit);
constexpr std::size_t kMaxCommandWords = 32;
// The "worker" object of a claim: name (required), host, cpu_model, kernel, version, cores.
WorkerFacts worker_facts(const boost::json::object& body);

}  // namespace ttfb
