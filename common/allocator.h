// The process's heap policy for the large, short-lived tensors of training and serving.
#pragma once

namespace dgsr {

// Makes glibc keep freed memory for reuse instead of handing it back to the kernel, so that a
// tensor of the same size allocated again next step reuses pages already mapped.
//
// By default glibc serves every block above its mmap threshold (at most 32 MiB) with its own
// mmap and unmaps it on free, so each training step of SASRec+ (logits of batch x positions x
// items, hundreds of MB) page-faults its whole working set in again. On this project's virtual
// machines a page fault is expensive: it was a quarter of SASRec+'s training time, which ran
// 3.2x faster with the policy (docs/RESULTS.md, "Issue 15"). The cost is that the resident size
// stays at its peak after a peak, which a training job or a server reaches again anyway.
//
// Call it once, first thing in main(), before other threads start. It does nothing when
// GLIBC_TUNABLES already sets a glibc.malloc tunable: the operator's choice wins. Returns whether
// it changed the policy.
bool KeepFreedMemoryForReuse();

}  // namespace dgsr
