#pragma once
// Bootstrap and lifecycle: workers, admin listener, signals (SIGTERM/SIGINT drain, SIGHUP
// reload, SIGUSR1 reopen the access log, SIGUSR2 binary upgrade: server/upgrade.h). The control
// thread (the caller of run()) owns signals and the admin endpoint; workers own the data path.
#include <memory>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include "config/config.h"
#include "config/reload_check.h"
#include "net/io_types.h"
#include "proxy/overload_state.h"
#include "server/admin_server.h"
#include "server/observability.h"
#include "server/upgrade.h"
#include "server/worker.h"
#include "upstream/dns_discovery.h"
#include "upstream/health_service.h"

namespace needle::server {

class Server {
 public:
  // `config_path` empty: quick mode (no file, SIGHUP only logs that there is nothing to reload).
  // `access_log_override` (--access-log) wins over the file's server.access_log, on reload too.
  Server(std::shared_ptr<const config::Config> config, std::string config_path,
         std::string access_log_override = {});
  ~Server();
  int run();  // blocks until shut down; the process exit status

 private:
  void wait_signals();
  void reload();
  // Applies `fresh` (already checked by config::reload_refusals): the parts that can fail at run
  // time first, each undone if a later one fails; false (and the old config still running) if
  // one failed, with its error logged at file:line:key.
  bool apply_reload(const config::ReloadCheck& check, std::shared_ptr<const config::Config> fresh);
  // `handed_over`: a new process serves the listeners and the admin address (upgrade); else
  // the admin listener stays up during the drain so /ready answers 503.
  void begin_shutdown(bool handed_over = false);
  // Binary upgrade (docs/decisions/0009-binary-upgrade.md).
  void start_upgrade();
  void on_upgrade_ready(pid_t child);
  void on_upgrade_failed(pid_t child, const std::string& reason);
  int listen_all(const std::vector<asio::ip::tcp::endpoint>& endpoints);
  void close_handoff_sockets();
  void refresh_admin_handoff();
  // The learned state for the new process (server/state_handoff.h): the file's path, or "" when
  // it could not be written (the new process then starts without it).
  std::string write_upgrade_state();
  void remove_upgrade_state();
  void restore_upgrade_state();  // before the workers start
  // DNS discovery (docs/architecture.md "Discovery by DNS"), control thread: the config the
  // workers run, config_ with each resolved name replaced by its addresses; publish_resolved()
  // posts it to the workers when an answer changed it.
  std::shared_ptr<const config::Config> resolved_config() const;
  void publish_resolved();
  std::string render_overload_metrics() const;
  void poll_workers_stopped();
  AdminResponse handle_admin(std::string_view method, std::string_view path);
  // The health checker's idle-close measurement for every worker's pool of that host.
  void post_idle_close(const std::string& cluster, const std::string& host,
                       const upstream::IdleClose& close);

  std::shared_ptr<const config::Config> config_;
  std::string config_path_;
  std::string access_log_override_;
  asio::io_context control_{1};
  asio::signal_set signals_;
  net::Timer drain_timer_;
  net::Timer poll_timer_;
  // Declared before workers_: destroyed after them (their runtimes report to it).
  std::unique_ptr<upstream::HealthService> health_;
  std::unique_ptr<Observability> observability_;
  std::vector<std::unique_ptr<Worker>> workers_;
  AdminServer admin_;
  bool shutting_down_ = false;
  TimePoint drain_deadline_{};
  // The listening sockets a SIGUSR2 upgrade passes on: one descriptor per socket (workers hold
  // their own copies), owned here until the drain; the admin socket is last.
  std::vector<PassedSocket> handoff_;
  Upgrade upgrade_;
  std::string upgrade_state_dir_;
  std::shared_ptr<const config::Config> running_;  // what the workers run (resolved_config())
  std::shared_ptr<proxy::OverloadState> overload_ = std::make_shared<proxy::OverloadState>();
  // Last member: destroyed (its thread joined) first, as its callback posts to control_.
  std::unique_ptr<upstream::DnsDiscovery> discovery_;
};

unsigned effective_worker_count(const config::Config& config);

}  // namespace needle::server
