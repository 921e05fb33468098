// A fresh PostgreSQL database per test, migrated from schema/ and dropped afterwards, created
// through TTFB_LAB_TEST_PG_ADMIN_DSN (./lab test sets it). Without it the test fails loudly,
// never skips.
//
//   class MyTest : public ttfb::testing::ThrowawayDatabaseTest {};
//   TEST_F(MyTest, Works) { ttfb::insert_experiment(*db_, ...); }
#pragma once

#include "server/store/db.hpp"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

namespace ttfb::testing {

inline std::string admin_dsn() {
  const char* dsn = std::getenv("TTFB_LAB_TEST_PG_ADMIN_DSN");
  if (!dsn || !*dsn) {
    ADD_FAILURE() << "TTFB_LAB_TEST_PG_ADMIN_DSN is not set: run the database tests through ./lab test, "
                     "or point it at a PostgreSQL maintenance database (e.g. 'host=/tmp dbname=postgres')";
    throw std::runtime_error("no test database");
  }
  return dsn;
}

// The DSN with another database and every other setting kept (host, port, user, the passfile
// that holds the password, ...), whatever their order, quoting or form (keywords or a URI).
inline std::string with_dbname(const std::string& dsn, const std::string& dbname) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  if (!options) {
    const std::string why = error ? error : "out of memory";
    PQfreemem(error);
    throw std::runtime_error("cannot read the DSN '" + dsn + "': " + why);
  }
  auto quote = [](const std::string& v) {
    std::string q = "'";
    for (char c : v) {
      if (c == '\'' || c == '\\') q += '\\';
      q += c;
    }
    return q + "'";
  };
  std::string out;
  for (const PQconninfoOption* o = options; o->keyword; ++o) {
    if (o->val && std::string(o->keyword) != "dbname") out += std::string(o->keyword) + "=" + quote(o->val) + " ";
  }
  PQconninfoFree(options);
  return out + "dbname=" + quote(dbname);
}

class ThrowawayDatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    name_ = "ttfb_pgtest_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
    pqxx::connection admin(admin_dsn());
    pqxx::nontransaction nt(admin);
    nt.exec("DROP DATABASE IF EXISTS " + name_);
    nt.exec("CREATE DATABASE " + name_);
    db_ = std::make_unique<Database>(with_dbname(admin_dsn(), name_), 4);
    db_->migrate(TTFB_LAB_SCHEMA_DIR);
  }
  void TearDown() override {
    db_.reset();
    pqxx::connection admin(admin_dsn());
    pqxx::nontransaction nt(admin);
    nt.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  }

  std::string name_;
  std::unique_ptr<Database> db_;
};

}  // namespace ttfb::testing
