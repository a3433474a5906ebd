#ifndef SNN_FS_H
#define SNN_FS_H

// Swaps two paths in one step (Linux renameat2 with RENAME_EXCHANGE): a report folder is
// replaced by its new version with no instant at which neither exists. Returns 0, or -1 with
// errno set (ENOSYS or EINVAL where the kernel or file system cannot exchange).
int snn_exchange_paths(const char *first, const char *second);

#endif
