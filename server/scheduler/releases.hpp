// Release gates: the holistic suite (every workflow of the repository, or those listed) measured
// base vs candidate as one experiment of purpose "release"; the gate goes pending -> passed or
// blocked when the experiment ends. A blocked gate starts a bisection of base..candidate for each
// confirmed regressed workflow (seeded with the gate's own runs of the ends) and alerts the
// release's owner. AI Lab's O(releases) path (DESIGN.md §4).
//
//   auto gate = ttfb::create_release(config, db, mirrors, {.name = "v1.1", .repo = "example",
//                                                          .base = "v1.0", .candidate = "v1.1"});
//   scheduler tick: ttfb::advance_releases(config, db, mirrors);
#pragma once

#include "server/config.hpp"
#include "server/repos.hpp"
#include "server/store/db.hpp"

#include <boost/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace ttfb {

struct ReleaseRequest {
  std::string name;        // [A-Za-z0-9][A-Za-z0-9._+-]{0,99}, unique
  std::string repo;
  std::string base, candidate;        // refs (tags, branches, SHAs)
  std::vector<std::string> workflows;  // empty: every workflow of the repository
  std::string owner, owner_email;
  std::string created_by;              // the token's name
};

// Checks the request (name, repository, workflows, refs; base on candidate's first-parent line so
// that a blocked gate can be bisected: ApiError(invalid_argument) saying which; a name taken:
// conflict), inserts the experiment and the gate, and returns the gate as GET shows it.
boost::json::object create_release(const ServerConfig& config, Database& db, RepoMirrors& mirrors, const ReleaseRequest& request);

// Decides pending gates whose experiment has ended: cancelled -> cancelled; a confirmed
// regression in any workflow -> blocked (bisections started, the owner alerted); else an
// errored workflow -> error; else passed. Returns how many gates were decided.
int advance_releases(const ServerConfig& config, Database& db, RepoMirrors& mirrors);

// GET /api/v1/releases/{name} (docs/openapi.json): the gate, its experiment and its bisections;
// throws not_found.
boost::json::object get_release(Database& db, const std::string& name, const std::string& public_url);
// GET /api/v1/releases: newest first, with their bisections' summaries.
boost::json::object list_releases(Database& db, const std::optional<std::string>& repo,
                                  const std::optional<std::string>& status, int limit, const std::string& public_url);

}  // namespace ttfb
