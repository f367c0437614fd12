#include "common/allocator.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

#include "gtest/gtest.h"

namespace dgsr {
namespace {

// Bytes the allocator holds in blocks mapped one by one (what the policy is meant to avoid).
size_t MmappedBytes() { return mallinfo2().hblkhd; }

// Allocates, touches and frees a block of `bytes` on this (the main) thread; returns how many
// more bytes were mapped one by one while it was live.
size_t MmappedWhileLive(size_t bytes) {
  const size_t before = MmappedBytes();
  char* volatile block = static_cast<char*>(std::malloc(bytes));
  std::memset(block, 1, bytes);
  const size_t during = MmappedBytes();
  std::free(block);
  return during - before;
}

TEST(AllocatorTest, LargeBlocksComeFromTheHeapOnceThePolicyIsSet) {
  constexpr size_t kBytes = 100 << 20;  // above glibc's largest default mmap threshold (32 MiB)
  unsetenv("GLIBC_TUNABLES");
  // A 1 MiB threshold, as glibc's default is for such a block (and whatever an earlier test set
  // is undone): the block is mapped by itself.
  ASSERT_EQ(mallopt(M_MMAP_THRESHOLD, 1 << 20), 1);
  EXPECT_GE(MmappedWhileLive(kBytes), kBytes);
  ASSERT_TRUE(KeepFreedMemoryForReuse());
  EXPECT_EQ(MmappedWhileLive(kBytes), 0u);
  // Freed and allocated again: the same pages, not a new mapping.
  EXPECT_EQ(MmappedWhileLive(kBytes), 0u);
}

TEST(AllocatorTest, AnOperatorsMallocTunableWins) {
  setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1000000", 1);
  EXPECT_FALSE(KeepFreedMemoryForReuse());
  setenv("GLIBC_TUNABLES", "glibc.cpu.hwcaps=-AVX512F", 1);
  EXPECT_TRUE(KeepFreedMemoryForReuse());
  unsetenv("GLIBC_TUNABLES");
}

}  // namespace
}  // namespace dgsr
