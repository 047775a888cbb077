#pragma once
// Counts heap allocations made by the calling thread (global operator new is replaced, or under
// a sanitizer hooked, in allocation_counter_test.cc for the whole observe test binary).
#include <cstddef>

namespace needle::observe::test_alloc {
size_t allocations_on_this_thread();
}  // namespace needle::observe::test_alloc
