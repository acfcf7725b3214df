// Surviving a model file that shrinks while it is mapped. Reading a page of a memory map past the
// end of its (truncated) file raises SIGBUS, which would kill the process. The thread pool runs
// every task under a guard instead: a SIGBUS at an address inside a registered file mapping jumps
// out of the task, which then counts as failed; the model notices after the call and reports the
// file as changed (MODEL_FILE_CHANGED). The jump leaves only the task's own frames, and kernel
// tasks hold no resources (no locks, no owning objects: native/kernels allocates before its
// parallel regions), so nothing is leaked or left locked.
//
// Any other SIGBUS goes to the handler that was installed before (the default one kills the
// process, as without this guard). Linux and macOS; elsewhere run_guarded simply calls the task
// (Windows does not let a mapped file be truncated).
#pragma once

#include <cstddef>

namespace pg {

// Registers (or removes) a file mapping a guarded task may fault on; the first registration
// installs the SIGBUS handler, the last removal restores the previous one.
void register_mapped_range(const void* data, size_t size);
void unregister_mapped_range(const void* data);

// Runs fn(ctx, task, thread); false when it stopped on a fault in a registered mapping.
bool run_guarded(void (*fn)(void*, int, int), void* ctx, int task, int thread);

}  // namespace pg
