#pragma once
// The I/O object and coroutine types of the data path, bound to the worker's io_context executor
// instead of Asio's default, the type-erased asio::any_io_executor.
//
// Every socket, timer and coroutine of a worker runs on that worker's one io_context (DESIGN.md
// "Workers"), so the erasure buys nothing and costs on every operation: copies and moves of
// any_io_executor are indirect calls, and a handler whose executor is not the I/O object's own
// type counts outstanding work (two atomic updates per operation) and is dispatched through the
// erased executor. With the concrete type Asio invokes the completion directly
// (bench/RESULTS.md "cost" has the instructions per request before and after).
//
// Coroutines awaiting each other must share the executor type: data-path coroutines are
// net::Task, and co_spawn takes the io_context (or a net::Executor).
#include <chrono>

#include <asio/awaitable.hpp>
#include <asio/basic_socket_acceptor.hpp>
#include <asio/basic_stream_socket.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

namespace needle::net {

using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<asio::ip::tcp, Executor>;
using Acceptor = asio::basic_socket_acceptor<asio::ip::tcp, Executor>;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                         asio::wait_traits<std::chrono::steady_clock>, Executor>;
template <typename T>
using Task = asio::awaitable<T, Executor>;

}  // namespace needle::net
