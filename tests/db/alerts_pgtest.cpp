// Database tests of the alert outbox and its dispatcher against a real PostgreSQL and the real
// alert sink (scripts/alert_sink.py, run as a child process): dedup on enqueue, which
// channels get a row, the API listing, delivery by webhook and e-mail, retries with backoff,
// refusal without retry, the at-most-once rule for a delivery cut short by a dead server, and a
// stop() that lets the delivery in flight finish.
#include "common/errors.hpp"
#include "server/alerts/dispatcher.hpp"
#include "server/alerts/outbox.hpp"
#include "server/metrics.hpp"
#include "throwaway_db.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

namespace ttfb::alerts {
namespace {
namespace json = boost::json;
using namespace std::chrono_literals;

const std::string kSinkScript = TTFB_LAB_SCHEMA_DIR "/../scripts/alert_sink.py";

// The alert sink as a child process: started with the given options, SIGTERMed and reaped
// when the test ends. records() reads what it received so far.
class AlertSink {
 public:
  explicit AlertSink(const std::vector<std::string>& options = {}) {
    static std::atomic<int> counter{0};
    out_ = std::filesystem::temp_directory_path() /
           ("ttfb-alert-sink-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + ".jsonl");
    std::filesystem::remove(out_);
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
    std::vector<std::string> args{"python3", kSinkScript, "--out", out_.string()};
    args.insert(args.end(), options.begin(), options.end());
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp("python3", argv.data());
      _exit(127);
    }
    close(fds[1]);
    FILE* in = fdopen(fds[0], "r");
    char line[256] = {0};
    bool ok = std::fgets(line, sizeof line, in) != nullptr;
    std::fclose(in);
    if (!ok) throw std::runtime_error("the alert sink did not start (" + kSinkScript + ")");
    json::object ports = json::parse(line).as_object();
    http_port = static_cast<int>(ports.at("http_port").as_int64());
    smtp_port = static_cast<int>(ports.at("smtp_port").as_int64());
  }
  ~AlertSink() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    std::filesystem::remove(out_);
  }
  AlertSink(const AlertSink&) = delete;
  AlertSink& operator=(const AlertSink&) = delete;

  std::string webhook_url() const { return "http://127.0.0.1:" + std::to_string(http_port) + "/hooks/secret-token"; }
  std::string smtp_url() const { return "smtp://127.0.0.1:" + std::to_string(smtp_port); }

  std::vector<json::object> records() const {
    std::vector<json::object> out;
    std::ifstream in(out_);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) out.push_back(json::parse(line).as_object());
    return out;
  }

  int http_port = 0;
  int smtp_port = 0;

 private:
  std::filesystem::path out_;
  pid_t pid_ = -1;
};

// A local port nothing listens on (bound, then closed): connections to it are refused.
int closed_port() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
  close(s);
  return ntohs(addr.sin_port);
}

class AlertsPgTest : public testing::ThrowawayDatabaseTest {
 protected:
  void SetUp() override {
    ThrowawayDatabaseTest::SetUp();
    RepoConfig repo;
    repo.name = "example";
    repo.url = "/srv/git/example.git";
    config_.repos["example"] = repo;
    RepoConfig quiet;  // no [alerts]: nobody is told
    quiet.name = "quiet";
    quiet.url = "/srv/git/quiet.git";
    config_.repos["quiet"] = quiet;
    // Tiny waits so retries happen within the test.
    config_.alerts.backoff_initial_seconds = 0.05;
    config_.alerts.backoff_max_seconds = 0.1;
    config_.alerts.poll_ms = 20;
  }

  RepoAlerts& channels() { return config_.repos.at("example").alerts; }

  static AlertEvent event(const std::string& change = "experiment:12", const std::string& kind = "presubmit_regression") {
    AlertEvent e;
    e.kind = kind;
    e.repo = "example";
    e.change = change;
    e.workflow = "example-train";
    e.recipient_name = "Ada Lovelace";
    e.recipient_email = "ada@example.com";
    e.title = "example-train: time to first batch +38% (eager-import)";
    e.text = "*example-train* got slower: +38% [+30%, +46%], phase import";
    e.url = "http://127.0.0.1:8080/#/experiments/12";
    e.fields = json::object{{"effect_pct", 38.0}, {"phase", "import"}};
    return e;
  }

  int enqueue(const AlertEvent& e) {
    return db_->transact([&](pqxx::work& tx) { return enqueue_alert(tx, config_, e); });
  }

  json::object only_alert() {
    auto page = list_alerts(*db_, {});
    EXPECT_EQ(page.at("count").as_int64(), 1) << json::serialize(page);
    return page.at("alerts").as_array().at(0).as_object();
  }

  // Runs passes of the dispatcher until the row leaves pending/sending or the time is up.
  std::string deliver_until_settled(AlertDispatcher& d, long id, std::chrono::milliseconds limit = 5s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    std::string status;
    while (std::chrono::steady_clock::now() < deadline) {
      d.deliver_due();
      status = status_of(id);
      if (status != "pending" && status != "sending") return status;
      std::this_thread::sleep_for(20ms);
    }
    return status;
  }

  std::string status_of(long id) {
    return db_->transact([&](pqxx::work& tx) {
      return tx.exec_params1("SELECT status FROM alerts WHERE id = $1", id)[0].as<std::string>();
    });
  }

  long single_id() {
    return db_->transact([](pqxx::work& tx) { return tx.exec1("SELECT max(id) FROM alerts")[0].as<long>(); });
  }

  ServerConfig config_;
  Metrics metrics_;
};

TEST_F(AlertsPgTest, EnqueueIsIdempotentPerChangeWorkflowChannelAndTarget) {
  channels().webhook_url = "http://127.0.0.1:9/hook";
  channels().smtp_url = "smtp://127.0.0.1:25";
  EXPECT_EQ(enqueue(event()), 2) << "a webhook row and an e-mail row";
  EXPECT_EQ(enqueue(event()), 0) << "the same verdict analysed again alerts nobody twice";
  EXPECT_EQ(list_alerts(*db_, {}).at("count").as_int64(), 2);
  AlertEvent other_workflow = event();
  other_workflow.workflow = "example-train-stdout";
  EXPECT_EQ(enqueue(other_workflow), 2) << "another workflow of the same change is another alert";
}

TEST_F(AlertsPgTest, ChannelsFollowTheRepositoryConfiguration) {
  EXPECT_EQ(enqueue(event("a")), 0) << "no channel configured";
  channels().webhook_url = "http://127.0.0.1:9/hook";
  EXPECT_EQ(enqueue(event("b")), 1) << "webhook only";
  channels().smtp_url = "smtp://127.0.0.1:25";
  AlertEvent no_address = event("c");
  no_address.recipient_email = "";
  EXPECT_EQ(enqueue(no_address), 1) << "no recipient address: no e-mail";
  AlertEvent bad_address = event("d");
  bad_address.recipient_email = "ada@example.com\r\nBcc: all@example.com";
  EXPECT_EQ(enqueue(bad_address), 1) << "an address that could inject headers is skipped, not thrown";
  AlertEvent quiet = event("e");
  quiet.repo = "quiet";
  EXPECT_EQ(enqueue(quiet), 0);
  AlertEvent unknown_repo = event("f");
  unknown_repo.repo = "nope";
  EXPECT_EQ(enqueue(unknown_repo), 0);
  config_.alerts.enabled = false;
  EXPECT_EQ(enqueue(event("g")), 0) << "[alerts] enabled = false";
  config_.alerts.enabled = true;
  try {
    enqueue(event("h", "gossip"));
    FAIL() << "expected ApiError for an unknown kind";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
  }
}

TEST_F(AlertsPgTest, EnqueueCommitsOrRollsBackWithTheCallersTransaction) {
  channels().webhook_url = "http://127.0.0.1:9/hook";
  EXPECT_THROW(db_->transact([&](pqxx::work& tx) {
    enqueue_alert(tx, config_, event());
    throw std::runtime_error("the verdict failed to store");
  }),
               std::exception);
  EXPECT_EQ(list_alerts(*db_, {}).at("count").as_int64(), 0);
}

TEST_F(AlertsPgTest, ListFiltersByStatusRepoAndKindNewestFirst) {
  channels().webhook_url = "https://hooks.example.com/services/T/B/SECRET";
  channels().smtp_url = "smtp://127.0.0.1:25";
  enqueue(event("experiment:1"));
  enqueue(event("commit:abc", "culprit"));
  enqueue(event("release:v1.1", "release_blocked"));
  db_->transact([](pqxx::work& tx) { tx.exec("UPDATE alerts SET status = 'failed', last_error = 'HTTP 400' WHERE id = 1"); });

  auto all = list_alerts(*db_, {});
  EXPECT_EQ(all.at("count").as_int64(), 6);
  const auto& newest = all.at("alerts").as_array().at(0).as_object();
  EXPECT_EQ(newest.at("id").as_int64(), 6);
  EXPECT_EQ(newest.at("kind").as_string(), "release_blocked");
  EXPECT_EQ(newest.at("change").as_string(), "release:v1.1");
  EXPECT_EQ(newest.at("channel").as_string(), "email");
  EXPECT_EQ(newest.at("target").as_string(), "ada@example.com");
  EXPECT_EQ(newest.at("recipient").as_object().at("name").as_string(), "Ada Lovelace");
  EXPECT_EQ(newest.at("recipient").as_object().at("email").as_string(), "ada@example.com");
  EXPECT_EQ(newest.at("status").as_string(), "pending");
  EXPECT_EQ(newest.at("attempts").as_int64(), 0);
  EXPECT_EQ(newest.at("max_attempts").as_int64(), 8);
  EXPECT_TRUE(newest.at("last_error").is_null());
  EXPECT_TRUE(newest.at("next_attempt_at").is_string()) << "pending: when it is due";
  EXPECT_TRUE(newest.at("delivered_at").is_null());
  for (const char* key : {"workflow", "title", "url", "created_at", "repo"}) EXPECT_TRUE(newest.contains(key)) << key;

  auto failed = list_alerts(*db_, {.status = "failed"});
  ASSERT_EQ(failed.at("count").as_int64(), 1);
  const auto& f = failed.at("alerts").as_array().at(0).as_object();
  EXPECT_EQ(f.at("target").as_string(), "https://hooks.example.com/...") << "the secret path is not shown";
  EXPECT_EQ(f.at("last_error").as_string(), "HTTP 400");
  EXPECT_TRUE(f.at("next_attempt_at").is_null());

  EXPECT_EQ(list_alerts(*db_, {.kind = "culprit"}).at("count").as_int64(), 2);
  EXPECT_EQ(list_alerts(*db_, {.repo = "example", .kind = "culprit"}).at("count").as_int64(), 2);
  EXPECT_EQ(list_alerts(*db_, {.repo = "quiet"}).at("count").as_int64(), 0);
  EXPECT_EQ(list_alerts(*db_, {.limit = 4}).at("count").as_int64(), 4);
  EXPECT_THROW(list_alerts(*db_, {.status = "lost"}), ApiError);
  EXPECT_THROW(list_alerts(*db_, {.kind = "gossip"}), ApiError);
  EXPECT_THROW(list_alerts(*db_, {.limit = 0}), ApiError);
  EXPECT_THROW(list_alerts(*db_, {.limit = 1001}), ApiError);
}

TEST_F(AlertsPgTest, DeliversByWebhookAndEmailOnce) {
  AlertSink sink;
  channels().webhook_url = sink.webhook_url();
  channels().smtp_url = sink.smtp_url();
  channels().smtp_username = "lab";
  channels().smtp_password = "pw";
  channels().email_from = "ttfb@lab.example";
  channels().email_cc = {"perf@lab.example"};
  ASSERT_EQ(enqueue(event()), 2);
  AlertDispatcher dispatcher(config_, *db_, metrics_);
  EXPECT_EQ(dispatcher.deliver_due(), 2);
  EXPECT_EQ(dispatcher.deliver_due(), 0) << "delivered alerts are not sent again";

  auto page = list_alerts(*db_, {.status = "delivered"});
  ASSERT_EQ(page.at("count").as_int64(), 2) << json::serialize(list_alerts(*db_, {}));
  for (const auto& a : page.at("alerts").as_array()) {
    EXPECT_EQ(a.at("attempts").as_int64(), 1);
    EXPECT_TRUE(a.at("delivered_at").is_string());
  }

  auto records = sink.records();
  ASSERT_EQ(records.size(), 2u);
  const json::object* webhook = nullptr;
  const json::object* email = nullptr;
  for (const auto& r : records) (r.at("channel").as_string() == "webhook" ? webhook : email) = &r;
  ASSERT_TRUE(webhook && email);
  EXPECT_EQ(webhook->at("path").as_string(), "/hooks/secret-token");
  const auto& headers = webhook->at("headers").as_object();
  EXPECT_EQ(headers.at("user-agent").as_string(), "ttfb-lab");
  EXPECT_EQ(headers.at("content-type").as_string(), "application/json");
  const auto& body = webhook->at("body").as_object();
  EXPECT_EQ(webhook->at("delivery").as_string(), std::to_string(body.at("id").as_int64())) << "X-TTFB-Lab-Delivery is the outbox id";
  EXPECT_EQ(body.at("text").as_string(), "*example-train* got slower: +38% [+30%, +46%], phase import");
  EXPECT_EQ(body.at("kind").as_string(), "presubmit_regression");
  EXPECT_EQ(body.at("change").as_string(), "experiment:12");
  EXPECT_EQ(body.at("workflow").as_string(), "example-train");
  EXPECT_EQ(body.at("recipient").as_object().at("email").as_string(), "ada@example.com");
  EXPECT_EQ(body.at("fields").as_object().at("phase").as_string(), "import");

  EXPECT_EQ(email->at("from").as_string(), "ttfb@lab.example");
  EXPECT_EQ(json::serialize(email->at("to")), R"(["ada@example.com","perf@lab.example"])");
  EXPECT_EQ(email->at("auth_user").as_string(), "lab");
  std::string data(email->at("data").as_string());
  EXPECT_NE(data.find("Subject: example-train: time to first batch +38% (eager-import)\r\n"), std::string::npos) << data;
  EXPECT_NE(data.find("To: \"Ada Lovelace\" <ada@example.com>\r\n"), std::string::npos) << data;
  EXPECT_NE(data.find("Cc: <perf@lab.example>\r\n"), std::string::npos) << data;
  EXPECT_NE(data.find("\r\n\r\nhttp://127.0.0.1:8080/#/experiments/12\r\n"), std::string::npos) << data;

  std::string text = metrics_.serialize();
  EXPECT_NE(text.find(R"(ttfb_alerts_total{channel="webhook",status="delivered"} 1)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(ttfb_alerts_total{channel="email",status="delivered"} 1)"), std::string::npos) << text;
}

TEST_F(AlertsPgTest, ServiceUnavailableIsRetriedWithBackoffUntilDelivered) {
  AlertSink sink({"--fail-first", "2"});
  channels().webhook_url = sink.webhook_url();
  ASSERT_EQ(enqueue(event()), 1);
  AlertDispatcher dispatcher(config_, *db_, metrics_);
  long id = single_id();
  EXPECT_EQ(deliver_until_settled(dispatcher, id), "delivered");
  auto a = only_alert();
  EXPECT_EQ(a.at("attempts").as_int64(), 3);
  EXPECT_TRUE(a.at("last_error").is_null()) << "cleared once delivered";
  auto records = sink.records();
  ASSERT_EQ(records.size(), 3u);
  EXPECT_TRUE(records[0].contains("rejected"));
  EXPECT_TRUE(records[1].contains("rejected"));
  EXPECT_FALSE(records[2].contains("rejected"));
  EXPECT_NE(metrics_.serialize().find(R"(ttfb_alerts_total{channel="webhook",status="retry"} 2)"), std::string::npos);
}

TEST_F(AlertsPgTest, ARetryWaitsForItsBackoff) {
  AlertSink sink({"--fail-first", "1"});
  channels().webhook_url = sink.webhook_url();
  config_.alerts.backoff_initial_seconds = 30;
  config_.alerts.backoff_max_seconds = 30;
  enqueue(event());
  AlertDispatcher dispatcher(config_, *db_, metrics_);
  EXPECT_EQ(dispatcher.deliver_due(), 1);
  EXPECT_EQ(dispatcher.deliver_due(), 0) << "not due for 30 s";
  auto a = only_alert();
  EXPECT_EQ(a.at("status").as_string(), "pending");
  EXPECT_EQ(a.at("last_error").as_string().subview().substr(0, 8), "HTTP 503");
  double wait = db_->transact([](pqxx::work& tx) {
    return tx.exec1("SELECT extract(epoch FROM next_attempt_at - now()) FROM alerts")[0].as<double>();
  });
  EXPECT_GT(wait, 25.0);
  EXPECT_LE(wait, 30.0);
}

TEST_F(AlertsPgTest, ABadRequestFailsAtOnce) {
  AlertSink sink({"--fail-first", "1000", "--fail-status", "400"});
  channels().webhook_url = sink.webhook_url();
  enqueue(event());
  AlertDispatcher dispatcher(config_, *db_, metrics_);
  EXPECT_EQ(dispatcher.deliver_due(), 1);
  auto a = only_alert();
  EXPECT_EQ(a.at("status").as_string(), "failed");
  EXPECT_EQ(a.at("attempts").as_int64(), 1);
  EXPECT_NE(std::string(a.at("last_error").as_string()).find("HTTP 400"), std::string::npos) << a.at("last_error");
  std::this_thread::sleep_for(150ms);
  EXPECT_EQ(dispatcher.deliver_due(), 0) << "failed is final";
  EXPECT_EQ(sink.records().size(), 1u);
}

TEST_F(AlertsPgTest, GivesUpAfterMaxAttempts) {
  channels().webhook_url = "http://127.0.0.1:" + std::to_string(closed_port()) + "/hook";
  config_.alerts.max_attempts = 2;
  enqueue(event());
  AlertDispatcher dispatcher(config_, *db_, metrics_);
  EXPECT_EQ(deliver_until_settled(dispatcher, single_id()), "failed");
  auto a = only_alert();
  EXPECT_EQ(a.at("attempts").as_int64(), 2);
  EXPECT_NE(std::string(a.at("last_error").as_string()).find("gave up after 2 attempts"), std::string::npos)
      << a.at("last_error");
}

TEST_F(AlertsPgTest, ADeliveryCutShortByADeadServerIsUnknownAndNeverResent) {
  AlertSink sink;
  channels().webhook_url = sink.webhook_url();
  enqueue(event("experiment:1"));
  enqueue(event("experiment:2"));
  // A server claimed both and died; one claim is old (past timeout + 30 s), one is recent.
  ASSERT_TRUE(claim_due_alert(*db_, config_));
  ASSERT_TRUE(claim_due_alert(*db_, config_));
  db_->transact([](pqxx::work& tx) { tx.exec("UPDATE alerts SET claimed_at = now() - interval '41 seconds' WHERE id = 1"); });
  db_->transact([](pqxx::work& tx) { tx.exec("UPDATE alerts SET claimed_at = now() - interval '39 seconds' WHERE id = 2"); });

  AlertDispatcher dispatcher(config_, *db_, metrics_);
  EXPECT_EQ(dispatcher.deliver_due(), 0);
  EXPECT_EQ(status_of(1), "unknown") << "10 s webhook timeout + 30 s grace have passed";
  EXPECT_EQ(status_of(2), "sending") << "still within its timeout + grace";
  auto unknown = list_alerts(*db_, {.status = "unknown"}).at("alerts").as_array().at(0).as_object();
  EXPECT_EQ(unknown.at("last_error").as_string(), kStaleSendingError);
  EXPECT_EQ(unknown.at("attempts").as_int64(), 1);
  EXPECT_EQ(dispatcher.deliver_due(), 0);
  EXPECT_TRUE(sink.records().empty()) << "an alert that may have been delivered is not sent again";
  EXPECT_NE(metrics_.serialize().find(R"(ttfb_alerts_total{channel="webhook",status="unknown"} 1)"), std::string::npos);
}

TEST_F(AlertsPgTest, ConcurrentDispatchersNeverClaimTheSameAlert) {
  channels().webhook_url = "http://127.0.0.1:9/hook";
  for (int i = 0; i < 30; ++i) enqueue(event("experiment:" + std::to_string(i)));
  std::mutex mu;
  std::vector<long> claimed;
  auto claimer = [&] {
    while (auto a = claim_due_alert(*db_, config_)) {
      std::lock_guard lock(mu);
      claimed.push_back(a->id);
    }
  };
  std::thread t1(claimer), t2(claimer);
  t1.join();
  t2.join();
  EXPECT_EQ(claimed.size(), 30u);
  EXPECT_EQ(std::set<long>(claimed.begin(), claimed.end()).size(), 30u);
}

TEST_F(AlertsPgTest, TheThreadDeliversAndStopLetsTheDeliveryInFlightFinish) {
  AlertSink sink({"--delay", "1"});
  channels().webhook_url = sink.webhook_url();
  AlertDispatcher dispatcher(config_, *db_, metrics_);
  dispatcher.start();
  enqueue(event());
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (sink.records().empty() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(sink.records().size(), 1u) << "the dispatcher's thread picked the alert up";
  EXPECT_EQ(status_of(single_id()), "sending") << "committed as sending before it was sent";
  auto before = std::chrono::steady_clock::now();
  dispatcher.stop();
  auto waited = std::chrono::steady_clock::now() - before;
  EXPECT_EQ(status_of(single_id()), "delivered") << "stop() waited for the answer and recorded it";
  EXPECT_GT(waited, 300ms);
  EXPECT_LT(waited, 3s);
}

}  // namespace
}  // namespace ttfb::alerts
