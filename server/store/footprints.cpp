#include "server/store/footprints.hpp"

namespace ttfb {

namespace json = boost::json;

json::value workflow_footprint(Database& db, const std::string& workflow) {
  return db.transact([&](pqxx::work& tx) -> json::value {
    const auto rows = tx.exec_params(
        "SELECT json_build_object('base_commit', base_commit, 'files', to_json(files), 'file_count', cardinality(files), "
        "'job_id', job_id, 'recorded_at', recorded_at)::text FROM workflow_footprints WHERE workflow = $1",
        workflow);
    if (rows.empty()) return nullptr;
    return json::parse(rows[0][0].as<std::string>());
  });
}

}  // namespace ttfb
