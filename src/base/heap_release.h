#pragma once
// Giving freed heap memory back to the kernel after a burst (the keep-alive park, pool trims).
//
// The needle binary links jemalloc (docs/decisions/0002-jemalloc.md): its size classes keep the
// small objects that outlive a burst (a parked client's record, Asio's per-socket reactor state)
// apart from the large ones a burst frees, so those pages come back; glibc malloc placed them in
// the freed sessions' holes and kept every page resident. Builds without jemalloc (sanitizers,
// unit tests) fall back to glibc's malloc_trim.
namespace needle {

// Returns the free pages of every arena to the kernel now, instead of at the allocator's decay.
void release_free_heap();

// Whether this process runs on jemalloc (named in the start-up log line).
bool heap_is_jemalloc();

}  // namespace needle
