// Bisections in PostgreSQL, driven by the scheduler: a bisection is an experiment of purpose
// "bisect" whose jobs are probes (stage "probe": one commit, one arm, warm-up + measured runs),
// planned a round at a time by the search of server/bisect/search.hpp. The bisections row keeps
// the range, the frozen options and each round's requests and job ids; every tick the rounds are
// replayed through a new Search (server/bisect/replay.hpp), so nothing lives only in memory and a
// restarted server, or another replica, carries on.
//
//   long id = ttfb::start_bisection(config, db, mirrors, {.repo = "example", .workflow = "example-train",
//                                                         .good_ref = "v1.0", .bad_ref = "v1.1"});
//   scheduler tick: ttfb::advance_bisections(config, db, mirrors);  // next round, or the result
//   GET:            ttfb::get_bisection(db, id, config.public_url);
#pragma once

#include "server/config.hpp"
#include "server/repos.hpp"
#include "server/store/db.hpp"

#include <boost/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace ttfb {

struct BisectionRequest {
  std::string repo;
  std::string workflow;
  std::string good_ref, bad_ref;
  // Set by a release gate: its id, its experiment (whose base/candidate runs seed the ends) and
  // the design that experiment's workflow was judged by. A standalone bisection takes the
  // workflow's current design (its latest calibration's threshold).
  std::optional<long> release_id;
  std::optional<long> seed_experiment_id;
  std::optional<boost::json::object> design;
  std::string requested_by;
};

// Checks the request (known repo and workflow of it, refs that resolve, good on bad's first-parent
// line, not the same commit, at most 10000 commits: ApiError(invalid_argument) saying which), then
// inserts the experiment, the bisection row and the first round's probe jobs. Returns the id.
// The transaction form is used by a release gate when it blocks (same transaction as the verdict).
long start_bisection(const ServerConfig& config, Database& db, RepoMirrors& mirrors, const BisectionRequest& request);
long start_bisection(pqxx::work& tx, const ServerConfig& config, RepoMirrors& mirrors, const BisectionRequest& request);

// One pass over active bisections whose round has finished (no probe queued or running, some
// not yet analysed): replay, then plan the next round or record the result (the experiment's
// verdict: found -> regression, no_regression -> no_change, broken -> inconclusive) and alert
// each culprit's author. A cancelled probe cancels the bisection. A failed probe breaks the
// commit its failed arm measured (jobs.error.arm). When an end cannot be measured, the message
// names its commit and error, and for the good end the first commit of the range where the
// workflow's files exist (`suggested_good`, looked up in `mirrors`: server/scheduler/broken_ends.hpp).
// Returns how many advanced.
int advance_bisections(const ServerConfig& config, Database& db, RepoMirrors& mirrors);

// GET /api/v1/bisections/{id} (docs/openapi.json); throws not_found.
boost::json::object get_bisection(Database& db, long id, const std::string& public_url);
// GET /api/v1/bisections: summaries (no commits table, no steps), newest first.
boost::json::object list_bisections(Database& db, const std::optional<std::string>& repo,
                                    const std::optional<std::string>& status, int limit, const std::string& public_url);
// The summaries of a release gate's bisections, inside the caller's transaction.
boost::json::array bisections_of_release(pqxx::work& tx, long release_id, const std::string& public_url);

}  // namespace ttfb
