#include "upstream/connection_pool.h"

namespace needle::upstream {

ConnectionLease::ConnectionLease(std::shared_ptr<HostPool> pool,
                                 std::unique_ptr<UpstreamConnection> conn)
    : pool_(std::move(pool)), conn_(std::move(conn)) {}

ConnectionLease::ConnectionLease(ConnectionLease&& other) noexcept = default;

ConnectionLease& ConnectionLease::operator=(ConnectionLease&& other) noexcept {
  if (this != &other) {
    discard();
    pool_ = std::move(other.pool_);
    conn_ = std::move(other.conn_);
  }
  return *this;
}

// A lease dropped without release() ended badly somewhere: never reuse what it held.
ConnectionLease::~ConnectionLease() { discard(); }

void ConnectionLease::release(const ReleaseInfo& info) {
  if (!conn_) return;
  auto pool = std::move(pool_);
  if (pool) pool->on_release(std::move(conn_), info);
  conn_.reset();
}

void ConnectionLease::discard() {
  if (!conn_) return;
  auto pool = std::move(pool_);
  if (pool) pool->on_discard(std::move(conn_));
  conn_.reset();
}

}  // namespace needle::upstream
