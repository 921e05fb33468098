#include "server/store/db.hpp"

#include "common/errors.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

namespace ttfb {
namespace {
namespace fs = std::filesystem;

// Arbitrary but fixed: the advisory lock that serialises migrations across server replicas.
constexpr long kMigrationLockKey = 0x7466626d;  // "tfbm"
constexpr int kTransactionRetries = 3;

constexpr const char* kCreateMigrationsTable = R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations (
  version     integer PRIMARY KEY,
  name        text NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now()
))sql";
constexpr const char* kSelectAppliedVersions = "SELECT version FROM schema_migrations ORDER BY version";
constexpr const char* kInsertMigration = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)";
constexpr const char* kSelectMaxVersion =
    "SELECT coalesce(max(version), 0) FROM schema_migrations";

struct Migration {
  int version;
  std::string name;
  fs::path path;
};

std::vector<Migration> list_migrations(const std::string& dir) {
  static const std::regex kFile(R"((\d+)_([A-Za-z0-9_]+)\.sql)");
  std::vector<Migration> out;
  if (!fs::is_directory(dir)) throw std::runtime_error("schema directory " + dir + " does not exist");
  for (const auto& e : fs::directory_iterator(dir)) {
    std::smatch m;
    std::string file = e.path().filename().string();
    if (std::regex_match(file, m, kFile)) out.push_back({std::stoi(m[1]), m[2], e.path()});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.version < b.version; });
  return out;
}

bool is_connection_state(const std::string& sqlstate) {
  // Class 08: connection exception; class 57: operator intervention (admin shutdown, crash).
  return sqlstate.rfind("08", 0) == 0 || sqlstate.rfind("57", 0) == 0;
}

}  // namespace

[[noreturn]] void rethrow_database_error(const std::string& context) {
  try {
    throw;
  } catch (const ApiError&) {
    throw;
  } catch (const pqxx::broken_connection& e) {
    throw ApiError(ErrorCode::unavailable, "the database is unavailable; try again shortly", e.what());
  } catch (const pqxx::unique_violation& e) {
    throw ApiError(ErrorCode::conflict, "already exists (" + context + ")", e.what());
  } catch (const pqxx::sql_error& e) {
    if (is_connection_state(e.sqlstate()))
      throw ApiError(ErrorCode::unavailable, "the database is unavailable; try again shortly", e.what());
    spdlog::error("database error in {}: {} [{}] query: {}", context, e.what(), e.sqlstate(), e.query());
    throw ApiError(ErrorCode::internal, "internal error");
  } catch (const pqxx::in_doubt_error& e) {
    throw ApiError(ErrorCode::unavailable, "the database connection was lost during a commit; check the result", e.what());
  } catch (const pqxx::failure& e) {
    throw ApiError(ErrorCode::unavailable, "the database is unavailable; try again shortly", e.what());
  }
}

Database::Database(std::string dsn, int pool_size) : dsn_(std::move(dsn)), pool_size_(pool_size) {}

Database::~Database() = default;

std::unique_ptr<pqxx::connection> Database::acquire() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !idle_.empty() || open_ < pool_size_; });
  if (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    return c;
  }
  ++open_;
  lock.unlock();
  try {
    return std::make_unique<pqxx::connection>(dsn_);
  } catch (...) {
    std::lock_guard relock(mu_);
    --open_;
    cv_.notify_one();
    throw;
  }
}

void Database::release(std::unique_ptr<pqxx::connection> c) {
  std::lock_guard lock(mu_);
  if (c && c->is_open()) {
    idle_.push_back(std::move(c));
  } else {
    --open_;  // broken: dropped, a new one is made on demand
  }
  cv_.notify_one();
}

void Database::run(const std::function<void(pqxx::connection&)>& body) {
  for (int attempt = 1;; ++attempt) {
    std::unique_ptr<pqxx::connection> c;
    try {
      c = acquire();
      body(*c);
      release(std::move(c));
      return;
    } catch (const pqxx::transaction_rollback& e) {
      release(std::move(c));
      if (attempt >= kTransactionRetries) {
        throw ApiError(ErrorCode::unavailable, "the database is busy; try again", e.what());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10 * attempt));
    } catch (...) {
      if (c) {
        // A connection that saw a connection-class error is not trusted again.
        bool broken = !c->is_open();
        try {
          throw;
        } catch (const pqxx::broken_connection&) {
          broken = true;
        } catch (const pqxx::sql_error& e) {
          broken = broken || is_connection_state(e.sqlstate());
        } catch (...) {
        }
        if (broken) c.reset();
        release(std::move(c));
      }
      rethrow_database_error("transaction");
    }
  }
}

int Database::migrate(const std::string& schema_dir) {
  auto migrations = list_migrations(schema_dir);
  int applied = 0;
  try {
    pqxx::connection c(dsn_);
    {
      pqxx::nontransaction nt(c);
      nt.exec_params("SELECT pg_advisory_lock($1)", kMigrationLockKey);
      nt.exec(kCreateMigrationsTable);
    }
    std::set<int> done;
    {
      pqxx::nontransaction nt(c);
      for (const auto& row : nt.exec(kSelectAppliedVersions)) done.insert(row[0].as<int>());
    }
    for (const auto& m : migrations) {
      if (done.count(m.version)) continue;
      std::ifstream in(m.path);
      std::stringstream sql;
      sql << in.rdbuf();
      pqxx::work tx(c);
      tx.exec(sql.str());
      tx.exec_params(kInsertMigration, m.version, m.name);
      tx.commit();
      spdlog::info("applied migration {:03d}_{}", m.version, m.name);
      ++applied;
    }
    pqxx::nontransaction nt(c);
    nt.exec_params("SELECT pg_advisory_unlock($1)", kMigrationLockKey);
  } catch (...) {
    rethrow_database_error("migrate");
  }
  return applied;
}

int Database::applied_version() {
  return transact([](pqxx::work& tx) {
    auto exists = tx.exec1("SELECT to_regclass('schema_migrations') IS NOT NULL");
    if (!exists[0].as<bool>()) return 0;
    return tx.exec1(kSelectMaxVersion)[0].as<int>();
  });
}

int Database::available_version(const std::string& schema_dir) {
  auto m = list_migrations(schema_dir);
  return m.empty() ? 0 : m.back().version;
}

}  // namespace ttfb
