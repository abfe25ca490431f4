#ifndef KIPVS_CMNL_H
#define KIPVS_CMNL_H

#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/genetlink.h>
#include <linux/ip_vs.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <linux/if_addr.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <sys/socket.h>

/* Values behind macros that Swift cannot import. */
size_t cmnl_socket_buffer_size(void);
int cmnl_align(int len);
int cmnl_nlmsg_hdrlen(void);
int cmnl_attr_hdrlen(void);

/* recvmmsg: read up to `count` datagrams into `count` buffers of `size` bytes laid end to end.
   With `wait`, blocks for the first and takes what is already queued after it; without, returns
   0 when nothing is queued. Lengths go to `lens`. */
int cmnl_recv_many(int fd, void *buffers, unsigned int size, unsigned int count, unsigned int *lens, int wait);

/* glibc malloc: keep freed memory in the process (see keepFreedMemory in the kipvs target). */
void cmnl_keep_freed_memory(void);

#endif
