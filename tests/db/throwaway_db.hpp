// A fresh PostgreSQL database per test, migrated from schema/ and dropped afterwards, created
// through TTFB_LAB_TEST_PG_ADMIN_DSN (./lab test sets it). Without it the test fails loudly,
// never skips.
//
//   class MyTest : public ttfb::testing::ThrowawayDatabaseTest {};
//   TEST_F(MyTest, Works) { ttfb::insert_experiment(*db_, ...); }
#pragma once

#include "server/store/db.hpp"

#include <gtest/gtest.h>
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

class ThrowawayDatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    name_ = "ttfb_pgtest_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
    pqxx::connection admin(admin_dsn());
    pqxx::nontransaction nt(admin);
    nt.exec("DROP DATABASE IF EXISTS " + name_);
    nt.exec("CREATE DATABASE " + name_);
    std::string dsn = admin_dsn();
    auto pos = dsn.find("dbname=");
    dsn = (pos == std::string::npos ? dsn + " " : dsn.substr(0, pos)) + "dbname=" + name_;
    db_ = std::make_unique<Database>(dsn, 4);
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
