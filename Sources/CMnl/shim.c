#define _GNU_SOURCE
#include "cmnl.h"
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <malloc.h>

_Static_assert(sizeof(struct nlmsghdr) == 16, "nlmsghdr layout");
_Static_assert(sizeof(struct genlmsghdr) == 4, "genlmsghdr layout");
_Static_assert(sizeof(struct nlmsgerr) == 20, "nlmsgerr layout");
_Static_assert(sizeof(struct ip_vs_flags) == 8, "ip_vs_flags layout");

size_t cmnl_socket_buffer_size(void) { return MNL_SOCKET_BUFFER_SIZE; }
int cmnl_align(int len) { return MNL_ALIGN(len); }
int cmnl_nlmsg_hdrlen(void) { return MNL_NLMSG_HDRLEN; }
int cmnl_attr_hdrlen(void) { return MNL_ATTR_HDRLEN; }

int cmnl_recv_many(int fd, void *buffers, unsigned int size, unsigned int count, unsigned int *lens, int wait) {
    struct mmsghdr msgs[64];
    struct iovec iovs[64];
    if (count > 64) count = 64;
    memset(msgs, 0, sizeof(struct mmsghdr) * count);
    for (unsigned int i = 0; i < count; i++) {
        iovs[i].iov_base = (char *)buffers + (size_t)i * size;
        iovs[i].iov_len = size;
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n;
    do {
        n = recvmmsg(fd, msgs, count, wait ? MSG_WAITFORONE : MSG_DONTWAIT, NULL);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && !wait && errno == EAGAIN) return 0;
    if (n < 0) return -1;
    for (int i = 0; i < n; i++) {
        if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) { errno = ENOSPC; return -1; }
        lens[i] = msgs[i].msg_len;
    }
    return n;
}

void cmnl_keep_freed_memory(void) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_TOP_PAD, 16 << 20);
}
