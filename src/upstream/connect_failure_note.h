#pragma once
// Bridge, to be deleted: HostPool::connect() (host_pool.cc) still calls the cause-less
// PoolCore::connect_failed(), so open_upstream_socket() leaves the cause of the failure it is
// about to return here, and that overload reads it back. Per thread, and a worker is one thread:
// the connector notes the cause right before its coroutine returns and HostPool::connect() calls
// connect_failed() right after it resumes, with no suspension in between, so no other connect
// can overwrite the note. Once host_pool.cc passes ConnectOutcome::cause to
// PoolCore::connect_failed(Cause), delete this header and the cause-less overload.
#include "base/cause.h"

namespace needle::upstream {

void note_connect_failure(Cause cause);
// The cause noted last on this thread (connect_error when there is none), and forgets it.
Cause take_connect_failure();

}  // namespace needle::upstream
