#include "proxy/client_abort_watch.h"

#include <asio/bind_cancellation_slot.hpp>

namespace needle::proxy {

ClientAbortWatch::ClientAbortWatch(net::Socket& client, std::function<void()> on_abort)
    : client_(client), on_abort_(std::move(on_abort)) {}

ClientAbortWatch::~ClientAbortWatch() {
  // A queued look is cancelled by the socket's close (the session's socket outlives this
  // watch's use of it); its handler then finds the watch gone.
  if (look_) look_->alive = false;
}

void ClientAbortWatch::arm(uint64_t epoch) {
  if (state_ == State::looking) disarm();
  armed_epoch_ = epoch;
  state_ = State::armed;
}

void ClientAbortWatch::disarm() {
  switch (state_) {
    case State::looking:
      // Only this operation: a write to the client may be under way (socket.cancel() would end
      // it too). The handler, run later, is recognised as stale by its look id.
      ++look_id_;
      look_->cancel.emit(asio::cancellation_type::terminal);
      state_ = State::off;
      break;
    case State::armed:
    case State::done:
      state_ = State::off;
      break;
    case State::off:
    case State::aborted:
      break;
  }
}

void ClientAbortWatch::look_if_armed_before(uint64_t epoch) {
  if (state_ != State::armed || armed_epoch_ >= epoch) return;
  start_look();
}

void ClientAbortWatch::start_look() {
  if (!look_) look_ = std::make_shared<Look>();
  state_ = State::looking;
  const uint64_t id = ++look_id_;
  client_.async_receive(
      asio::buffer(&look_->byte, 1), asio::socket_base::message_peek,
      asio::bind_cancellation_slot(
          look_->cancel.slot(),
          [this, look = look_, id](const std::error_code& ec, size_t bytes) {
            if (look->alive) on_look(id, ec, bytes);
          }));
}

void ClientAbortWatch::on_look(uint64_t look_id, const std::error_code& ec, size_t bytes) {
  if (look_id != look_id_ || state_ != State::looking) return;  // disarmed meanwhile
  if (!ec && bytes > 0) {
    state_ = State::done;  // the next request is arriving: the client is there
    return;
  }
  if (ec == asio::error::operation_aborted) {
    state_ = State::done;  // every operation on the socket was cancelled by its owner
    return;
  }
  // EOF (Asio reports a 0-byte stream read as error::eof) or a socket error such as ECONNRESET.
  state_ = State::aborted;
  if (on_abort_) on_abort_();
}

}  // namespace needle::proxy
