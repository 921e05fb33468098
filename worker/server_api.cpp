#include "worker/server_api.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

namespace ttfb::worker {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A failure reported while shutting down waits this long at most: the job's lease runs out
// anyway, and a stopping worker should stop.
constexpr auto kShutdownFailBudget = 10s;

CallResult result_of(const HttpResponse& r) {
  CallResult c;
  c.http_status = r.status;
  c.status = classify_status(r.status);
  c.body = r.body;
  if (c.status != CallStatus::ok && c.status != CallStatus::no_job) {
    c.message = "HTTP " + std::to_string(r.status) + ": " + describe_error_body(r.body);
  }
  return c;
}

}  // namespace

std::string_view to_string(CallStatus status) {
  switch (status) {
    case CallStatus::ok: return "ok";
    case CallStatus::no_job: return "no_job";
    case CallStatus::lease_lost: return "lease_lost";
    case CallStatus::rejected: return "rejected";
    case CallStatus::unreachable: return "unreachable";
    case CallStatus::gave_up: return "gave_up";
  }
  return "unknown";
}

CallStatus classify_status(int s) {
  if (s == 204) return CallStatus::no_job;
  if (s >= 200 && s < 300) return CallStatus::ok;
  if (s == 409) return CallStatus::lease_lost;
  if (s >= 500 || s == 408 || s == 429) return CallStatus::unreachable;
  return CallStatus::rejected;
}

CallResult call_with_retries(const std::function<HttpResponse()>& attempt, const RetryPolicy& policy,
                             const std::function<bool()>& give_up) {
  const auto deadline = Clock::now() + policy.budget;
  auto delay = policy.initial_delay;
  for (int n = 1;; ++n) {
    CallResult c;
    try {
      c = result_of(attempt());
    } catch (const TransportError& e) {
      c.status = CallStatus::unreachable;
      c.message = e.what();
    }
    if (c.status != CallStatus::unreachable) return c;
    if (Clock::now() + delay > deadline) {
      c.message = "gave up after " + std::to_string(n) + " attempts: " + c.message;
      return c;
    }
    spdlog::warn("server unreachable ({}); attempt {} failed, retrying in {} ms", c.message, n, delay.count());
    const auto wake = Clock::now() + delay;
    while (Clock::now() < wake) {
      if (give_up && give_up()) {
        c.status = CallStatus::gave_up;
        return c;
      }
      std::this_thread::sleep_for(std::min<Clock::duration>(100ms, wake - Clock::now()));
    }
    if (give_up && give_up()) {
      c.status = CallStatus::gave_up;
      return c;
    }
    delay = std::min(delay * 2, policy.max_delay);
  }
}

HttpServerApi::HttpServerApi(std::string base_url, std::string token, std::string worker_name, RetryPolicy policy,
                             const StopFlag* stop)
    : client_(base_url, token, std::chrono::seconds(30)),
      heartbeat_client_(base_url, token, std::chrono::seconds(10)),
      worker_name_(std::move(worker_name)),
      policy_(policy),
      stop_(stop) {}

std::string HttpServerApi::job_path(std::int64_t job_id, const char* what) const {
  return "/api/v1/worker/jobs/" + std::to_string(job_id) + "/" + what;
}

ClaimResult HttpServerApi::claim(const HostFacts& host) {
  ClaimResult out;
  try {
    out.call = result_of(client_.post("/api/v1/worker/claim", claim_body(host)));
  } catch (const TransportError& e) {
    out.call.status = CallStatus::unreachable;
    out.call.message = e.what();
    return out;
  }
  if (out.call.ok()) {
    try {
      out.job = parse_job(out.call.body);
      std::lock_guard lock(leases_mu_);
      leases_.clear();  // one job at a time: an older lease is over
      leases_[out.job->id] = JobLease{out.job->lease_id, out.job->attempt};
    } catch (const JobParseError& e) {
      out.bad_job = e.what();
      out.bad_job_id = e.job_id();
      // So that the job can still be failed (with its lease) instead of waiting for the lease to expire.
      if (auto lease = lease_in_claim(out.call.body); lease && e.job_id()) {
        std::lock_guard lock(leases_mu_);
        leases_.clear();
        leases_[*e.job_id()] = *lease;
      }
    }
  }
  return out;
}

JobLease HttpServerApi::lease_of(std::int64_t job_id) const {
  std::lock_guard lock(leases_mu_);
  auto it = leases_.find(job_id);
  return it == leases_.end() ? JobLease{"", 0} : it->second;  // unknown: the server answers 400/409
}

CallResult HttpServerApi::heartbeat(std::int64_t job_id, int done, int total, int& lease_seconds) {
  CallResult c;
  try {
    c = result_of(heartbeat_client_.post(job_path(job_id, "heartbeat"),
                                         heartbeat_body(worker_name_, lease_of(job_id), done, total)));
  } catch (const TransportError& e) {
    c.status = CallStatus::unreachable;
    c.message = e.what();
    return c;
  }
  lease_seconds = 0;
  if (c.ok()) lease_seconds = parse_lease_seconds(c.body).value_or(0);
  return c;
}

CallResult HttpServerApi::post_samples(std::int64_t job_id, const std::vector<Sample>& samples) {
  const std::string body = samples_body(worker_name_, lease_of(job_id), samples);
  return call_with_retries([&] { return client_.post(job_path(job_id, "samples"), body); }, policy_,
                           [this] { return stop_ != nullptr && stop_->raised(); });
}

CallResult HttpServerApi::complete(std::int64_t job_id) {
  const std::string body = complete_body(worker_name_, lease_of(job_id));
  return call_with_retries([&] { return client_.post(job_path(job_id, "complete"), body); }, policy_,
                           [this] { return stop_ != nullptr && stop_->raised(); });
}

CallResult HttpServerApi::fail(std::int64_t job_id, const JobFailure& failure) {
  const std::string body = fail_body(worker_name_, lease_of(job_id), failure);
  RetryPolicy policy = policy_;
  if (stop_ != nullptr && stop_->shutdown()) {
    policy.budget = std::min<std::chrono::milliseconds>(policy.budget, kShutdownFailBudget);
  }
  return call_with_retries([&] { return client_.post(job_path(job_id, "fail"), body); }, policy);
}

}  // namespace ttfb::worker
