// The REST API (DESIGN §4): routes, authentication by bearer token with scopes, request
// validation, and the mapping of every failure to {"error": {...}} with the right status.
// Each request runs on the blocking pool (it talks to PostgreSQL or git), never on I/O threads.
#pragma once

#include "server/api/static_files.hpp"
#include "server/config.hpp"
#include "server/http/server.hpp"
#include "server/metrics.hpp"
#include "server/repos.hpp"
#include "server/store/db.hpp"

#include <boost/asio/thread_pool.hpp>

namespace ttfb {

class Api {
 public:
  Api(const ServerConfig& config, Database& db, Metrics& metrics, RepoMirrors& mirrors,
      boost::asio::thread_pool& blocking);

  // The HttpHandler of the server.
  void handle(HttpRequest request, std::function<void(HttpAnswer)> respond);

  // Synchronous core of handle(), for tests: returns the answer and the route template.
  HttpAnswer dispatch(const HttpRequest& request, std::string& route);

 private:
  const ServerConfig& config_;
  Database& db_;
  Metrics& metrics_;
  RepoMirrors& mirrors_;
  boost::asio::thread_pool& blocking_;
  StaticFiles web_;
};

}  // namespace ttfb
