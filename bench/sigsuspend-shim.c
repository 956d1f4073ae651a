// For bench/profile only. valgrind 3.19 (Debian 12) edits the signal mask passed to sigsuspend in
// place, and libdispatch's signal thread (the main thread of an async Swift main) passes one in
// read-only memory: valgrind then dies of SIGSEGV before the program starts. Preloaded, this
// sigsuspend hands the kernel a copy on the stack.
#define _GNU_SOURCE
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    return (int)syscall(SYS_rt_sigsuspend, &copy, 8); // the kernel's sigset_t: 64 signals
}
