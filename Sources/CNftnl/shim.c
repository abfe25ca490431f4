#include "cnftnl.h"
#include <libmnl/libmnl.h>

_Static_assert(sizeof(struct nlmsghdr) == 16, "nlmsghdr layout");
_Static_assert(sizeof(struct nfgenmsg) == 4, "nfgenmsg layout");
_Static_assert(NFNL_SUBSYS_NFTABLES == 10, "nf_tables subsystem id");
_Static_assert(NFT_REG32_00 == 8, "32-bit register numbering");

int cnftnl_align(int len) { return MNL_ALIGN(len); }
int cnftnl_nlmsg_hdrlen(void) { return MNL_NLMSG_HDRLEN; }
uint16_t cnftnl_batch_begin_type(void) { return NFNL_MSG_BATCH_BEGIN; }
uint16_t cnftnl_batch_end_type(void) { return NFNL_MSG_BATCH_END; }
