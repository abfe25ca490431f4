#ifndef KIPVS_CNFTNL_H
#define KIPVS_CNFTNL_H

#include <stdint.h>
/* glibc first: linux/libc-compat.h then leaves in_addr and friends to glibc, as Swift sees them. */
#include <netinet/in.h>
#include <linux/netlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_nat.h>
#include <libnftnl/common.h>
#include <libnftnl/table.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/expr.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>

/* Values behind macros that Swift cannot import. */
int cnftnl_align(int len);
int cnftnl_nlmsg_hdrlen(void);
/* NFNL_SUBSYS_NFTABLES << 8 | NFNL_MSG_BATCH_*: the transaction's framing messages. */
uint16_t cnftnl_batch_begin_type(void);
uint16_t cnftnl_batch_end_type(void);

#endif
