"""Slab allocator hypercalls: the slow paths behind the guest's kmalloc family.

Guest code (guest/lib/slab.c) runs SLUB's lockless fast paths itself over
the structures in guest memory (mm/slab.py has their layout): kmalloc() and
kmem_cache_alloc() pop c->freelist, kfree() pushes onto it when the object
is in the cpu slab.  Everything else comes here, numbered from HC_SLAB_BASE
(runtime/abi.py has the numbers, guest/include/mmemu/slab.h mirrors them):

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
  +8, +9 kmalloc(size, gfp) and kfree(x) whole on the host, for guest code
     without the SDK (an embedder's own)
  +10 __slab_alloc for a node (s, gfp, node) -> object (kmem_cache_alloc_node,
      kmalloc_node: the guest's fast path serves only a cpu slab on that node)
  +11 kmalloc_large_node(size, gfp, node) -> address
"""
from mmemu.runtime.abi import (
    HC_KFREE, HC_KMALLOC, HC_KMALLOC_LARGE, HC_KMEM_CACHE_CREATE, HC_KMEM_CACHE_DESTROY,
    HC_KMEM_CACHE_SHRINK, HC_KMEM_CACHE_VALIDATE, HC_KSIZE, HC_MAILBOX_PHYS, HC_SLAB_ALLOC,
    HC_KMALLOC_LARGE_NODE, HC_SLAB_ALLOC_NODE, HC_SLAB_FREE, HC_WORD_CTOR,
)

NAME_MAX = 64
U32 = 0xFFFFFFFF


def register(rt, table, sl):
    """Serve the slab calls of runtime rt from SlabAllocator sl."""
    u32 = rt.machine.pm.u32
    ctor_word = (HC_MAILBOX_PHYS >> 2) + HC_WORD_CTOR
    caller = rt.guest_caller

    def cache(addr, what):
        s = sl.cache_at(addr)
        if s is None and addr:
            rt.reporter.report(f"mmemu: {what}: 0x{addr:08x} is not a live struct kmem_cache, "
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

    table.register(HC_KMEM_CACHE_CREATE, "kmem_cache_create", hc_create, 5)
    table.register(HC_KMEM_CACHE_DESTROY, "kmem_cache_destroy", hc_destroy, 1)
    table.register(HC_KMEM_CACHE_SHRINK, "kmem_cache_shrink", hc_shrink, 1)
    table.register(HC_SLAB_ALLOC, "__slab_alloc", hc_slab_alloc, 2)
    table.register(HC_SLAB_FREE, "__slab_free", hc_slab_free, 2)
    table.register(HC_KMALLOC_LARGE, "kmalloc_large", hc_kmalloc_large, 2)
    table.register(HC_KSIZE, "ksize", sl.ksize, 1)
    table.register(HC_KMEM_CACHE_VALIDATE, "validate_slab_cache", hc_validate, 1)
    table.register(HC_SLAB_ALLOC_NODE, "__slab_alloc_node", hc_slab_alloc_node, 3)
    table.register(HC_KMALLOC_LARGE_NODE, "kmalloc_large_node", hc_kmalloc_large_node, 3)
    # For guests without the SDK (embedders' own code): the whole call on the host.
    table.register(HC_KMALLOC, "kmalloc", hc_kmalloc_large, 2)
    table.register(HC_KFREE, "kfree", lambda x: sl.kfree(x, caller=caller), 1)
