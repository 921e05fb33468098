// PostgreSQL access for the server: a small connection pool and one place where database errors
// are translated into the project's error vocabulary (common/errors.hpp):
//   broken connection / server shutting down -> unavailable (503, retry later)
//   unique violation -> conflict; serialization failure / deadlock -> retried here, then unavailable
//
//   ttfb::Database db(dsn, 4);
//   db.migrate(schema_dir);                       // at start-up
//   auto id = db.transact([&](pqxx::work& tx) { return tx.exec_params1(kInsert, a).at(0).as<long>(); });
//
// Connections are made lazily and dropped when broken, so the server survives a database
// restart: requests fail with 503 while it is away and succeed again once it is back.
#pragma once

#include <pqxx/pqxx>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ttfb {

class Database {
 public:
  Database(std::string dsn, int pool_size);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs fn in a read-committed transaction and commits it. Retries serialization failures and
  // deadlocks a few times; translates database errors into ApiError.
  template <typename Fn>
  auto transact(Fn&& fn) -> decltype(fn(std::declval<pqxx::work&>())) {
    using R = decltype(fn(std::declval<pqxx::work&>()));
    if constexpr (std::is_void_v<R>) {
      run([&](pqxx::connection& c) {
        pqxx::work tx(c);
        fn(tx);
        tx.commit();
      });
    } else {
      std::optional<R> out;
      run([&](pqxx::connection& c) {
        pqxx::work tx(c);
        out.emplace(fn(tx));
        tx.commit();
      });
      return std::move(*out);
    }
  }

  // Applies schema/NNN_name.sql files not yet recorded in schema_migrations, each in its own
  // transaction, in order. Returns how many were applied. Several servers starting at once
  // serialise on an advisory lock.
  int migrate(const std::string& schema_dir);
  // Latest applied migration version (0 when none) and the newest one in schema_dir.
  int applied_version();
  static int available_version(const std::string& schema_dir);

  const std::string& dsn() const { return dsn_; }

 private:
  void run(const std::function<void(pqxx::connection&)>& body);
  std::unique_ptr<pqxx::connection> acquire();
  void release(std::unique_ptr<pqxx::connection> c);

  std::string dsn_;
  int pool_size_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  int open_ = 0;  // connections handed out or idle
};

// Translates a libpqxx exception (rethrown inside) into ApiError. Use in catch blocks.
[[noreturn]] void rethrow_database_error(const std::string& context);

}  // namespace ttfb
