#include "allocation_counter.h"

#include <cstdlib>
#include <memory>
#include <new>
#include <string>

#include <gtest/gtest.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define NEEDLE_SANITIZER_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define NEEDLE_SANITIZER_ALLOCATOR 1
#endif
#endif

#ifdef NEEDLE_SANITIZER_ALLOCATOR
#include <sanitizer/allocator_interface.h>
#endif

namespace {
thread_local size_t g_allocations = 0;
}  // namespace

#ifdef NEEDLE_SANITIZER_ALLOCATOR
// Under ASan and TSan the runtime owns operator new (TSan's cannot be replaced: the link fails
// with duplicate symbols) and tells an installed hook about every allocation, malloc included.
namespace {
void count_allocation(const volatile void*, std::size_t) {
  ++g_allocations;
}
void ignore_free(const volatile void*) {}
[[maybe_unused]] const int g_hooks_installed =
    __sanitizer_install_malloc_and_free_hooks(count_allocation, ignore_free);
}  // namespace
#else
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
#endif

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
