// ttfb-lab-server: the REST API, the scheduler, the alert dispatcher and /metrics, over PostgreSQL.
//
//   ttfb-lab-server --config configs/server.toml                 # serve (applies migrations first)
//   ttfb-lab-server --config configs/server.toml migrate         # only apply migrations
//   ttfb-lab-server --config configs/server.toml token create --name ci --scopes submit
//   ttfb-lab-server --config configs/server.toml token revoke --name ci
#include "common/errors.hpp"
#include "server/alerts/dispatcher.hpp"
#include "server/api/api.hpp"
#include "server/config.hpp"
#include "server/http/server.hpp"
#include "server/metrics.hpp"
#include "server/repos.hpp"
#include "server/scheduler/scheduler.hpp"
#include "server/store/db.hpp"
#include "server/store/tokens.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/program_options.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <iostream>
#include <thread>

namespace po = boost::program_options;

namespace {

// The database may still be starting (or restarting) when the server starts: wait for it a while.
void migrate_with_retry(ttfb::Database& db, int wait_seconds) {
  for (int waited = 0;; ++waited) {
    try {
      int n = db.migrate(TTFB_LAB_SCHEMA_DIR);
      spdlog::info("schema up to date ({} migration(s) applied now)", n);
      return;
    } catch (const ttfb::ApiError& e) {
      if (e.code() != ttfb::ErrorCode::unavailable || waited >= wait_seconds) throw;
      if (waited == 0) spdlog::warn("waiting for the database: {}", e.details());
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }
}

std::vector<std::string> split_scopes(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    auto comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

int serve(ttfb::ServerConfig& config, const std::string& listen_override) {
  if (!listen_override.empty()) {
    auto colon = listen_override.rfind(':');
    config.listen_host = listen_override.substr(0, colon);
    config.listen_port = static_cast<unsigned short>(std::stoi(listen_override.substr(colon + 1)));
  }
  ttfb::Database db(config.database_dsn, config.database_pool_size);
  migrate_with_retry(db, 30);
  ttfb::Metrics metrics;
  ttfb::RepoMirrors mirrors(config.git_cache_dir, config.repos);
  boost::asio::thread_pool blocking(static_cast<std::size_t>(config.blocking_threads));
  ttfb::Api api(config, db, metrics, mirrors, blocking);

  boost::asio::io_context ioc(config.io_threads);
  boost::asio::ip::tcp::endpoint endpoint(boost::asio::ip::make_address(config.listen_host), config.listen_port);
  ttfb::HttpServer server(
      ioc, endpoint, [&api](ttfb::HttpRequest r, std::function<void(ttfb::HttpAnswer)> respond) { api.handle(std::move(r), std::move(respond)); },
      {.body_limit = config.body_limit_bytes,
       .read_timeout = std::chrono::seconds(config.read_timeout_seconds),
       .tls_cert_file = config.tls_cert_file,
       .tls_key_file = config.tls_key_file});
  server.start();
  const std::string scheme = config.tls_cert_file.empty() ? "http" : "https";
  if (config.listen_port == 0 && config.public_url.find(":0") != std::string::npos) {
    config.public_url = scheme + "://" + config.listen_host + ":" + std::to_string(server.port());
  }
  ttfb::Scheduler scheduler(config, db, metrics, mirrors);
  scheduler.start();
  ttfb::alerts::AlertDispatcher dispatcher(config, db, metrics);
  dispatcher.start();

  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int sig) {
    spdlog::info("signal {}: shutting down", sig);
    server.stop();
    ioc.stop();
  });
  spdlog::info("ttfb-lab-server listening on {}://{}:{} ({} repositories, {} workflows)", scheme, config.listen_host,
               server.port(), config.repos.size(), config.workflows.size());
  if (scheme == "http" && config.listen_host != "127.0.0.1" && config.listen_host != "::1" && config.listen_host != "localhost")
    spdlog::warn("listening on {} without TLS: tokens cross the network in clear text; set server.tls_cert_file and "
                 "server.tls_key_file, or put a TLS-terminating proxy in front", config.listen_host);
  std::cout << "listening on " << scheme << "://" << config.listen_host << ":" << server.port() << std::endl;

  std::vector<std::thread> threads;
  for (int i = 1; i < config.io_threads; ++i) threads.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();
  scheduler.stop();
  dispatcher.stop();  // lets the delivery in flight finish and record its outcome while db is still here
  blocking.join();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path, listen, name, scopes;
  std::vector<std::string> command;
  po::options_description opts("ttfb-lab-server options");
  opts.add_options()("help,h", "show this help")("version", "print the version")("config,c", po::value(&config_path)->default_value("configs/server.toml"),
                                                 "server configuration (TOML)")(
      "listen", po::value(&listen), "HOST:PORT to listen on, overriding server.listen (port 0: any free port)")(
      "name", po::value(&name), "token name (token create/revoke)")(
      "scopes", po::value(&scopes)->default_value("submit"), "comma-separated scopes: submit, worker, admin (token create)")(
      "log-level", po::value<std::string>()->default_value("info"), "trace, debug, info, warn, error");
  po::options_description hidden;
  hidden.add_options()("command", po::value(&command));
  po::positional_options_description pos;
  pos.add("command", -1);
  po::options_description all;
  all.add(opts).add(hidden);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "ttfb-lab-server: " << e.what() << "\n" << opts;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << "usage: ttfb-lab-server [options] [serve | migrate | token create --name N --scopes S | token revoke --name N]\n"
              << opts;
    return 0;
  }
  if (vm.count("version")) {
    std::cout << "ttfb-lab-server " << ttfb::kServerVersion << "\n";
    return 0;
  }
  // Logs go to stderr: stdout carries only what commands print (a token, the listening address).
  spdlog::set_default_logger(spdlog::stderr_color_mt("server"));
  spdlog::set_level(spdlog::level::from_str(vm["log-level"].as<std::string>()));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ server %v");
  try {
    ttfb::ServerConfig config = ttfb::load_server_config(config_path);
    if (command.empty() || command[0] == "serve") return serve(config, listen);
    ttfb::Database db(config.database_dsn, 1);
    if (command[0] == "migrate") {
      migrate_with_retry(db, 30);
      return 0;
    }
    if (command[0] == "token" && command.size() == 2 && (command[1] == "create" || command[1] == "revoke")) {
      if (name.empty()) {
        std::cerr << "ttfb-lab-server: token " << command[1] << " needs --name\n";
        return 2;
      }
      migrate_with_retry(db, 30);
      if (command[1] == "create") {
        std::cout << ttfb::create_token(db, name, split_scopes(scopes)) << "\n";
      } else {
        std::cout << "revoked " << ttfb::revoke_tokens(db, name) << " token(s) named " << name << "\n";
      }
      return 0;
    }
    std::cerr << "ttfb-lab-server: unknown command '" << command[0] << "' (serve, migrate, token create, token revoke)\n";
    return 2;
  } catch (const ttfb::ConfigError& e) {
    std::cerr << "ttfb-lab-server: configuration error: " << e.what() << "\n";
    return 2;
  } catch (const ttfb::ApiError& e) {
    std::cerr << "ttfb-lab-server: " << e.what() << (e.details().empty() ? "" : " (" + e.details() + ")") << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "ttfb-lab-server: " << e.what() << "\n";
    return 1;
  }
}
