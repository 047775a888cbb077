#include "base/heap_release.h"

#include <malloc.h>

#include <cstddef>

// jemalloc's control interface, resolved only when the binary links jemalloc.
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen)
    __attribute__((weak));

// jemalloc reads this at its first allocation (glibc ignores it). background_thread: freed pages
// are purged by jemalloc's own thread while the workers sleep in epoll (without it purging runs
// only inside allocations, and an idle proxy never gives memory back). dirty_decay_ms 1000:
// freed pages stay for reuse about a second; muzzy_decay_ms 0: then they go back at once
// (MADV_DONTNEED, so RSS drops) instead of lingering as MADV_FREE pages.
extern "C" {
const char* malloc_conf = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
}

namespace needle {

bool heap_is_jemalloc() {
  return mallctl != nullptr;
}

void release_free_heap() {
  if (mallctl != nullptr) {
    // MALLCTL_ARENAS_ALL (4096): every arena.
    mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
    return;
  }
  malloc_trim(0);
}

}  // namespace needle
