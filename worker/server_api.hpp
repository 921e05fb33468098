// The worker's calls to the server (docs/worker-protocol.md), behind an interface so the worker
// loop can be tested against a fake. HttpServerApi is the real one: HttpClient plus the retry
// rule of the protocol — transport errors, 5xx, 408 and 429 are retried with exponential backoff
// for up to a few minutes (the server may be restarting, its database away); 409 means the lease
// is lost; any other 4xx is final.
//
//   HttpServerApi api(url, token, "w1", RetryPolicy{}, &stop);
//   ClaimResult c = api.claim(host_facts);
//   if (c.job) { ...; api.post_samples(c.job->id, {sample}); api.complete(c.job->id); }
#pragma once

#include <map>
#include <mutex>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/http_client.hpp"
#include "worker/protocol.hpp"
#include "worker/stop_flag.hpp"

namespace ttfb::worker {

enum class CallStatus {
  ok,           // 2xx
  no_job,       // claim: 204
  lease_lost,   // 409: the job is no longer ours
  rejected,     // another 4xx (401/403 included): retrying will not help
  unreachable,  // transport errors / 5xx until the retry budget was spent
  gave_up,      // stopped retrying because the worker is stopping
};
std::string_view to_string(CallStatus status);

struct CallResult {
  CallStatus status = CallStatus::ok;
  int http_status = 0;  // 0 when the server was not reached
  std::string message;  // the error's code and message, or the transport error
  std::string body;     // of the last answer
  bool ok() const { return status == CallStatus::ok; }
};

struct ClaimResult {
  CallResult call;
  std::optional<Job> job;  // call ok and a usable job
  // call ok but the job could not be read: what was wrong, and its id when known.
  std::string bad_job;
  std::optional<std::int64_t> bad_job_id;
};

class ServerApi {
 public:
  virtual ~ServerApi() = default;
  // One attempt: the caller's loop polls again anyway.
  virtual ClaimResult claim(const HostFacts& host) = 0;
  // One attempt; on success lease_seconds carries the server's answer (0 when absent).
  virtual CallResult heartbeat(std::int64_t job_id, int done, int total, int& lease_seconds) = 0;
  // With retries.
  virtual CallResult post_samples(std::int64_t job_id, const std::vector<Sample>& samples) = 0;
  virtual CallResult complete(std::int64_t job_id) = 0;
  virtual CallResult fail(std::int64_t job_id, const JobFailure& failure) = 0;
};

struct RetryPolicy {
  std::chrono::milliseconds budget{std::chrono::minutes(3)};  // total time spent retrying one call
  std::chrono::milliseconds initial_delay{500};
  std::chrono::milliseconds max_delay{std::chrono::seconds(15)};
};

// Runs `attempt` until it gets a final answer, the budget is spent, or `give_up` says so (checked
// between attempts and while waiting). A TransportError thrown by `attempt` counts as
// "unreachable, retry". Exposed for tests.
CallResult call_with_retries(const std::function<HttpResponse()>& attempt, const RetryPolicy& policy,
                             const std::function<bool()>& give_up = {});

// The status a single answer gets (2xx ok, 204 no_job, 409 lease_lost, 5xx/408/429 unreachable,
// other 4xx rejected).
CallStatus classify_status(int http_status);

class HttpServerApi : public ServerApi {
 public:
  // `stop` (may be null): retries of samples/complete give up when it is raised; a failure sent
  // while shutting down gets a short budget.
  HttpServerApi(std::string base_url, std::string token, std::string worker_name, RetryPolicy policy,
                const StopFlag* stop);

  ClaimResult claim(const HostFacts& host) override;
  CallResult heartbeat(std::int64_t job_id, int done, int total, int& lease_seconds) override;
  CallResult post_samples(std::int64_t job_id, const std::vector<Sample>& samples) override;
  CallResult complete(std::int64_t job_id) override;
  CallResult fail(std::int64_t job_id, const JobFailure& failure) override;

 private:
  std::string job_path(std::int64_t job_id, const char* what) const;

  HttpClient client_;
  HttpClient heartbeat_client_;  // shorter timeout: a heartbeat must not outlive a lease third
  // The lease each claimed job came with (heartbeats run on another thread).
  JobLease lease_of(std::int64_t job_id) const;
  std::string worker_name_;
  RetryPolicy policy_;
  const StopFlag* stop_;
  mutable std::mutex leases_mu_;
  std::map<std::int64_t, JobLease> leases_;
};

}  // namespace ttfb::worker
