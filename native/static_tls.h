// PG_STATIC_TLS: a thread_local of this addon kept in each thread's static TLS block (the
// initial-exec model), which pthread_create allocates with the thread's stack and which is there
// from the thread's first instruction. Without it, glibc allocates a dlopen'ed module's
// thread-locals with malloc at each thread's first access to them, and when that malloc fails (the
// thread stacks of a large pool have used up an address-space limit) it aborts the process
// ("cannot allocate memory for thread-local data"). The addon's thread-locals are a few bytes, far
// within the static TLS surplus glibc keeps for dlopen'ed modules. Elsewhere it is plain
// thread_local (musl allocates every module's TLS with the thread).
#pragma once

#include <cstddef>  // defines __GLIBC__ where glibc is the C library

#if defined(__GLIBC__)
#define PG_STATIC_TLS [[gnu::tls_model("initial-exec")]] thread_local
#else
#define PG_STATIC_TLS thread_local
#endif
