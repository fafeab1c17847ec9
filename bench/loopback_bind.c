/* LD_PRELOAD shim for bench/compare: Orthanc 1.10 cannot be told where to listen and binds
   every interface; this rewrites a bind() to the wildcard address (0.0.0.0 or ::) into one
   to loopback (127.0.0.1 or ::1). Compiled at run time: gcc -shared -fPIC ... -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <string.h>

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    static int (*real)(int, const struct sockaddr *, socklen_t);
    if (!real) real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
    if (addr && addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in copy;
        memcpy(&copy, addr, sizeof copy);
        if (copy.sin_addr.s_addr == htonl(INADDR_ANY)) copy.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return real(fd, (struct sockaddr *)&copy, sizeof copy);
    }
    if (addr && addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 copy;
        memcpy(&copy, addr, sizeof copy);
        if (!memcmp(&copy.sin6_addr, &in6addr_any, sizeof in6addr_any)) copy.sin6_addr = in6addr_loopback;
        return real(fd, (struct sockaddr *)&copy, sizeof copy);
    }
    return real(fd, addr, len);
}
