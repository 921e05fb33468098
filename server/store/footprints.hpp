// Workflows' footprints in PostgreSQL (schema/010_footprints.sql): the files of its repository a
// workflow's run opened, recorded by the worker (worker/footprint.hpp) with the first measured
// baseline run of each job on a plain commit (store/jobs.cpp, add_samples) and read here.
#pragma once

#include "server/store/db.hpp"

#include <boost/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace ttfb {

// {"base_commit", "files": [...], "file_count", "job_id", "recorded_at"} of the workflow's
// latest footprint, or null when none was recorded yet.
boost::json::value workflow_footprint(Database& db, const std::string& workflow);

// The files of each named workflow's latest footprint, in one query; a workflow with no footprint
// yet is absent from the map.
std::map<std::string, std::vector<std::string>> footprint_files(Database& db, const std::vector<std::string>& workflows);

}  // namespace ttfb
