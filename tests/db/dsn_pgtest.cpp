// The per-test DSN that throwaway_db.hpp derives from TTFB_LAB_TEST_PG_ADMIN_DSN keeps every
// setting but the database: the lab's cluster asks for a password, which comes from the
// passfile the admin DSN names, so losing it (e.g. by cutting the DSN at "dbname=") would fail
// every database test. And a derived DSN does connect.
#include "throwaway_db.hpp"

#include <map>

namespace {

std::map<std::string, std::string> parse(const std::string& dsn) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  if (!options) {
    std::string why = error ? error : "?";
    PQfreemem(error);
    ADD_FAILURE() << "cannot parse " << dsn << ": " << why;
    return {};
  }
  std::map<std::string, std::string> out;
  for (const PQconninfoOption* o = options; o->keyword; ++o) {
    if (o->val) out[o->keyword] = o->val;
  }
  PQconninfoFree(options);
  return out;
}

using ttfb::testing::with_dbname;

TEST(ThrowawayDsn, KeepsEverySettingButTheDatabase) {
  auto got = parse(with_dbname("host=/srv/lab/pg/run port=54329 user=postgres passfile=/srv/lab/pgpass dbname=postgres", "t1"));
  EXPECT_EQ(got["host"], "/srv/lab/pg/run");
  EXPECT_EQ(got["port"], "54329");
  EXPECT_EQ(got["user"], "postgres");
  EXPECT_EQ(got["passfile"], "/srv/lab/pgpass");
  EXPECT_EQ(got["dbname"], "t1");
}

TEST(ThrowawayDsn, DatabaseFirstQuotedPathsAndUris) {
  auto got = parse(with_dbname("dbname=postgres passfile='/a b/it\\'s' host=/x", "t2"));
  EXPECT_EQ(got["passfile"], "/a b/it's");
  EXPECT_EQ(got["host"], "/x");
  EXPECT_EQ(got["dbname"], "t2");
  got = parse(with_dbname("postgresql:///postgres?host=/x&passfile=/p%20q", "t3"));
  EXPECT_EQ(got["host"], "/x");
  EXPECT_EQ(got["passfile"], "/p q");
  EXPECT_EQ(got["dbname"], "t3");
  got = parse(with_dbname("host=/x", "t4"));
  EXPECT_EQ(got["dbname"], "t4");
}

TEST(ThrowawayDsn, AnUnreadableDsnIsAnError) {
  EXPECT_THROW(with_dbname("host='/x", "t"), std::runtime_error);
}

class ThrowawayConnects : public ttfb::testing::ThrowawayDatabaseTest {};

TEST_F(ThrowawayConnects, TheDerivedDsnReachesItsOwnDatabase) {
  pqxx::connection c(with_dbname(ttfb::testing::admin_dsn(), name_));
  pqxx::nontransaction nt(c);
  EXPECT_EQ(nt.exec("SELECT current_database()")[0][0].as<std::string>(), name_);
}

}  // namespace
