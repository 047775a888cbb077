#pragma once
// The active health check of one host (issue 20; docs/architecture.md "Upstream health"). Runs
// on the health thread's io_context (upstream/health_service.h), on its own connection: never a
// worker's pool. An http check sends `GET path` and passes on one of expected_statuses; a tcp
// check passes when a connection opens. Each check, connect included, is bounded by `timeout`.
//
// The http check keeps its connection alive between checks and watches it while idle (a 1-byte
// MSG_PEEK receive, as the pool's idle watch). When the host closes it, the idle age at that
// moment (since the end of the last response) is a measurement of the upstream's idle timeout
// that cost no request (DESIGN.md rule 4: "health checks can seed it too"): it is reported to
// the sink, which hands it to every worker's IdleTimeoutEstimator as evidence (the estimator
// judges it like any close, docs/decisions/0006-idle-close-evidence.md).
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/clock.h"
#include "config/config.h"
#include "net/io_types.h"
#include "upstream/idle_timeout_estimator.h"

namespace needle::upstream {

struct CheckResult {
  bool passed = false;
  std::string detail;  // why it failed ("connect: Connection refused", "status 500", ...)
};

// What the checker tells its owner; called on the health thread.
struct CheckerSink {
  std::function<void(const CheckResult&)> on_result;
  std::function<void(const IdleClose&)> on_idle_close;
};

class HealthChecker : public std::enable_shared_from_this<HealthChecker> {
 public:
  // `settings` is asked before every check (a reload may change it; nullopt stops the loop).
  HealthChecker(net::Executor executor, config::HostPort address,
                std::function<std::optional<config::HealthCheckConfig>()> settings,
                CheckerSink sink, const Clock& clock);
  void start();  // the first check runs at once
  void stop();   // no more checks; the connection closes
  bool stopped() const { return stopped_; }

 private:
  net::Task<void> run();
  net::Task<CheckResult> check_with_deadline(const config::HealthCheckConfig& config);
  net::Task<CheckResult> check(const config::HealthCheckConfig& config);
  net::Task<CheckResult> check_http(const config::HealthCheckConfig& config);
  net::Task<CheckResult> exchange(const config::HealthCheckConfig& config);
  // Waits `interval`, watching the kept connection; a close while idle is reported.
  net::Task<void> idle(Millis interval);
  void close_connection();

  net::Executor executor_;
  config::HostPort address_;
  std::function<std::optional<config::HealthCheckConfig>()> settings_;
  CheckerSink sink_;
  const Clock& clock_;
  std::optional<net::Socket> socket_;  // the kept connection (http checks)
  TimePoint idle_since_{};             // end of the last response on socket_
  uint32_t requests_done_ = 0;         // on socket_
  std::optional<net::Timer> wait_timer_;
  bool stopped_ = false;
};

}  // namespace needle::upstream
