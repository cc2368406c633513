"""Slab allocator hypercalls: the slow paths behind the guest's kmalloc family.

Guest code (guest/lib/slab.c) runs SLUB's lockless fast paths itself over
the structures in guest memory (mm/slab.py has their layout): kmalloc() and
kmem_cache_alloc() pop c->freelist, kfree() pushes onto it when the object
is in the cpu slab.  Everything else comes here, numbered from HC_SLAB_BASE
(guest/include/mmemu/slab.h mirrors the numbers):

  +0 kmem_cache_create(name, size, align, flags, ctor) -> struct kmem_cache *
  +1 kmem_cache_destroy(s)
  +2 kmem_cache_shrink(s) -> int
  +3 __slab_alloc(s, gfp) -> object; a new slab of a cache with a constructor
     leaves its first object in mailbox word HC_WORD_CTOR, and the guest runs
     s->ctor over all oo_objects(s->oo) objects of s->size bytes from there
  +4 __slab_free(s or 0 for kfree, x)
  +5 kmalloc_large(size, gfp) -> address (sizes above KMALLOC_MAX_CACHE_SIZE)
  +6 ksize(x) -> size (for what is not a slab object)
  +7 kmem_cache_validate(s) -> errors found (slabinfo -v)
  +10 __slab_alloc for a node (s, gfp, node) -> object (kmem_cache_alloc_node,
      kmalloc_node: the guest's fast path serves only a cpu slab on that node)
  +11 kmalloc_large_node(size, gfp, node) -> address
"""
from mmemu.mm.slab import check_slab, slab_init
from mmemu.runtime.abi import HC_MAILBOX_PHYS, HC_SLAB_BASE, HC_WORD_CTOR

HC_KMEM_CACHE_CREATE = HC_SLAB_BASE + 0
HC_KMEM_CACHE_DESTROY = HC_SLAB_BASE + 1
HC_KMEM_CACHE_SHRINK = HC_SLAB_BASE + 2
HC_SLAB_ALLOC = HC_SLAB_BASE + 3
HC_SLAB_FREE = HC_SLAB_BASE + 4
HC_KMALLOC_LARGE = HC_SLAB_BASE + 5
HC_KSIZE = HC_SLAB_BASE + 6
HC_KMEM_CACHE_VALIDATE = HC_SLAB_BASE + 7
HC_KMALLOC = HC_SLAB_BASE + 8          # (size, gfp): kmalloc() of any size, whole on the host
HC_KFREE = HC_SLAB_BASE + 9            # (ptr): kfree() on the host
HC_SLAB_ALLOC_NODE = HC_SLAB_BASE + 10
HC_KMALLOC_LARGE_NODE = HC_SLAB_BASE + 11
U32 = 0xFFFFFFFF
NAME_MAX = 64


def attach(machine):
    """Boot the slab allocator on machine, serve its hypercalls, add its checker.

    Returns the SlabAllocator (machine.slab).
    """
    sl = slab_init(machine)
    sl.slub.slab_nodes = slab_nodes(machine.mm)
    machine.slab = sl
    register(machine.runtime, machine.runtime.table, sl)
    machine.checkers.append(lambda: check_slab(machine))
    return sl


def slab_nodes(mm):
    """6.1's slab_nodes: the nodes with normal memory (N_NORMAL_MEMORY), whose
    slabs a node-specific allocation may ask for."""
    return {z.node for z in mm.zones if z.present_pages and not z.is_highmem}


def register(rt, table, sl):
    """Serve the slab calls of runtime rt from SlabAllocator sl."""
    rep = sl.rep
    u32 = rt.machine.pm.u32
    ctor_word = (HC_MAILBOX_PHYS >> 2) + HC_WORD_CTOR
    caller = rt.guest_caller

    def guest(fn):
        """Run fn as a call from guest code: reports carry its call chain."""
        def call(*args):
            rep.in_guest = True
            try:
                return fn(*args)
            finally:
                rep.in_guest = False
        return call

    def cache(addr, what):
        s = sl.cache_at(addr)
        if s is None and addr:
            rt.warn(f"mmemu: {what}: 0x{addr:08x} is not a live struct kmem_cache, "
                    f"called from {caller()}")
        return s

    def hc_create(name_va, size, align, flags, ctor):
        name = rt._cstr(name_va, NAME_MAX) if name_va else ""
        s = sl.kmem_cache_create(name, size, align, flags, ctor or None, caller=caller)
        return s.addr if s else 0

    def hc_destroy(addr):
        s = cache(addr, "kmem_cache_destroy")
        if s is not None:
            sl.kmem_cache_destroy(s, caller=caller)

    def hc_shrink(addr):
        s = cache(addr, "kmem_cache_shrink")
        return sl.kmem_cache_shrink(s) if s else 0

    def hc_slab_alloc(addr, gfp):
        s = cache(addr, "kmem_cache_alloc")
        if s is None:
            return 0
        obj = sl.slab_alloc(s, gfp, caller)
        u32[ctor_word] = sl.slub.pending_ctor
        sl.slub.pending_ctor = 0
        return obj or 0

    def hc_slab_alloc_node(addr, gfp, node):
        s = cache(addr, "kmem_cache_alloc_node")
        if s is None:
            return 0
        obj = sl.slab_alloc(s, gfp, caller, -1 if node == U32 else node)
        u32[ctor_word] = sl.slub.pending_ctor
        sl.slub.pending_ctor = 0
        return obj or 0

    def hc_kmalloc_large_node(size, gfp, node):
        return sl.kmalloc_large(size, gfp, caller, -1 if node == U32 else node) or 0

    def hc_slab_free(addr, x):
        if addr == 0:
            sl.kfree(x, caller=caller)
        else:
            s = cache(addr, "kmem_cache_free")
            if s is not None:
                sl.kmem_cache_free(s, x, caller=caller)

    def hc_kmalloc_large(size, gfp):
        return sl.kmalloc(size, gfp, caller=caller) or 0

    def hc_validate(addr):
        s = cache(addr, "validate")
        return sl.kmem_cache_validate(s) if s else -22

    table.register(HC_KMEM_CACHE_CREATE, "kmem_cache_create", guest(hc_create), 5)
    table.register(HC_KMEM_CACHE_DESTROY, "kmem_cache_destroy", guest(hc_destroy), 1)
    table.register(HC_KMEM_CACHE_SHRINK, "kmem_cache_shrink", guest(hc_shrink), 1)
    table.register(HC_SLAB_ALLOC, "__slab_alloc", guest(hc_slab_alloc), 2)
    table.register(HC_SLAB_FREE, "__slab_free", guest(hc_slab_free), 2)
    table.register(HC_KMALLOC_LARGE, "kmalloc_large", guest(hc_kmalloc_large), 2)
    table.register(HC_KSIZE, "ksize", guest(sl.ksize), 1)
    table.register(HC_KMEM_CACHE_VALIDATE, "validate_slab_cache", guest(hc_validate), 1)
    table.register(HC_SLAB_ALLOC_NODE, "__slab_alloc_node", guest(hc_slab_alloc_node), 3)
    table.register(HC_KMALLOC_LARGE_NODE, "kmalloc_large_node", guest(hc_kmalloc_large_node), 3)
    # For guests without the SDK (embedders' own code): the whole call on the host.
    table.register(HC_KMALLOC, "kmalloc", guest(hc_kmalloc_large), 2)
    table.register(HC_KFREE, "kfree", guest(lambda x: sl.kfree(x, caller=caller)), 1)
