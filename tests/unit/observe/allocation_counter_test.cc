#include "allocation_counter.h"

#include <cstdlib>
#include <memory>
#include <new>
#include <string>

#include <gtest/gtest.h>

namespace {
thread_local size_t g_allocations = 0;
}  // namespace

void* operator new(std::size_t size) {
  ++g_allocations;
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace needle::observe::test_alloc {

size_t allocations_on_this_thread() {
  return g_allocations;
}

namespace {

TEST(MetricsAllocationCounter, SeesHeapAllocations) {
  const size_t before = allocations_on_this_thread();
  auto p = std::make_unique<std::string>(100, 'x');
  EXPECT_GE(allocations_on_this_thread() - before, 2u);  // the string object and its buffer
}

}  // namespace
}  // namespace needle::observe::test_alloc
