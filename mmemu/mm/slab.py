"""The slab allocator (SLUB) of Linux 6.1: the entry point and the contracts.

Models include/linux/slab.h, mm/slab.h and the guest-visible parts of
mm/slub.c.  The work is split like the kernel's: mm/slab_common.py (kmalloc,
the cache registry, /proc/slabinfo numbers), mm/slub.py (the SLUB core: slabs,
freelists, cpu slab, partial lists), mm/slub_debug.py (red zones, poison,
tracking, validation and SLUB's reports).

    >>> sl = machine.slab                    # a SlabAllocator (mm/slab_common.py)
    >>> p = sl.kmalloc(64, GFP_KERNEL)       # a guest virtual address, or None
    >>> sl.ksize(p), sl.kfree(p)
    (64, None)

Everything the guest's fast path touches lives in guest memory, so guest code
(guest/lib/slab.c) and host code allocate from the same structures:

struct page of a slab (the struct slab overlay, mmzone.py): flags has PG_slab
(and PG_head for order > 0, set by the page allocator for __GFP_COMP);
slab_cache (+12) is the struct kmem_cache *; freelist (+16) the first free
object (not for the cpu slab, whose free objects sit on c->freelist);
counters (+20) is inuse:16 | objects:15 << 16 | frozen:1 << 31.  Free objects
hold the next free object's address at object + s->offset, as SLUB does
(differs: no CONFIG_SLAB_FREELIST_HARDENED obfuscation, no freelist
randomization).  slab_list (+4/+8) is not used: the partial and full lists are
host-side (KmemCacheNode).

struct kmem_cache in guest memory (mirrored by guest/include/mmemu/slab.h;
change both together), allocated from the boot cache "kmem_cache" as Linux's
boot_kmem_cache; field order follows 6.1's struct kmem_cache:

  off  field          meaning
  0    cpu_slab       struct kmem_cache_cpu * (this CPU's, at +KMC_CPU_DATA)
  4    flags          slab_flags_t (SLAB_* below, plus __OBJECT_POISON)
  8    min_partial    empty slabs kept on the partial list
  12   size           object stride, metadata included
  16   object_size    what the user asked for
  20   offset         free pointer offset inside an object
  24   oo             order << 16 | objects per slab
  28   min            the same for the fallback order get_order(size)
  32   allocflags     gfp bits every slab allocation adds (__GFP_COMP, GFP_DMA, ...)
  36   refcount
  40   ctor           void (*)(void *), guest code; 0 for none
  44   inuse          offset of the metadata after the object
  48   align
  52   red_left_pad   left red zone; objects start this far into their slot
  56   name           const char *
  60   cpu_slab_data  struct kmem_cache_cpu { void **freelist; unsigned long tid;
                      struct slab *slab; } (12 bytes; Linux keeps it per cpu)
  72   (end)          KMEM_CACHE_SIZE

The kmalloc cache table (bootinfo "kmalloc_caches") is Linux's
kmalloc_caches[NR_KMALLOC_TYPES][KMALLOC_SHIFT_HIGH + 1]: struct kmem_cache *
words, row = enum kmalloc_cache_type, column = kmalloc_index(size).
"""

# -- include/linux/slab.h (6.1) ----------------------------------------------
SLAB_CONSISTENCY_CHECKS = 0x00000100
SLAB_RED_ZONE = 0x00000400
SLAB_POISON = 0x00000800
SLAB_KMALLOC = 0x00001000
SLAB_HWCACHE_ALIGN = 0x00002000
SLAB_CACHE_DMA = 0x00004000
SLAB_CACHE_DMA32 = 0x00008000
SLAB_STORE_USER = 0x00010000
SLAB_RECLAIM_ACCOUNT = 0x00020000
SLAB_PANIC = 0x00040000
SLAB_TYPESAFE_BY_RCU = 0x00080000
SLAB_MEM_SPREAD = 0x00100000
SLAB_TRACE = 0x00200000
SLAB_DEBUG_OBJECTS = 0x00400000
SLAB_NOLEAKTRACE = 0x00800000
SLAB_FAILSLAB = 0x02000000
SLAB_ACCOUNT = 0x04000000
SLAB_NO_USER_FLAGS = 0x10000000
__OBJECT_POISON = 0x80000000          # mm/slub.c internal: poison the object itself
_OBJECT_POISON = __OBJECT_POISON       # the same, for use inside classes (no name mangling)

SLAB_DEBUG_FLAGS = (SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER | SLAB_TRACE
                    | SLAB_CONSISTENCY_CHECKS)
DEBUG_DEFAULT_FLAGS = SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER
SLAB_FLAGS_PERMITTED = (SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON
                        | SLAB_HWCACHE_ALIGN | SLAB_CACHE_DMA | SLAB_CACHE_DMA32
                        | SLAB_STORE_USER | SLAB_RECLAIM_ACCOUNT | SLAB_PANIC
                        | SLAB_TYPESAFE_BY_RCU | SLAB_MEM_SPREAD | SLAB_TRACE
                        | SLAB_DEBUG_OBJECTS | SLAB_NOLEAKTRACE | SLAB_FAILSLAB
                        | SLAB_ACCOUNT | SLAB_NO_USER_FLAGS | SLAB_KMALLOC)

# include/linux/poison.h
POISON_INUSE = 0x5A
POISON_FREE = 0x6B
POISON_END = 0xA5
SLUB_RED_INACTIVE = 0xBB
SLUB_RED_ACTIVE = 0xCC

ZERO_SIZE_PTR = 16                     # ((void *)16)

# -- the guest struct kmem_cache (see the module docstring) ----------------------
KMC_CPU_SLAB = 0
KMC_FLAGS = 4
KMC_MIN_PARTIAL = 8
KMC_SIZE = 12
KMC_OBJECT_SIZE = 16
KMC_OFFSET = 20
KMC_OO = 24
KMC_MIN = 28
KMC_ALLOCFLAGS = 32
KMC_REFCOUNT = 36
KMC_CTOR = 40
KMC_INUSE = 44
KMC_ALIGN = 48
KMC_RED_LEFT_PAD = 52
KMC_NAME = 56
KMC_CPU_DATA = 60                      # struct kmem_cache_cpu
KCC_FREELIST = 0                       # offsets inside struct kmem_cache_cpu
KCC_TID = 4
KCC_SLAB = 8
KMEM_CACHE_SIZE = 72
# What 6.1's kmem_cache_init() asks for on the 686 build: the kmem_cache cache's
# objects are offsetof(struct kmem_cache, node) + nr_node_ids pointers (mmemu's
# 72-byte struct lies at their start); kmem_cache_node's are the SLUB_DEBUG
# struct kmem_cache_node.  With SLAB_HWCACHE_ALIGN on a 32-byte cache line:
# 160 bytes, 25 a slab, and 32 bytes, 128 a slab, as /proc/slabinfo shows.
KMEM_CACHE_OBJECT_SIZE = 144
KMEM_CACHE_NODE_SIZE = 32

# struct slab counters word
SLAB_INUSE_MASK = 0xFFFF
SLAB_OBJECTS_SHIFT = 16
SLAB_OBJECTS_MASK = 0x7FFF
SLAB_FROZEN = 1 << 31

# struct track (mm/slub.c, CONFIG_STACKDEPOT): addr, handle, cpu, pid, when
TRACK_SIZE = 20

