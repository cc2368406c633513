"""alloc_large_system_hash(): the boot hash tables taken from memblock.

Models mm/page_alloc.c:alloc_large_system_hash() of Linux 6.1 for the two
tables vfs_caches_init_early() makes with HASH_EARLY on a non-NUMA kernel:
the dentry cache (scale 13) and the inode cache (scale 14), 4-byte
buckets, sized from nr_kernel_pages (the lowmem free_area_init() expected
to manage) and capped at 1/16 of nr_all_pages.  Differs: the tables hold
nothing in mmemu (no VFS); only their memory is taken, where the kernel
takes it.
"""
from collections.abc import Callable

from mmemu.layout import PAGE_SHIFT, PAGE_SIZE
from mmemu.mm.memblock import SMP_CACHE_BYTES, Memblock

BUCKET_SIZE = 4                 # struct hlist_bl_head / struct hlist_head
VFS_HASHES = (("Dentry cache", 13), ("Inode-cache", 14))


def _roundup_pow_of_two(n: int) -> int:
    return 1 << (n - 1).bit_length() if n > 1 else 1


def get_order(size: int) -> int:
    """get_order(): the page order that holds size bytes."""
    return max(0, ((size - 1) >> PAGE_SHIFT).bit_length())


def hash_entries(nr_kernel_pages: int, nr_all_pages: int, scale: int,
                 bucketsize: int = BUCKET_SIZE) -> int:
    """The number of buckets alloc_large_system_hash() picks (numentries 0, no limits)."""
    numentries = -(-nr_kernel_pages // 256) * 256            # round up to a MiB of pages
    if scale > PAGE_SHIFT:
        numentries >>= scale - PAGE_SHIFT
    else:
        numentries <<= PAGE_SHIFT - scale
    if numentries * bucketsize < PAGE_SIZE:
        numentries = PAGE_SIZE // bucketsize
    numentries = _roundup_pow_of_two(numentries)
    most = ((nr_all_pages << PAGE_SHIFT) >> 4) // bucketsize
    return min(numentries, most)


def alloc_large_system_hash(mb: Memblock, log: Callable[[str], object], name: str, scale: int,
                            nr_kernel_pages: int, nr_all_pages: int) -> int:
    """One HASH_EARLY table from memblock, and its boot line; returns its address."""
    entries = hash_entries(nr_kernel_pages, nr_all_pages, scale)
    log2qty = entries.bit_length() - 1
    size = BUCKET_SIZE << log2qty
    table = mb.alloc_try_nid(size, SMP_CACHE_BYTES, caller="alloc_large_system_hash",
                             name=f"{name} hash table")
    log(f"{name} hash table entries: {1 << log2qty} (order: {get_order(size)}, {size} bytes, "
        f"linear)")
    return table


def vfs_caches_init_early(mb: Memblock, log: Callable[[str], object], nr_kernel_pages: int,
                          nr_all_pages: int) -> list[int]:
    """vfs_caches_init_early(): the dentry and inode hash tables."""
    return [alloc_large_system_hash(mb, log, name, scale, nr_kernel_pages, nr_all_pages)
            for name, scale in VFS_HASHES]
