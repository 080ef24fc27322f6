/* stall.c - an LD_PRELOAD shim that stalls the proxy at one chosen point.
 *
 * When the file named by NC_STALL_FILE exists, the next writev removes it and
 * sleeps NC_STALL_MS before writing: the proxy's loop stands still after
 * taking requests and before sending them (its batched write to Redis), as a
 * process stopped at the worst moment would. */
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    static ssize_t (*real)(int, const struct iovec *, int);
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "writev");
    const char *file = getenv("NC_STALL_FILE");
    if (file != NULL && unlink(file) == 0) {
        long ms = atol(getenv("NC_STALL_MS") ? getenv("NC_STALL_MS") : "1000");
        struct timespec ts = {ms / 1000, ms % 1000 * 1000000L};
        while (nanosleep(&ts, &ts) < 0)
            ;
    }
    return real(fd, iov, iovcnt);
}
