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

std::map<std::string, std::vector<std::string>> footprint_files(Database& db, const std::vector<std::string>& workflows) {
  json::array names;
  for (const auto& w : workflows) names.emplace_back(w);
  return db.transact([&](pqxx::work& tx) {
    std::map<std::string, std::vector<std::string>> out;
    const auto rows = tx.exec_params(
        "SELECT workflow, to_json(files)::text FROM workflow_footprints "
        "WHERE workflow IN (SELECT json_array_elements_text($1::json))",
        json::serialize(names));
    for (const auto& row : rows) {
      const json::value listed = json::parse(row[1].as<std::string>());
      auto& files = out[row[0].as<std::string>()];
      for (const auto& f : listed.as_array()) files.emplace_back(f.as_string());
    }
    return out;
  });
}

}  // namespace ttfb
