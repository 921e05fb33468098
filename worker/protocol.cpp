#include "worker/protocol.hpp"

#include "common/text.hpp"
#include "common/utf8.hpp"

#include <boost/json.hpp>
#include <set>

namespace ttfb::worker {
namespace {

namespace json = boost::json;

// Reading one job; every complaint names the field, as "job.workflow.timeout_seconds: ...".
class Reader {
 public:
  explicit Reader(std::optional<std::int64_t>& id) : id_(id) {}

  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw JobParseError("bad job from the server: " + path + ": " + what, id_);
  }

  const json::object& object(const json::value& v, const std::string& path) const {
    if (!v.is_object()) fail(path, "expected an object");
    return v.get_object();
  }
  const json::value* find(const json::object& o, const char* key) const {
    auto it = o.find(key);
    return it == o.end() || it->value().is_null() ? nullptr : &it->value();
  }
  const json::value& need(const json::object& o, const char* key, const std::string& path) const {
    const json::value* v = find(o, key);
    if (v == nullptr) fail(path + "." + key, "missing");
    return *v;
  }
  std::string string(const json::value& v, const std::string& path) const {
    if (!v.is_string()) fail(path, "expected a string");
    return std::string(v.get_string());
  }
  std::int64_t integer(const json::value& v, const std::string& path) const {
    if (v.is_int64()) return v.get_int64();
    if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) return static_cast<std::int64_t>(v.get_uint64());
    if (v.is_double() && v.get_double() == static_cast<double>(static_cast<std::int64_t>(v.get_double()))) {
      return static_cast<std::int64_t>(v.get_double());
    }
    fail(path, "expected an integer");
  }
  std::uint64_t non_negative(const json::value& v, const std::string& path) const {
    const auto n = integer(v, path);
    if (n < 0) fail(path, "expected a number >= 0");
    return static_cast<std::uint64_t>(n);
  }
  bool boolean(const json::value& v, const std::string& path) const {
    if (!v.is_bool()) fail(path, "expected true or false");
    return v.get_bool();
  }
  std::vector<std::string> strings(const json::value& v, const std::string& path) const {
    if (!v.is_array()) fail(path, "expected an array of strings");
    std::vector<std::string> out;
    for (std::size_t i = 0; i < v.get_array().size(); ++i) {
      out.push_back(string(v.get_array()[i], path + "[" + std::to_string(i) + "]"));
    }
    return out;
  }

 private:
  std::optional<std::int64_t>& id_;
};

json::array phases_json(const std::vector<PhaseSample>& phases) {
  json::array out;
  for (const auto& p : phases) out.push_back(json::object{{"name", p.name}, {"ms", p.ms}});
  return out;
}

}  // namespace

Job parse_job(const std::string& body) {
  std::optional<std::int64_t> id;
  Reader r(id);
  json::error_code ec;
  json::value root = json::parse(body, ec);
  if (ec) throw JobParseError("bad job from the server: not JSON (" + ec.message() + ")", std::nullopt);
  const auto& top = r.object(root, "body");
  const auto& j = r.object(r.need(top, "job", "body"), "job");

  Job job;
  job.id = r.integer(r.need(j, "id", "job"), "job.id");
  id = job.id;
  if (auto* v = r.find(j, "experiment_id")) job.experiment_id = r.integer(*v, "job.experiment_id");
  if (auto* v = r.find(j, "attempt")) job.attempt = static_cast<int>(r.integer(*v, "job.attempt"));
  job.lease_id = r.string(r.need(j, "lease_id", "job"), "job.lease_id");
  if (job.lease_id.empty()) r.fail("job.lease_id", "empty");
  if (auto* v = r.find(j, "lease_seconds")) job.lease_seconds = static_cast<int>(r.integer(*v, "job.lease_seconds"));
  if (job.lease_seconds <= 0) r.fail("job.lease_seconds", "must be > 0");

  const auto& repo = r.object(r.need(j, "repo", "job"), "job.repo");
  job.repo_url = r.string(r.need(repo, "url", "job.repo"), "job.repo.url");
  if (auto* v = r.find(repo, "name")) job.repo_name = r.string(*v, "job.repo.name");
  if (job.repo_name.empty()) job.repo_name = "repo";

  const auto& wf = r.object(r.need(j, "workflow", "job"), "job.workflow");
  Workflow& w = job.workflow;
  if (auto* v = r.find(wf, "name")) w.name = r.string(*v, "job.workflow.name");
  w.command = r.strings(r.need(wf, "command", "job.workflow"), "job.workflow.command");
  if (w.command.empty() || w.command[0].empty()) r.fail("job.workflow.command", "empty");
  if (auto* v = r.find(wf, "build_command")) w.build_command = r.strings(*v, "job.workflow.build_command");
  if (auto* v = r.find(wf, "workdir")) w.workdir = r.string(*v, "job.workflow.workdir");
  if (auto* v = r.find(wf, "env")) {
    for (const auto& kv : r.object(*v, "job.workflow.env")) {
      const std::string key(kv.key());
      if (key.empty() || key.find('=') != std::string::npos) r.fail("job.workflow.env", "bad variable name '" + key + "'");
      w.env[key] = r.string(kv.value(), "job.workflow.env." + key);
    }
  }
  if (auto* v = r.find(wf, "probe")) w.probe = r.string(*v, "job.workflow.probe");
  if (w.probe != "fd" && w.probe != "stdout") r.fail("job.workflow.probe", "expected \"fd\" or \"stdout\", got \"" + w.probe + "\"");
  if (auto* v = r.find(wf, "first_batch_regex")) w.first_batch_regex = r.string(*v, "job.workflow.first_batch_regex");
  if (w.probe == "stdout" && w.first_batch_regex.empty()) r.fail("job.workflow.first_batch_regex", "empty with probe \"stdout\"");
  if (auto* v = r.find(wf, "stop_after_first_batch")) w.stop_after_first_batch = r.boolean(*v, "job.workflow.stop_after_first_batch");
  if (auto* v = r.find(wf, "timeout_seconds")) w.timeout_seconds = static_cast<int>(r.integer(*v, "job.workflow.timeout_seconds"));
  if (w.timeout_seconds <= 0) r.fail("job.workflow.timeout_seconds", "must be > 0");
  if (auto* v = r.find(wf, "build_timeout_seconds")) {
    w.build_timeout_seconds = static_cast<int>(r.integer(*v, "job.workflow.build_timeout_seconds"));
  }
  if (w.build_timeout_seconds <= 0) r.fail("job.workflow.build_timeout_seconds", "must be > 0");
  if (auto* v = r.find(wf, "network")) w.network = r.string(*v, "job.workflow.network");
  if (w.network != "none" && w.network != "host") r.fail("job.workflow.network", "expected \"none\" or \"host\", got \"" + w.network + "\"");
  if (auto* v = r.find(wf, "limits")) {
    const auto& l = r.object(*v, "job.workflow.limits");
    if (auto* x = r.find(l, "memory_mb")) w.limits.memory_mb = r.non_negative(*x, "job.workflow.limits.memory_mb");
    if (auto* x = r.find(l, "cpu_seconds")) w.limits.cpu_seconds = r.non_negative(*x, "job.workflow.limits.cpu_seconds");
    if (auto* x = r.find(l, "nofile")) w.limits.nofile = r.non_negative(*x, "job.workflow.limits.nofile");
    if (auto* x = r.find(l, "nproc")) w.limits.nproc = r.non_negative(*x, "job.workflow.limits.nproc");
    if (auto* x = r.find(l, "cpus")) {
      if (!x->is_number() || !(x->to_number<double>() >= 0) || x->to_number<double>() > 4096) {
        r.fail("job.workflow.limits.cpus", "expected a number from 0 to 4096");
      }
      w.limits.cpus = x->to_number<double>();
    }
  }

  const auto& arms = r.object(r.need(j, "arms", "job"), "job.arms");
  for (const char* name : {"baseline", "candidate"}) {
    const std::string path = std::string("job.arms.") + name;
    const auto& a = r.object(r.need(arms, name, "job.arms"), path);
    ArmRevision rev;
    rev.commit = r.string(r.need(a, "commit", path), path + ".commit");
    if (auto* v = r.find(a, "diff")) rev.diff = r.string(*v, path + ".diff");
    if (auto* v = r.find(a, "env")) {
      for (const auto& kv : r.object(*v, path + ".env")) {
        const std::string key(kv.key());
        // The probe's descriptor is the worker's to set (sandbox.cpp), whatever a job says.
        if (key.empty() || key.find('=') != std::string::npos || key.find('\0') != std::string::npos ||
            key.rfind("TTFB_", 0) == 0)
          r.fail(path + ".env", "bad variable name '" + key + "'");
        if (kv.value().is_null()) rev.env[key] = std::nullopt;
        else rev.env[key] = r.string(kv.value(), path + ".env." + key);
      }
    }
    if (auto* v = r.find(a, "dependencies")) {
      if (!v->is_array()) r.fail(path + ".dependencies", "expected an array");
      for (std::size_t i = 0; i < v->get_array().size(); ++i) {
        const std::string dp = path + ".dependencies[" + std::to_string(i) + "]";
        const auto& d = r.object(v->get_array()[i], dp);
        ArmDependency dep;
        const auto& repo_o = r.object(r.need(d, "repo", dp), dp + ".repo");
        dep.repo_name = r.string(r.need(repo_o, "name", dp + ".repo"), dp + ".repo.name");
        dep.repo_url = r.string(r.need(repo_o, "url", dp + ".repo"), dp + ".repo.url");
        dep.commit = r.string(r.need(d, "commit", dp), dp + ".commit");
        if (auto* x = r.find(d, "diff")) dep.diff = r.string(*x, dp + ".diff");
        dep.path = r.string(r.need(d, "path", dp), dp + ".path");
        if (dep.repo_name.empty()) r.fail(dp + ".repo.name", "empty");
        // Where it goes: a plain relative path, so that it lands inside the run's copy.
        const bool plain = is_plain_relative_path(dep.path) && dep.path != ".git" && !dep.path.starts_with(".git/");
        if (!plain) r.fail(dp + ".path", "expected a relative path without '.' or '..' parts, not under .git");
        rev.dependencies.push_back(std::move(dep));
      }
    }
    if (auto* v = r.find(a, "command_prefix")) rev.command_prefix = r.strings(*v, path + ".command_prefix");
    if (auto* v = r.find(a, "interpreter")) rev.interpreter = r.strings(*v, path + ".interpreter");
    for (const auto* words : {&rev.command_prefix, &rev.interpreter})
      for (const auto& w : *words)
        if (w.empty() || w.find('\0') != std::string::npos) r.fail(path, "an empty word, or one with a NUL, in its command");
    (std::string(name) == "baseline" ? job.baseline : job.candidate) = std::move(rev);
  }

  const auto& schedule = r.need(j, "schedule", "job");
  if (!schedule.is_array()) r.fail("job.schedule", "expected an array");
  std::set<int> seen;
  for (std::size_t i = 0; i < schedule.get_array().size(); ++i) {
    const std::string path = "job.schedule[" + std::to_string(i) + "]";
    const auto& s = r.object(schedule.get_array()[i], path);
    ScheduledRun run;
    run.run_index = static_cast<int>(r.integer(r.need(s, "run_index", path), path + ".run_index"));
    run.arm = r.string(r.need(s, "arm", path), path + ".arm");
    if (run.arm != "baseline" && run.arm != "candidate") r.fail(path + ".arm", "expected baseline or candidate");
    if (auto* v = r.find(s, "warmup")) run.warmup = r.boolean(*v, path + ".warmup");
    if (!seen.insert(run.run_index).second) r.fail(path + ".run_index", "duplicate " + std::to_string(run.run_index));
    job.schedule.push_back(std::move(run));
  }
  if (job.schedule.empty()) r.fail("job.schedule", "empty");
  return job;
}

std::optional<JobLease> lease_in_claim(const std::string& body) {
  json::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto* j = v.get_object().if_contains("job");
  if (j == nullptr || !j->is_object()) return std::nullopt;
  const auto* id = j->get_object().if_contains("lease_id");
  const auto* attempt = j->get_object().if_contains("attempt");
  if (id == nullptr || !id->is_string() || attempt == nullptr || !attempt->is_int64()) return std::nullopt;
  return JobLease{std::string(id->get_string()), static_cast<int>(attempt->get_int64())};
}

std::string claim_body(const HostFacts& h) {
  return json::serialize(json::object{{"worker", json::object{{"name", h.name},
                                                              {"host", h.host},
                                                              {"cpu_model", h.cpu_model},
                                                              {"kernel", h.kernel},
                                                              {"cores", h.cores},
                                                              {"version", h.version}}}});
}

std::string heartbeat_body(const std::string& worker, const JobLease& lease, int done, int total) {
  return json::serialize(json::object{
      {"worker", worker}, {"lease_id", lease.id}, {"attempt", lease.attempt}, {"done", done}, {"total", total}});
}

std::string samples_body(const std::string& worker, const JobLease& lease, const std::vector<Sample>& samples) {
  json::array list;
  for (const auto& s : samples) {
    json::object o{{"run_index", s.run_index},
                                {"arm", s.arm},
                                {"warmup", s.warmup},
                                {"ttfb_ms", s.ttfb_ms},
                                {"phases", phases_json(s.phases)},
                                {"cpu_ms", s.cpu_ms},
                                {"max_rss_kb", s.max_rss_kb},
                                {"exit_status", s.exit_status},
                                {"signal", s.signal},
                                {"wall_ms", s.wall_ms}};
    if (s.cpu_to_first_batch_ms) o["cpu_to_first_batch_ms"] = *s.cpu_to_first_batch_ms;
    if (s.steal_ms) o["steal_ms"] = *s.steal_ms;
    if (s.footprint) {
      json::array files;
      for (const auto& f : *s.footprint) files.emplace_back(to_valid_utf8(f));
      o["footprint"] = std::move(files);
    }
    list.push_back(std::move(o));
  }
  return json::serialize(json::object{
      {"worker", worker}, {"lease_id", lease.id}, {"attempt", lease.attempt}, {"samples", std::move(list)}});
}

std::string complete_body(const std::string& worker, const JobLease& lease) {
  return json::serialize(json::object{{"worker", worker}, {"lease_id", lease.id}, {"attempt", lease.attempt}});
}

std::string fail_body(const std::string& worker, const JobLease& lease, const JobFailure& f) {
  json::object error{{"code", to_valid_utf8(f.code)},
                     {"message", to_valid_utf8(f.message)},
                     {"details", to_valid_utf8(f.details)}};
  if (!f.arm.empty()) error["arm"] = to_valid_utf8(f.arm);
  return json::serialize(json::object{{"worker", worker},
                                      {"lease_id", lease.id},
                                      {"attempt", lease.attempt},
                                      {"retryable", f.retryable},
                                      {"error", std::move(error)}});
}

std::optional<int> parse_lease_seconds(const std::string& body) {
  json::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  auto* lease = v.get_object().if_contains("lease_seconds");
  if (lease == nullptr || !lease->is_number()) return std::nullopt;
  const double s = lease->to_number<double>(ec);
  if (ec || s <= 0 || s > 86400) return std::nullopt;
  return static_cast<int>(s);
}

std::string describe_error_body(const std::string& body) {
  json::error_code ec;
  auto v = json::parse(body, ec);
  if (!ec && v.is_object()) {
    if (auto* e = v.get_object().if_contains("error"); e != nullptr && e->is_object()) {
      const auto& o = e->get_object();
      std::string out;
      if (auto* c = o.if_contains("code"); c != nullptr && c->is_string()) out = std::string(c->get_string());
      if (auto* m = o.if_contains("message"); m != nullptr && m->is_string()) {
        out += (out.empty() ? "" : ": ") + std::string(m->get_string());
      }
      if (!out.empty()) return out;
    }
  }
  return body.size() > 300 ? body.substr(0, 300) + "..." : body;
}

}  // namespace ttfb::worker
