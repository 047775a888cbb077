#include "server/server.h"

#include <pthread.h>
#include <signal.h>

#include <thread>

#include <asio/post.hpp>
#include <fmt/format.h>

#include "base/heap_release.h"
#include "base/log.h"
#include "config/reload_check.h"
#include "net/listener.h"
#include "observe/overload_metrics.h"

namespace needle::server {
namespace {

// needle's signals (SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2): only the control thread takes
// them.
sigset_t control_signal_set() {
  sigset_t set;
  sigemptyset(&set);
  for (int signo : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}) sigaddset(&set, signo);
  return set;
}

// Threads started while this lives (a reload's alert notifier and the thread retiring the old
// one) inherit a mask that blocks needle's signals, like the threads started by run().
class ControlSignalsBlocked {
 public:
  ControlSignalsBlocked() {
    const sigset_t set = control_signal_set();
    pthread_sigmask(SIG_BLOCK, &set, &previous_);
  }
  ~ControlSignalsBlocked() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  ControlSignalsBlocked(const ControlSignalsBlocked&) = delete;
  ControlSignalsBlocked& operator=(const ControlSignalsBlocked&) = delete;

 private:
  sigset_t previous_;
};

void log_refused(const std::vector<config::ConfigError>& errors) {
  for (const auto& error : errors) log::error("config", "reload refused: {}", error.to_string());
  log::error("config", "reload refused: keeping the running configuration");
}

// How long start-up waits for the first round of health checks.
Millis first_round_wait(const config::Config& config) {
  Millis wait{0};
  for (const auto& cluster : config.clusters) {
    if (cluster.health_check) wait = std::max(wait, cluster.health_check->timeout + Millis(100));
  }
  return wait;
}

}  // namespace

unsigned effective_worker_count(const config::Config& config) {
  if (config.server.workers != 0) return config.server.workers;
  const unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : cores;
}

Server::Server(std::shared_ptr<const config::Config> config, std::string config_path,
               std::string access_log_override)
    : config_(std::move(config)),
      config_path_(std::move(config_path)),
      access_log_override_(std::move(access_log_override)),
      signals_(control_),
      drain_timer_(control_),
      poll_timer_(control_),
      admin_(control_, [this](std::string_view method, std::string_view path) {
        return handle_admin(method, path);
      }),
      upgrade_(control_, capture_program_image()) {}

Server::~Server() { close_handoff_sockets(); }

int Server::run() {
  ::signal(SIGPIPE, SIG_IGN);
  // Before any listener exists: once the port accepts, a supervisor (or a test) may send SIGHUP
  // or SIGTERM at once, and the default action would kill the process. Signals that arrive
  // before wait_signals() are queued by the signal_set and handled then.
  // A process-directed signal goes to one thread that does not block it (signal(7)). Every
  // thread started below (workers, alert notifier) inherits a mask that blocks needle's
  // signals, so the handler runs on this, the control thread, only: a worker's epoll_wait is
  // never interrupted, and a sanitizer that defers handlers on a busy thread cannot strand one.
  // Signals sent meanwhile stay pending and arrive when the mask is lifted below.
  const sigset_t control_signals = control_signal_set();
  for (int signo : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}) signals_.add(signo);
  pthread_sigmask(SIG_BLOCK, &control_signals, nullptr);
  take_upgrade_ready_fd();
  std::vector<asio::ip::tcp::endpoint> endpoints;
  for (const auto& listener : config_->listeners) {
    std::string error;
    auto endpoint = net::resolve_endpoint(listener.address, &error);
    if (!endpoint) {
      log::error("server", "listener {}: {}", listener.address.to_string(), error);
      report_upgrade_failure(fmt::format("listener {}: {}", listener.address.to_string(), error));
      return 1;
    }
    endpoints.push_back(*endpoint);
  }

  observability_ = std::make_unique<Observability>(*config_);
  // The first answers before the workers start, so they begin with addresses rather than
  // names resolved per connect (a name still unanswered then joins when its answer comes).
  discovery_ = std::make_unique<upstream::DnsDiscovery>(
      [this] { asio::post(control_, [this] { publish_resolved(); }); });
  discovery_->set_targets(*config_);
  discovery_->wait_first_round(Millis(3000));
  running_ = resolved_config();
  // Hosts are registered before the workers build their runtimes on them (initial states).
  health_ = std::make_unique<upstream::HealthService>(
      SteadyClock::instance(),
      [this](const std::string& cluster, const std::string& host,
             const upstream::IdleClose& close) { post_idle_close(cluster, host, close); });
  health_->registry().apply(*running_);
  observability_->set_health(&health_->registry());
  const unsigned count = effective_worker_count(*config_);
  for (unsigned i = 0; i < count; ++i) {
    auto worker = std::make_unique<Worker>(i, running_, observability_->make_worker_observer(i),
                                           &health_->registry());
    worker->context().overload = overload_;
    workers_.push_back(std::move(worker));
  }
  if (int status = listen_all(endpoints); status != 0) return status;
  restore_upgrade_state();
  // The first round of health checks, before the workers accept: bounded by the longest check
  // timeout (a host that does not answer by then stays out until it passes).
  health_->start(first_round_wait(*running_));
  for (auto& worker : workers_) worker->start();

  std::string addresses;
  for (const auto& endpoint : endpoints) {
    if (!addresses.empty()) addresses += ", ";
    addresses += net::endpoint_string(endpoint);
  }
  log::info("server", "needle listening on {} with {} worker(s); admin {}; config {}; malloc {}",
            addresses, count, config_->admin.address ? config_->admin.address->to_string() : "off",
            config_->source, heap_is_jemalloc() ? "jemalloc" : "libc");
  report_upgrade_ready();

  pthread_sigmask(SIG_UNBLOCK, &control_signals, nullptr);
  wait_signals();
  control_.run();

  discovery_.reset();
  for (auto& worker : workers_) worker->join();
  health_->stop();
  observability_->stop();
  log::info("server", "needle stopped");
  return 0;
}

void Server::wait_signals() {
  signals_.async_wait([this](std::error_code ec, int signo) {
    if (ec) return;
    if (signo == SIGHUP) {
      reload();
    } else if (signo == SIGUSR2) {
      start_upgrade();
    } else if (signo == SIGUSR1) {
      log::info("server", "SIGUSR1: reopening the access log");
      observability_->reopen_logs();
    } else {
      log::info("server", "{}: draining (up to {} ms)", signo == SIGTERM ? "SIGTERM" : "SIGINT",
                config_->server.drain_timeout.count());
      begin_shutdown();
    }
    wait_signals();
  });
}

void Server::reload() {
  if (config_path_.empty()) {
    log::warn("server", "SIGHUP: quick mode has no config file to reload");
    return;
  }
  if (shutting_down_) {
    log::warn("server", "SIGHUP: draining; not reloading");
    return;
  }
  const auto check = config::check_reload_file(config_path_, *config_);
  if (!check.errors().empty()) return log_refused(check.errors());
  config::Config next = check.config();
  if (!access_log_override_.empty()) next.server.access_log = access_log_override_;
  if (!apply_reload(check, std::make_shared<const config::Config>(std::move(next)))) return;
  log::info("config", "reloaded {}", config_path_);
}

bool Server::apply_reload(const config::ReloadCheck& check,
                          std::shared_ptr<const config::Config> fresh) {
  // 1. The admin listener's new address is bound beside the current one (nothing changes yet).
  const auto& admin_address = fresh->admin.address;
  const bool admin_moves =
      admin_address.has_value() != config_->admin.address.has_value() ||
      (admin_address && admin_address->to_string() != config_->admin.address->to_string());
  if (admin_moves && admin_address) {
    std::string error;
    auto endpoint = net::resolve_endpoint(*admin_address, &error);
    std::error_code ec;
    if (endpoint) ec = admin_.prepare(*endpoint);
    if (!endpoint || ec) {
      log_refused({check.error_at("admin.address",
                                  fmt::format("cannot listen on {}: {}", admin_address->to_string(),
                                              endpoint ? ec.message() : error))});
      return false;
    }
  }
  // 2. The access log: opening the new target is the last step that can fail.
  if (auto ec = observability_->reconfigure_access_log(fresh->server.access_log)) {
    admin_.drop_prepared();
    log_refused(
        {check.error_at("server.access_log", fmt::format("cannot open '{}': {}",
                                                         fresh->server.access_log, ec.message()))});
    return false;
  }
  // 3. Nothing below fails.
  if (admin_moves) {
    if (admin_address) {
      admin_.switch_to_prepared();
    } else {
      admin_.stop();
    }
    refresh_admin_handoff();
    log::info("server", "reload: admin {}",
              admin_address ? admin_address->to_string() : std::string("off"));
  }
  {
    ControlSignalsBlocked blocked;
    observability_->reconfigure_alerts(fresh->alerts);
  }
  config_ = fresh;
  discovery_->set_targets(*config_);
  running_ = resolved_config();
  health_->reconfigure(*running_);  // before the workers build runtimes on the new hosts
  for (auto& worker : workers_) worker->post_reload(running_);
  return true;
}

std::shared_ptr<const config::Config> Server::resolved_config() const {
  return std::make_shared<const config::Config>(
      upstream::expand_resolved_hosts(*config_, discovery_->answers()));
}

void Server::publish_resolved() {
  if (shutting_down_) return;
  auto next = resolved_config();
  auto hosts_of = [](const config::Config& config) {
    std::vector<std::string> hosts;
    for (const auto& cluster : config.clusters) {
      hosts.push_back(cluster.name);
      for (const auto& host : cluster.hosts) hosts.push_back(host.to_string());
    }
    return hosts;
  };
  if (running_ && hosts_of(*next) == hosts_of(*running_)) return;
  running_ = std::move(next);
  health_->reconfigure(*running_);  // new addresses are checked like any new host
  for (auto& worker : workers_) worker->post_reload(running_);
}

std::string Server::render_overload_metrics() const {
  observe::OverloadMetrics metrics = overload_->snapshot();
  for (const auto& target : discovery_->stats()) {
    metrics.dns.push_back(
        {target.cluster, target.name, target.resolutions, target.failures, target.addresses});
  }
  for (const auto& cluster : running_->clusters) {
    metrics.hosts.push_back({cluster.name, cluster.hosts.size()});
  }
  std::string out;
  observe::render_overload_metrics(metrics, out);
  return out;
}

void Server::begin_shutdown(bool handed_over) {

  if (shutting_down_) return;
  shutting_down_ = true;
  // /ready answers 503 from now on (docs/architecture.md "Reload and shutdown"); after an
  // upgrade the admin address is the new process's.
  if (handed_over) admin_.stop();
  close_handoff_sockets();
  for (auto& worker : workers_) worker->post_drain();
  drain_timer_.expires_after(config_->server.drain_timeout);
  drain_timer_.async_wait([this](std::error_code ec) {
    if (ec) return;
    log::warn("server", "drain timeout: closing remaining connections");
    for (auto& worker : workers_) worker->force_stop();
  });
  poll_workers_stopped();
}

void Server::poll_workers_stopped() {
  poll_timer_.expires_after(std::chrono::milliseconds(20));
  poll_timer_.async_wait([this](std::error_code ec) {
    if (ec) return;
    for (auto& worker : workers_) {
      if (!worker->stopped()) {
        poll_workers_stopped();
        return;
      }
    }
    drain_timer_.cancel();
    signals_.cancel();
    control_.stop();
  });
}

void Server::post_idle_close(const std::string& cluster, const std::string& host,
                             const upstream::IdleClose& close) {
  for (auto& worker : workers_) {
    worker->post([cluster, host, close](Worker& w) {
      proxy::ClusterRuntime* runtime = w.context().runtime->find_cluster(cluster);
      if (!runtime) return;
      for (size_t i = 0; i < runtime->host_count(); ++i) {
        if (runtime->host_name(i) == host) runtime->host(i).note_idle_close_elsewhere(close);
      }
    });
  }
}

AdminResponse Server::handle_admin(std::string_view method, std::string_view path) {
  if (method != "GET" && method != "HEAD") {
    return {405, "text/plain; charset=utf-8", "only GET and HEAD\n"};
  }
  if (path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
  if (path == "/ready") {
    if (shutting_down_) return {503, "text/plain; charset=utf-8", "draining\n"};
    return {200, "text/plain; charset=utf-8", "ready\n"};
  }
  if (path == "/metrics") {
    return {200, "text/plain; version=0.0.4; charset=utf-8",
            observability_->render_metrics(workers_) + render_overload_metrics()};
  }
  if (path == "/pools") {
    return {200, "application/json", observability_->render_pools(workers_)};
  }
  return {404, "text/plain; charset=utf-8", "not found; try /healthz /ready /metrics /pools\n"};
}

}  // namespace needle::server
