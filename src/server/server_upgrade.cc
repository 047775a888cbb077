// Server's listening sockets and the SIGUSR2 binary upgrade (docs/decisions/
// 0009-binary-upgrade.md): which sockets are inherited, bound or passed on, and the hand-off.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>

#include <fmt/format.h>

#include "base/log.h"
#include "net/listener.h"
#include "server/listen_fds.h"
#include "server/server.h"
#include "server/state_handoff.h"

namespace needle::server {
namespace {

int refuse(std::string message) {
  log::error("server", "{}", message);
  report_upgrade_failure(message);
  return 1;
}

std::vector<int> sockets_for(const std::vector<int>& shared, unsigned index, unsigned count) {
  std::vector<int> mine;
  for (size_t j = index; j < shared.size(); j += count) mine.push_back(shared[j]);
  if (mine.empty() && !shared.empty()) mine.push_back(shared[index % shared.size()]);
  return mine;
}

}  // namespace

// Every configured address listens on the inherited sockets bound to it (all workers accept on
// them: nothing new joins their SO_REUSEPORT group, so no queued connection moves), else on one
// new SO_REUSEPORT socket per worker. handoff_ gets one descriptor per listening socket.
int Server::listen_all(const std::vector<asio::ip::tcp::endpoint>& endpoints) {
  InheritedSockets inherited(take_inherited_sockets());
  const bool any_inherited = inherited.size() > 0;
  const auto count = static_cast<unsigned>(workers_.size());
  for (auto& worker : workers_) {
    std::string failure;
    if (auto ec = worker->build_listener_tls(&failure)) return refuse("listener " + failure);
  }
  for (size_t listener = 0; listener < endpoints.size(); ++listener) {
    const auto& endpoint = endpoints[listener];
    const std::vector<int> shared = inherited.claim(endpoint);
    for (int fd : shared) handoff_.push_back({fd, "listener"});  // owned here from now on
    for (auto& worker : workers_) {
      const size_t before = worker->listener_fds().size();
      if (auto ec = worker->listen_on(listener, endpoint,
                                      sockets_for(shared, worker->index(), count))) {
        return refuse(fmt::format("cannot listen on {}: {}", net::endpoint_string(endpoint),
                                  ec.message()));
      }
      if (!shared.empty()) continue;
      const auto fds = worker->listener_fds();
      for (size_t k = before; k < fds.size(); ++k) {
        handoff_.push_back({::fcntl(fds[k], F_DUPFD_CLOEXEC, 3), "listener"});
      }
    }
    if (!shared.empty()) {
      log::info("server", "listener {}: {} inherited socket(s), accepted by {} worker(s)",
                net::endpoint_string(endpoint), shared.size(), count);
    }
  }
  if (config_->admin.address) {
    std::string error;
    auto endpoint = net::resolve_endpoint(*config_->admin.address, &error);
    if (!endpoint) {
      return refuse(fmt::format("admin {}: {}", config_->admin.address->to_string(), error));
    }
    const std::vector<int> shared = inherited.claim(*endpoint);
    for (size_t k = 1; k < shared.size(); ++k) ::close(shared[k]);
    std::error_code ec;
    if (shared.empty()) {
      ec = admin_.open(*endpoint);
    } else {
      const int copy = ::fcntl(shared[0], F_DUPFD_CLOEXEC, 3);
      ec = copy < 0 ? std::error_code(errno, std::system_category()) : admin_.adopt(copy);
      ::close(shared[0]);
    }
    if (ec) {
      return refuse(fmt::format("cannot listen on admin {}: {}", net::endpoint_string(*endpoint),
                                ec.message()));
    }
    refresh_admin_handoff();
    admin_.start();
  }
  if (any_inherited) inherited.close_unclaimed();
  return 0;
}

void Server::close_handoff_sockets() {
  for (const auto& socket : handoff_) ::close(socket.fd);
  handoff_.clear();
}

void Server::refresh_admin_handoff() {
  if (!handoff_.empty() && handoff_.back().name == "admin") {
    ::close(handoff_.back().fd);
    handoff_.pop_back();
  }
  if (shutting_down_ || !admin_.listening()) return;
  handoff_.push_back({::fcntl(admin_.native_handle(), F_DUPFD_CLOEXEC, 3), "admin"});
}

void Server::start_upgrade() {
  if (shutting_down_) {
    log::warn("server", "SIGUSR2: draining; not upgrading");
    return;
  }
  if (upgrade_.in_progress()) {
    log::warn("server", "SIGUSR2: an upgrade is already under way (new process {})",
              upgrade_.child());
    return;
  }
  const std::string state_file = write_upgrade_state();
  auto ec = upgrade_.start(
      handoff_, state_file, [this](pid_t child) { on_upgrade_ready(child); },
      [this](pid_t child, const std::string& reason) { on_upgrade_failed(child, reason); });
  if (ec) {
    remove_upgrade_state();
    log::error("server", "upgrade failed: cannot start {}: {}; this process keeps serving",
               capture_program_image().path, ec.message());
    return;
  }
  log::info("server", "SIGUSR2: upgrade: started new process {} with {} socket(s); "
            "this one serves until it reports ready", upgrade_.child(), handoff_.size());
}

void Server::on_upgrade_ready(pid_t child) {
  remove_upgrade_state();
  log::info("server", "upgrade: new process {} is serving; this one stops accepting and drains "
            "(up to {} ms)", child, config_->server.drain_timeout.count());
  begin_shutdown(/*handed_over=*/true);
}

void Server::on_upgrade_failed(pid_t child, const std::string& reason) {
  remove_upgrade_state();
  log::error("server", "upgrade failed: new process {}: {}; this process keeps serving", child,
             reason);
}

namespace {

std::vector<HostLearnedState> learned_on(Worker& worker) {
  std::vector<HostLearnedState> hosts;
  for (const auto& cluster : worker.context().runtime->clusters) {
    for (size_t i = 0; i < cluster->host_count(); ++i) {
      hosts.push_back(
          {cluster->config().name, cluster->host_name(i), cluster->host(i).learned_state()});
    }
  }
  return hosts;
}

// Before the workers run (so on this thread): each worker takes what the old process's worker
// of the same index (modulo their count) learned, for the hosts both configs have.
size_t restore_on(Worker& worker, const std::vector<HostLearnedState>& hosts) {
  size_t restored = 0;
  for (const auto& cluster : worker.context().runtime->clusters) {
    for (size_t i = 0; i < cluster->host_count(); ++i) {
      for (const auto& host : hosts) {
        if (host.cluster != cluster->config().name || host.host != cluster->host_name(i)) continue;
        cluster->host(i).restore_learned_state(host.state);
        ++restored;
      }
    }
  }
  return restored;
}

}  // namespace

std::string Server::write_upgrade_state() {
  UpgradeState state;
  std::vector<std::future<std::vector<HostLearnedState>>> futures;
  for (auto& worker : workers_) {
    auto promise = std::make_shared<std::promise<std::vector<HostLearnedState>>>();
    futures.push_back(promise->get_future());
    worker->post([promise](Worker& w) { promise->set_value(learned_on(w)); });
  }
  for (auto& future : futures) {
    if (future.wait_for(std::chrono::seconds(2)) != std::future_status::ready) break;
    state.workers.push_back(future.get());
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = fmt::format("{}/needle-upgrade-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (::mkdtemp(dir.data()) == nullptr) {
    log::warn("server", "upgrade: cannot create {}: {}; the new process starts without the "
              "learned state", dir, std::strerror(errno));
    return {};
  }
  upgrade_state_dir_ = dir;
  const std::string path = dir + "/state.json";
  std::ofstream out(path, std::ios::binary);
  out << render_upgrade_state(state);
  out.close();
  if (!out) {
    log::warn("server", "upgrade: cannot write {}; the new process starts without the learned "
              "state", path);
    remove_upgrade_state();
    return {};
  }
  return path;
}

void Server::remove_upgrade_state() {
  if (upgrade_state_dir_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(upgrade_state_dir_, ignored);
  upgrade_state_dir_.clear();
}

void Server::restore_upgrade_state() {
  const char* env = std::getenv(kUpgradeStateEnv);
  if (env == nullptr) return;
  const std::string path = env;
  ::unsetenv(kUpgradeStateEnv);
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  std::string why;
  auto state = in ? parse_upgrade_state(text.str(), &why) : std::nullopt;
  if (!in) why = "cannot read it";
  if (!state) {
    log::warn("server", "upgrade state {} ignored ({}): learning from scratch", path, why);
    return;
  }
  size_t restored = 0;
  for (auto& worker : workers_) {
    if (state->workers.empty()) break;
    restored += restore_on(*worker, state->workers[worker->index() % state->workers.size()]);
  }
  log::info("server", "upgrade state: restored {} host pool(s) from {}", restored, path);
}

}  // namespace needle::server
