/* LD_PRELOAD shim for bench/compare: counts the calls that make writes durable (fsync,
   fdatasync, syncfs, sync_file_range, msync) in a shared counter file, so the report can say
   how many each archive makes per stored instance: the cost of its acknowledgement. With
   SYNC_COUNT_SKIP=1 (a diagnostic run only, never a real archive) the calls return at once
   without syncing, which shows what ingest would cost without durability.
   SYNC_COUNT_FILE names an existing file of at least 8 bytes; the count is a uint64 at its
   start. Compiled at run time: gcc -shared -fPIC ... -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static uint64_t *counter;
static int skip;

__attribute__((constructor)) static void open_counter(void) {
    const char *path = getenv("SYNC_COUNT_FILE");
    const char *s = getenv("SYNC_COUNT_SKIP");
    skip = s && s[0] == '1';
    if (!path) return;
    int fd = open(path, O_RDWR);
    if (fd < 0) return;
    void *p = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p != MAP_FAILED) counter = (uint64_t *)p;
}

static void count(void) {
    if (counter) __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

#define PASS(name, ret, params, args)                                      \
    ret name params {                                                      \
        static ret (*real) params;                                         \
        count();                                                           \
        if (skip) return 0;                                                \
        if (!real) real = (ret (*) params)dlsym(RTLD_NEXT, #name);        \
        return real args;                                                  \
    }

PASS(fsync, int, (int fd), (fd))
PASS(fdatasync, int, (int fd), (fd))
PASS(syncfs, int, (int fd), (fd))
PASS(sync_file_range, int, (int fd, off64_t offset, off64_t nbytes, unsigned int flags), (fd, offset, nbytes, flags))
PASS(msync, int, (void *addr, size_t length, int flags), (addr, length, flags))
