#include "common/allocator.h"

#include <malloc.h>

#include <climits>
#include <cstdlib>
#include <cstring>

namespace dgsr {

bool KeepFreedMemoryForReuse() {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables != nullptr && std::strstr(tunables, "glibc.malloc.") != nullptr) return false;
  // Blocks up to 2 GiB come from the heap and are reused; the heap is never trimmed. Allocations
  // of threads other than the main one that exceed an arena's heap (64 MiB) are still mmapped.
  const bool mmap_set = mallopt(M_MMAP_THRESHOLD, INT_MAX) == 1;
  const bool trim_set = mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1;
  return mmap_set && trim_set;
}

}  // namespace dgsr
