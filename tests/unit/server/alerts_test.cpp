// Unit tests of the alerts part (server/alerts/): the backoff schedule, how HTTP answers are
// judged, the webhook JSON and the e-mail message byte for byte, header encoding, and the
// [alerts], [bisect] and [repos.X.alerts] configuration keys with their validation.
#include "server/alerts/channels.hpp"
#include "server/alerts/dispatcher.hpp"
#include "server/alerts/message.hpp"
#include "server/alerts/outbox.hpp"
#include "server/config.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace ttfb::alerts {
namespace {
namespace fs = std::filesystem;
namespace json = boost::json;

// 2024-01-02T03:04:05Z, a Tuesday.
constexpr std::time_t kTuesday = 1704164645;

OutboxAlert sample_alert() {
  OutboxAlert a;
  a.id = 42;
  a.kind = "presubmit_regression";
  a.repo = "example";
  a.change = "experiment:12";
  a.workflow = "example-train";
  a.channel = "email";
  a.target = "ada@example.com";
  a.recipient_name = "Ada Lovelace";
  a.recipient_email = "ada@example.com";
  a.title = "example-train: time to first batch +38% (eager-import)";
  a.text = "*example-train* got slower: +38% [+30%, +46%]\nphase: import";
  a.url = "http://127.0.0.1:8080/#/experiments/12";
  a.fields = json::object{{"effect_pct", 38.0}, {"phase", "import"}};
  a.attempts = 1;
  a.max_attempts = 8;
  return a;
}

TEST(AlertsBackoff, DoublesFromTheInitialWaitUpToTheCap) {
  AlertsConfig c;  // 2 s, doubling, capped at 300 s
  EXPECT_DOUBLE_EQ(backoff_seconds(c, 1), 2.0);
  EXPECT_DOUBLE_EQ(backoff_seconds(c, 2), 4.0);
  EXPECT_DOUBLE_EQ(backoff_seconds(c, 3), 8.0);
  EXPECT_DOUBLE_EQ(backoff_seconds(c, 8), 256.0);
  EXPECT_DOUBLE_EQ(backoff_seconds(c, 9), 300.0) << "512 is capped";
  EXPECT_DOUBLE_EQ(backoff_seconds(c, 1000), 300.0) << "no overflow for absurd attempt counts";
  EXPECT_DOUBLE_EQ(backoff_seconds(c, 0), 2.0) << "attempts below 1 are treated as the first";
  c.backoff_initial_seconds = 0.05;
  c.backoff_max_seconds = 0.1;
  EXPECT_DOUBLE_EQ(backoff_seconds(c, 1), 0.05);
  EXPECT_DOUBLE_EQ(backoff_seconds(c, 2), 0.1);
  EXPECT_DOUBLE_EQ(backoff_seconds(c, 3), 0.1);
}

TEST(AlertsChannels, HttpStatusDecidesDeliveredRetryOrFailed) {
  EXPECT_EQ(classify_http_status(200), Delivery::delivered);
  EXPECT_EQ(classify_http_status(204), Delivery::delivered);
  EXPECT_EQ(classify_http_status(429), Delivery::retry) << "rate limited: later";
  EXPECT_EQ(classify_http_status(500), Delivery::retry);
  EXPECT_EQ(classify_http_status(503), Delivery::retry);
  EXPECT_EQ(classify_http_status(400), Delivery::failed) << "a bad request will not get better";
  EXPECT_EQ(classify_http_status(404), Delivery::failed);
  EXPECT_EQ(classify_http_status(301), Delivery::failed) << "redirects are not followed";
  EXPECT_STREQ(to_string(Delivery::retry), "retry");
}

TEST(AlertsOutbox, WebhookUrlsAreShownWithoutTheirSecretPath) {
  EXPECT_EQ(redact_url("https://hooks.slack.com/services/T000/B000/XXXX"), "https://hooks.slack.com/...");
  EXPECT_EQ(redact_url("http://127.0.0.1:9000/hook?token=s3cret"), "http://127.0.0.1:9000/...");
  EXPECT_EQ(redact_url("https://user:pw@example.com/x"), "https://example.com/...") << "userinfo dropped";
  EXPECT_EQ(redact_url("http://127.0.0.1:9000/"), "http://127.0.0.1:9000");
  EXPECT_EQ(redact_url("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
  EXPECT_EQ(redact_url("not a url"), "...");
}

TEST(AlertsMessage, WebhookPayloadHasTextFirstAndEveryField) {
  OutboxAlert a = sample_alert();
  EXPECT_EQ(json::serialize(webhook_payload(a)),
            R"j({"text":"*example-train* got slower: +38% [+30%, +46%]\nphase: import","id":42,)j"
            R"j("kind":"presubmit_regression","repo":"example","workflow":"example-train","change":"experiment:12",)j"
            R"j("title":"example-train: time to first batch +38% (eager-import)",)j"
            R"j("url":"http://127.0.0.1:8080/#/experiments/12",)j"
            R"j("recipient":{"name":"Ada Lovelace","email":"ada@example.com"},)j"
            R"j("fields":{"effect_pct":3.8E1,"phase":"import"}})j");
}

TEST(AlertsMessage, WordsFromChangeAuthorsCannotPingOrLinkInSlack) {
  OutboxAlert a = sample_alert();
  a.text = "culprit: <!channel> <https://evil.example|the docs> by Eve & co <eve@example.com>";
  const auto payload = webhook_payload(a);
  EXPECT_EQ(payload.at("text").as_string(),
            "culprit: &lt;!channel&gt; &lt;https://evil.example|the docs&gt; by Eve &amp; co &lt;eve@example.com&gt;");
  EXPECT_EQ(slack_escape("no specials: +38% [+30%, +46%]"), "no specials: +38% [+30%, +46%]");
}

TEST(AlertsMessage, EmailIsAPlainRfc5322MessageWithCrlfLines) {
  OutboxAlert a = sample_alert();
  RepoAlerts r;
  r.email_from = "ttfb-lab@lab.example";
  r.email_cc = {"perf@lab.example", "ada@example.com"};
  EXPECT_EQ(email_message(a, r, kTuesday),
            "From: ttfb-lab <ttfb-lab@lab.example>\r\n"
            "To: \"Ada Lovelace\" <ada@example.com>\r\n"
            "Cc: <perf@lab.example>\r\n"
            "Subject: example-train: time to first batch +38% (eager-import)\r\n"
            "Date: Tue, 02 Jan 2024 03:04:05 +0000\r\n"
            "Message-ID: <ttfb-lab-alert-42@lab.example>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n"
            "\r\n"
            "*example-train* got slower: +38% [+30%, +46%]\r\n"
            "phase: import\r\n"
            "\r\n"
            "http://127.0.0.1:8080/#/experiments/12\r\n");
  EXPECT_EQ(email_recipients(a, r), (std::vector<std::string>{"ada@example.com", "perf@lab.example"}))
      << "the recipient once, then the cc list";
}

TEST(AlertsMessage, HeaderValuesCannotAddHeaders) {
  OutboxAlert a = sample_alert();
  a.title = "evil\r\nBcc: everyone@example.com";
  a.recipient_name = "";
  std::string m = email_message(a, RepoAlerts{}, kTuesday);
  EXPECT_NE(m.find("Subject: evil  Bcc: everyone@example.com\r\n"), std::string::npos) << m;
  EXPECT_EQ(m.find("\r\nBcc:"), std::string::npos) << m;
  EXPECT_NE(m.find("To: <ada@example.com>\r\n"), std::string::npos) << "no name: the bare address";
  EXPECT_EQ(m.find("Cc:"), std::string::npos) << "no email_cc: no Cc header";
}

TEST(AlertsMessage, NonAsciiHeadersAreEncodedWordsThatNeverSplitACharacter) {
  EXPECT_EQ(encode_header_value("plain ascii"), "plain ascii");
  EXPECT_EQ(encode_header_value("é"), "=?UTF-8?B?w6k=?=");
  EXPECT_EQ(encode_header_value("Zoë"), "=?UTF-8?B?Wm/Dqw==?=");
  // 30 two-byte characters: 60 bytes, more than one word holds.
  std::string long_value;
  for (int i = 0; i < 30; ++i) long_value += "é";
  std::string encoded = encode_header_value(long_value);
  EXPECT_EQ(encoded, "=?UTF-8?B?w6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6k=?=\r\n"
                     " =?UTF-8?B?w6nDqcOpw6nDqcOpw6nDqQ==?=")
      << "44 bytes (22 characters) in the first word, not 45: the 45th byte is half a character";
  OutboxAlert a = sample_alert();
  a.title = "example-train: +38% (eager-import …)";
  a.recipient_name = "Zoë";
  std::string m = email_message(a, RepoAlerts{}, kTuesday);
  EXPECT_NE(m.find("Subject: =?UTF-8?B?"), std::string::npos) << m;
  EXPECT_NE(m.find("To: =?UTF-8?B?Wm/Dqw==?= <ada@example.com>\r\n"), std::string::npos) << m;
  EXPECT_NE(m.find("Message-ID: <ttfb-lab-alert-42@localhost>"), std::string::npos) << "the default email_from";
}

TEST(AlertsMessage, DatesAreRfc5322InUtc) {
  EXPECT_EQ(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
  EXPECT_EQ(rfc5322_date(kTuesday), "Tue, 02 Jan 2024 03:04:05 +0000");
}

// ---- configuration -------------------------------------------------------------------------

// A server.toml in a fresh directory (with an empty workflows dir), removed afterwards.
class AlertsConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ttfb-alerts-config-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "workflows");
  }
  void TearDown() override { fs::remove_all(dir_); }

  ServerConfig load(const std::string& extra) {
    std::ofstream(dir_ / "server.toml") << "[database]\ndsn = \"dbname=x\"\n[git]\ncache_dir = \"/tmp/x\"\n"
                                        << "[repos.example]\nurl = \"/srv/git/example.git\"\n"
                                        << extra;
    return load_server_config((dir_ / "server.toml").string());
  }

  void expect_error(const std::string& extra, const std::string& text) {
    try {
      load(extra);
      ADD_FAILURE() << "expected a ConfigError containing '" << text << "' for:\n" << extra;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  }

  fs::path dir_;
};

TEST_F(AlertsConfigTest, DefaultsWhenNothingIsSaid) {
  ServerConfig c = load("");
  EXPECT_TRUE(c.alerts.enabled);
  EXPECT_EQ(c.alerts.max_attempts, 8);
  EXPECT_DOUBLE_EQ(c.alerts.backoff_initial_seconds, 2.0);
  EXPECT_DOUBLE_EQ(c.alerts.backoff_max_seconds, 300.0);
  EXPECT_EQ(c.alerts.poll_ms, 500);
  EXPECT_EQ(c.bisect.max_parallel_probes, 4);
  EXPECT_EQ(c.bisect.max_runs_per_commit, 40);
  const RepoAlerts& r = c.repos.at("example").alerts;
  EXPECT_EQ(r.webhook_url, "");
  EXPECT_EQ(r.webhook_timeout_seconds, 10);
  EXPECT_EQ(r.smtp_url, "");
  EXPECT_EQ(r.smtp_timeout_seconds, 30);
  EXPECT_EQ(r.email_from, "ttfb-lab@localhost");
  EXPECT_TRUE(r.email_cc.empty());
}

TEST_F(AlertsConfigTest, ReadsEveryKey) {
  setenv("TTFB_TEST_SMTP_PASSWORD", "hunter2", 1);
  ServerConfig c = load(R"(
[repos.example.alerts]
webhook_url = "https://hooks.example.com/T/B/X"
webhook_timeout_seconds = 5
smtp_url = "smtp://127.0.0.1:2525"
smtp_username = "lab"
smtp_password = "${TTFB_TEST_SMTP_PASSWORD}"
smtp_timeout_seconds = 7
email_from = "ttfb@lab.example"
email_cc = ["perf@lab.example", "release@lab.example"]
[alerts]
enabled = false
max_attempts = 3
backoff_initial_seconds = 0.5
backoff_max_seconds = 60
poll_ms = 100
[bisect]
max_parallel_probes = 8
max_runs_per_commit = 20
)");
  const RepoAlerts& r = c.repos.at("example").alerts;
  EXPECT_EQ(r.webhook_url, "https://hooks.example.com/T/B/X");
  EXPECT_EQ(r.webhook_timeout_seconds, 5);
  EXPECT_EQ(r.smtp_url, "smtp://127.0.0.1:2525");
  EXPECT_EQ(r.smtp_username, "lab");
  EXPECT_EQ(r.smtp_password, "hunter2") << "${VAR} expanded";
  EXPECT_EQ(r.smtp_timeout_seconds, 7);
  EXPECT_EQ(r.email_from, "ttfb@lab.example");
  EXPECT_EQ(r.email_cc, (std::vector<std::string>{"perf@lab.example", "release@lab.example"}));
  EXPECT_FALSE(c.alerts.enabled);
  EXPECT_EQ(c.alerts.max_attempts, 3);
  EXPECT_DOUBLE_EQ(c.alerts.backoff_initial_seconds, 0.5);
  EXPECT_DOUBLE_EQ(c.alerts.backoff_max_seconds, 60.0) << "an integer is read as seconds too";
  EXPECT_EQ(c.alerts.poll_ms, 100);
  EXPECT_EQ(c.bisect.max_parallel_probes, 8);
  EXPECT_EQ(c.bisect.max_runs_per_commit, 20);
}

TEST_F(AlertsConfigTest, AnEmptyWebhookUrlAfterExpansionMeansNoWebhook) {
  setenv("TTFB_TEST_WEBHOOK", "", 1);
  ServerConfig c = load("[repos.example.alerts]\nwebhook_url = \"${TTFB_TEST_WEBHOOK}\"\n");
  EXPECT_EQ(c.repos.at("example").alerts.webhook_url, "");
}

TEST_F(AlertsConfigTest, BadValuesSayWhatIsWrong) {
  expect_error("[repos.example.alerts]\nwebhook_url = \"ftp://x\"\n", "webhook_url must start with http:// or https://");
  expect_error("[repos.example.alerts]\nsmtp_url = \"http://x\"\n", "smtp_url must start with smtp:// or smtps://");
  expect_error("[repos.example.alerts]\nwebhook_timeout_seconds = 0\n", "webhook_timeout_seconds must be at least 1");
  expect_error("[repos.example.alerts]\nemail_from = \"nobody\"\n", "email_from must be a plain address");
  expect_error("[repos.example.alerts]\nemail_cc = [\"a@b\\r\\nBcc: c@d\"]\n", "email_cc must hold plain addresses");
  expect_error("[repos.example.alerts]\nemail_cc = \"a@b\"\n", "email_cc must be an array");
  expect_error("[alerts]\nmax_attempts = 0\n", "max_attempts must be at least 1");
  expect_error("[alerts]\nbackoff_initial_seconds = 0\n", "backoff_initial_seconds must be positive");
  expect_error("[alerts]\nbackoff_initial_seconds = 10\nbackoff_max_seconds = 5\n",
               "backoff_max_seconds must be at least alerts.backoff_initial_seconds");
  expect_error("[alerts]\npoll_ms = 0\n", "poll_ms must be at least 10");
  expect_error("[alerts]\nenabled = \"yes\"\n", "enabled must be true or false");
  expect_error("[bisect]\nmax_parallel_probes = 0\n", "max_parallel_probes must be at least 1");
  expect_error("[bisect]\nmax_parallel_probes = 65\n", "max_parallel_probes must be at most 64");
  expect_error("[bisect]\nmax_runs_per_commit = 1\n", "max_runs_per_commit must be at least 2");
  expect_error("[bisect]\nsandwich_alpha = 0.5\n", "bisect.sandwich_alpha must be below 0.5");
  expect_error("[bisect]\nsandwich_alpha = 0\n", "sandwich_alpha must be at least");
  // The key of the search before every part was decided: refused, saying what replaced it.
  expect_error("[bisect]\nexplained_fraction = 0.8\n", "explained_fraction no longer exists: a bisection now decides every part");
}

TEST(AlertsConfig, PlainEmailAddresses) {
  EXPECT_TRUE(is_plain_email_address("ada@example.com"));
  EXPECT_FALSE(is_plain_email_address("ada"));
  EXPECT_FALSE(is_plain_email_address("@example.com"));
  EXPECT_FALSE(is_plain_email_address("ada@"));
  EXPECT_FALSE(is_plain_email_address("a@b@c"));
  EXPECT_FALSE(is_plain_email_address("Ada <ada@example.com>"));
  EXPECT_FALSE(is_plain_email_address("ada@example.com\r\nBcc: x@y"));
}

}  // namespace
}  // namespace ttfb::alerts
