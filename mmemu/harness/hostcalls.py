"""The host driver's calls: for every hypercall a generator of hostile but
meaningful arguments, and the check of what it returned.

Each mixin covers one subsystem (pages, vmalloc and ioremap, highmem and the
fixmap, the scheduler's context checks, slab); a generator g_<name> returns
the Call to make, or None for random words.  A Call's ``post`` checks the
result against what Linux guarantees and keeps the driver's record of live
objects (harness/checks.py: Obj, Patterns) up to date.

Hostile calls are chosen so that Linux itself would refuse them or they harm
nothing of anyone's: a free of a page someone else holds is made only when
the free checks catch it (a reserved, slab or page-table page always; any
flagged page with CONFIG_DEBUG_VM-style checking, the default here:
debug_vm=True), a double free only while the block is still free.
"""
import re

from mmemu.layout import (
    END_OF_FIXED, FIX_KMAP_BEGIN, FIX_KMAP_END, PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE, fix_to_virt,
)

U32 = 0xFFFFFFFF
STRUCT_PAGE = 40                # 6.1 686: memcg_data, aligned to 8 bytes
PAGE_WORDS = STRUCT_PAGE // 4
W_FLAGS, W_NEXT, W_MAPCOUNT, W_REFCOUNT = 0, 1, 6, 7
PG_reserved, PG_slab, PG_head = 12, 9, 16
PAGE_TYPE_BASE = 0xF0000000
ZERO_SIZE_PTR = 16

# Realistic gfp masks; hostile ones add random bits.
GFP_KERNEL, GFP_ATOMIC, GFP_NOWAIT = 0xCC0, 0xA20, 0x800
GFP_DMA_, GFP_HIGHMEM_, GFP_ZERO_, GFP_NOWARN_, GFP_COMP_ = 0x1, 0x2, 0x100, 0x2000, 0x40000
GFP_NOFAIL_, GFP_THISNODE_, GFP_MOVABLE_ = 0x8000, 0x200000, 0x8
GFP_HIGHUSER = 0x100CC2
GFP_MASKS = (GFP_KERNEL, GFP_ATOMIC, GFP_NOWAIT, GFP_KERNEL | GFP_ZERO_, GFP_HIGHUSER,
             GFP_HIGHUSER | GFP_MOVABLE_, GFP_KERNEL | GFP_DMA_, GFP_ATOMIC | GFP_DMA_,
             GFP_KERNEL | GFP_NOWARN_, GFP_KERNEL | GFP_COMP_, GFP_HIGHUSER | GFP_ZERO_)
VM_IOREMAP, VM_ALLOC, VM_MAP, VM_USERMAP, VM_MAP_PUT_PAGES = 0x1, 0x2, 0x4, 0x8, 0x200
MAX_LIVE = 48

# How often each call is picked (names not listed: 1).
WEIGHTS = {
    "alloc_pages": 10, "__free_pages": 9, "__get_free_pages": 6, "free_pages": 6,
    "page_address": 2, "nr_free_pages": 1, "vmalloc": 4, "vzalloc": 2, "__vmalloc": 3,
    "vmalloc_node": 2, "vfree": 8, "vmap": 3, "vunmap": 3, "vmalloc_to_page": 2,
    "ioremap": 3, "iounmap": 3, "kmap": 4, "kunmap": 4, "kmap_atomic": 3,
    "kunmap_atomic": 4, "kmap_local_page": 3, "kunmap_local": 4, "kmap_local_pfn": 2,
    "kmap_atomic_pfn": 2, "__set_fixmap": 2, "clear_fixmap": 2, "kmap_flush_unused": 1,
    "kmem_cache_create": 2, "kmem_cache_destroy": 2, "__slab_alloc": 8, "__slab_free": 8,
    "kmalloc_large": 3, "ksize": 2, "kmem_cache_shrink": 1, "validate_slab_cache": 1,
    "printk": 1, "WARN": 1, "check": 1, "exit": 0.1, "BUG": 0.2, "<unknown>": 0.5,
    "<percpu>": 0,
}


class Helpers:
    """Small queries on the machine the generators and checks share."""

    def page_pfn(self, ptr):
        """The pfn of a struct page * in mem_map, or None."""
        off = ptr - self.memmap
        if 0 <= off < self.max_pfn * STRUCT_PAGE and off % STRUCT_PAGE == 0:
            return off // STRUCT_PAGE
        return None

    def page_zone(self, pfn):
        return self.u32[self.mbase + (pfn * PAGE_WORDS) + W_FLAGS] >> 30

    def is_highmem(self, pfn):
        return pfn >= self.m.layout.max_low_pfn

    def maps_to(self, va, phys):
        """Whether the page tables map va to phys.  The guard page below the
        guest's stack is left unmapped on purpose (runtime/stack.py): there
        the direct-map address is the right answer, mapped or not."""
        guard = self.m.runtime.stack_guard
        if guard is not None and guard.start <= va < guard.end:
            return va == PAGE_OFFSET + phys
        return self.m.virt_to_phys(va) == phys

    def extents(self, phys, size, step=64 * 1024):
        return [(p, min(step, phys + size - p)) for p in range(phys, phys + size, step)]

    def scratch_string(self, text=None, terminate=True):
        """A poke that puts a string at the start of the scratch buffer: (addr, pokes)."""
        r = self.rng
        if text is None:
            n = r.choice((0, 1, 5, 16, 63, 64, 200, 1000))
            text = bytes(r.choice(b"abcdefghijklmnopqrstuvwxyz-_%0123456789\n\x01\xff") for _ in range(n))
        data = text + (b"\0" if terminate else b"")
        off = r.randrange(0, 256)
        return self.scratch + off, [(self.scratch_phys + off, data)]

    def string_arg(self):
        """A string pointer argument: a scratch string, unterminated, NULL or wild."""
        x = self.rng.random()
        if x < 0.6:
            return self.scratch_string()
        if x < 0.7:
            return self.scratch_string(terminate=False)
        return self.wild(), []

    def adapt(self, o, what):
        """A post-call hook for calls whose effect on o Linux leaves open:
        drop o if it is gone, keep it otherwise."""
        def post(ret):
            if self._gone(o):
                self._drop(o)
            return None
        return post

    def _gone(self, o):
        if o.kind in ("pages", "gfp", "large"):
            return self._refcount(o.pfn) < 1
        if o.kind in ("vmalloc", "vmap", "ioremap"):
            area = self.m.vmalloc.find_vm_area(o.handle & ~(PAGE_SIZE - 1))
            return area is None or area.addr != o.handle & ~(PAGE_SIZE - 1)
        if o.kind == "cache":
            return self.m.slab.cache_at(o.handle) is None
        return True                 # slab objects: no cheap way to tell, assume freed

    def free_slot(self):
        return len(self.objs) < MAX_LIVE


class CoreCalls:
    def g_nop(self):
        return self._call("nop")

    def g_printk(self):
        buf, pokes = self.string_arg()
        n = self.rng.choice((0, 1, 10, 100, 1024, 4096, U32, self.rng.getrandbits(32)))
        return self._call("printk", buf, n, pokes=pokes)

    def g_WARN(self):
        f, p1 = self.string_arg()
        c, p2 = self.string_arg()
        return self._call("WARN", f, self.rng.getrandbits(32), c, self.rng.choice((0, 8, U32)),
                          pokes=p1 + p2)

    def g_BUG(self):
        f, p1 = self.string_arg()
        return self._call("BUG", f, self.rng.getrandbits(16), self.wild(), pokes=p1)

    def g_exit(self):
        return self._call("exit", self.rng.choice((0, 1, 255, U32)))

    def g_check(self):
        def post(ret):
            if ret and not self.percpu_dirty:
                return f"HC_CHECK returned {s32(ret)}: a checker failed"
            return None
        return self._call("check", post=post)


class PageCalls:
    def g_alloc_pages(self):
        if not self.free_slot():
            return self.g___free_pages()
        r = self.rng
        gfp, order = self.gfp(), self.order()
        nid = r.choice((U32, U32, U32, 0, 1, r.randrange(2, 64), r.getrandbits(32)))
        return self._call("alloc_pages", gfp, order, nid,
                          post=lambda ret: self._got_pages("pages", ret, self.page_pfn(ret), gfp, order))

    def g___get_free_pages(self):
        if not self.free_slot():
            return self.g_free_pages()
        gfp, order = self.gfp(), self.order()

        def post(ret):
            if ret == 0:
                return None
            lowmem_end = PAGE_OFFSET + (self.m.layout.max_low_pfn << PAGE_SHIFT)
            if not PAGE_OFFSET <= ret < lowmem_end or ret % PAGE_SIZE:
                return f"__get_free_pages returned 0x{ret:08x}, not a lowmem page address"
            return self._got_pages("gfp", ret, (ret - PAGE_OFFSET) >> PAGE_SHIFT, gfp, order)
        return self._call("__get_free_pages", gfp, order, post=post)

    def _got_pages(self, kind, ret, pfn, gfp, order):
        """Record a page block the allocator handed out, after checking it."""
        if ret == 0:
            return None
        if pfn is None:
            return f"{kind}: returned 0x{ret:08x}, not a struct page"
        if order >= 11:
            return f"{kind}: an order-{order} request succeeded"
        if pfn % (1 << order) or pfn + (1 << order) > self.max_pfn:
            return f"{kind}: order-{order} block at pfn 0x{pfn:x} is not naturally aligned"
        zone = self.page_zone(pfn)
        zbits = gfp & 0xF
        if zbits in (0, GFP_MOVABLE_) and zone >= 2:
            return f"{kind}: gfp 0x{gfp:x} without GFP_HIGHMEM_ got a page in zone {zone}"
        if zbits == GFP_DMA_ and zone != 0:
            return f"{kind}: gfp 0x{gfp:x} with GFP_DMA_ got a page in zone {zone}"
        if self._refcount(pfn) != 1:
            return f"{kind}: new block at pfn 0x{pfn:x} has refcount {self._refcount(pfn)}"
        size = PAGE_SIZE << order
        o = self._new_obj(kind, ret, size=size, order=order, pfn=pfn,
                          extents=self.extents(pfn << PAGE_SHIFT, size))
        if gfp & GFP_ZERO_ and not self.patterns.zeroed(o):
            return f"{kind}: GFP_ZERO_ block at pfn 0x{pfn:x} is not zeroed"
        self.patterns.write(o)
        return None

    def g___free_pages(self):
        r = self.rng
        x = r.random()
        o = self.pick("pages", unpinned=True)
        if x < 0.55 and o:
            return self._call("__free_pages", o.handle, o.order, post=self._freed(o))
        if x < 0.65:
            d = self._double_free_target("pages")
            if d is not None:
                return self._call("__free_pages", d.handle, d.order)
        if x < 0.72 and o and o.order > 0:
            return self._call("__free_pages", o.handle, r.randrange(o.order), post=self.adapt(o, "smaller"))
        if x < 0.77 and o and o.order < 10:
            big = o.order + r.randrange(1, 3)
            extra = range(o.pfn + (1 << o.order), o.pfn + (1 << big))
            if all(p >= self.max_pfn or self._refcount(p) > 0 for p in extra):
                return self._call("__free_pages", o.handle, big, post=self.adapt(o, "larger"))
        if x < 0.9:
            pfn, order = r.randrange(self.max_pfn), r.choice((0, 0, 0, 1, 2, 5))
            if all(self._page_state_ok_to_free(p) for p in range(pfn, pfn + (1 << order))):
                return self._call("__free_pages", self.page_ptr(pfn), order)
        ptr, order = self.wild(), self.order()
        pfn = self.page_pfn(ptr)
        if pfn is not None and not self._page_state_ok_to_free(pfn):
            ptr |= 4
        return self._call("__free_pages", ptr, order)

    def g_free_pages(self):
        r = self.rng
        x = r.random()
        o = self.pick("gfp", unpinned=True)
        if x < 0.5 and o:
            addr = o.handle + (r.randrange(o.size) if r.random() < 0.2 else 0)
            return self._call("free_pages", addr, o.order, post=self._freed(o))
        if x < 0.6:
            d = self._double_free_target("gfp")
            if d is not None:
                return self._call("free_pages", d.handle, d.order)
        if x < 0.7:
            v = self.pick("vmalloc", "vmap", "ioremap")
            if v is not None:
                return self._call("free_pages", v.handle, r.choice((0, 1, 3)), post=self.adapt(v, "cross"))
        if x < 0.8:
            s = self.pick("slab")
            if s is not None:       # a slab page: Bad page state, not freed
                return self._call("free_pages", s.handle & ~(PAGE_SIZE - 1), 0, post=self.adapt(s, "cross"))
        addr = self.wild()
        if PAGE_OFFSET <= addr < PAGE_OFFSET + (self.max_pfn << PAGE_SHIFT):
            pfn = (addr - PAGE_OFFSET) >> PAGE_SHIFT
            if not self._page_state_ok_to_free(pfn):
                return self._call("free_pages", self.m.layout.vmalloc_end + 3, 0)
            return self._call("free_pages", addr, 0)
        return self._call("free_pages", addr, self.order())

    def _freed(self, o):
        def post(ret):
            self._drop(o)
            return None
        return post

    def _double_free_target(self, kind):
        """A block of ours that was freed and is still free (refcount 0): a true double free."""
        dead = [d for d in self.dead if d.kind == kind and d.pfn >= 0]
        if not dead:
            return None
        d = self.rng.choice(dead)
        span = range(d.pfn, d.pfn + (1 << d.order))
        if all(self._refcount(p) <= 0 for p in span) and not any(
                o.pfn >= 0 and o.pfn < span.stop and span.start < o.pfn + (1 << o.order) for o in self.objs):
            return d
        return None

    def g_page_address(self):
        o = self.pick("pages")
        ptr = o.handle if o is not None and self.rng.random() < 0.6 else \
            self.page_ptr(self.rng.randrange(self.max_pfn))
        if self.rng.random() < 0.2:
            ptr = self.wild()
        pfn = self.page_pfn(ptr)

        def post(ret):
            if pfn is None:
                return f"page_address(0x{ptr:08x}) of a non-page returned 0x{ret:08x}" if ret else None
            if not self.is_highmem(pfn) and ret != PAGE_OFFSET + (pfn << PAGE_SHIFT):
                return f"page_address(pfn 0x{pfn:x}) = 0x{ret:08x}"
            if self.is_highmem(pfn) and ret and not self.maps_to(ret, pfn << PAGE_SHIFT):
                return f"page_address(highmem pfn 0x{pfn:x}) = 0x{ret:08x}, which does not map it"
            return None
        return self._call("page_address", ptr, post=post)

    def g_nr_free_pages(self):
        return self._call("nr_free_pages",
                          self.rng.choice((U32, 0, 1, 2, 3, 4, 63, self.rng.getrandbits(32))))


class VmallocCalls:
    def _vmalloc_like(self, name, size, *more, zeroed=False):
        if not self.free_slot():
            return self.g_vfree()

        def post(ret):
            if ret == 0:
                return None
            vm = self.m.vmalloc
            if not vm.is_vmalloc_addr(ret) or ret % PAGE_SIZE:
                return f"{name}({size:#x}) returned 0x{ret:08x}, not a vmalloc address"
            npages = -(-size // PAGE_SIZE)
            if size == 0 or npages > self.max_pfn:
                return f"{name}({size:#x}) succeeded"
            pfns = []
            for i in range(npages):
                pfn = vm.vmalloc_to_pfn(ret + i * PAGE_SIZE)
                if pfn is None:
                    return f"{name}({size:#x}) = 0x{ret:08x}: page {i} is not mapped"
                pfns.append(pfn)
            if len(set(pfns)) != len(pfns):
                return f"{name}({size:#x}) = 0x{ret:08x} maps a page twice"
            step = max(1, len(pfns) // 24)
            o = self._new_obj("vmalloc", ret, size=size, pfns=tuple(pfns),
                              extents=[(p << PAGE_SHIFT, PAGE_SIZE) for p in pfns[::step]])
            if zeroed and not self.patterns.zeroed(o):
                return f"{name}({size:#x}) = 0x{ret:08x} is not zeroed"
            self.patterns.write(o)
            return None
        return self._call(name, size, *more, post=post)

    def g_vmalloc(self):
        return self._vmalloc_like("vmalloc", self.size())

    def g_vzalloc(self):
        return self._vmalloc_like("vzalloc", self.size(), zeroed=True)

    def g___vmalloc(self):
        gfp = self.gfp()
        return self._vmalloc_like("__vmalloc", self.size(), gfp, zeroed=bool(gfp & GFP_ZERO_))

    def g_vmalloc_node(self):
        r = self.rng
        return self._vmalloc_like("vmalloc_node", self.size(),
                                  r.choice((U32, 0, 1, 2, 64, r.getrandbits(32))))

    def _area_target(self, name, own_kind, cross_kinds):
        """An address for vfree/vunmap/iounmap: ours, another kind's, dead, mid-area, or wild."""
        r = self.rng
        x = r.random()
        o = self.pick(own_kind)
        if x < 0.55 and o:
            return o.handle, self._freed_area(o)
        if x < 0.65:
            c = self.pick(*cross_kinds)
            if c is not None:
                return c.handle, self.adapt(c, "cross")
        if x < 0.75:
            dead = [d for d in self.dead if d.kind in (own_kind,) + cross_kinds]
            if dead:
                d = r.choice(dead)
                if self.m.vmalloc.find_vm_area(d.handle & ~(PAGE_SIZE - 1)) is None:
                    return d.handle, None
        if x < 0.85 and o:
            off = r.choice((1, 4, PAGE_SIZE, r.randrange(1, max(2, o.size + PAGE_SIZE))))
            return o.handle + off, self.adapt(o, "mid-area")
        if x < 0.9:
            s = self.pick("slab", "gfp", "large")
            if s is not None:
                return s.handle, self.adapt(s, "cross")
        addr = self.wild()
        hit = [o for o in self.objs if o.kind in ("vmalloc", "vmap", "ioremap")
               and o.handle & ~(PAGE_SIZE - 1) <= addr < o.handle + max(o.size, 1) + PAGE_SIZE]
        return addr, (self.adapt(hit[0], "wild") if hit else None)

    def _freed_area(self, o):
        def post(ret):
            if not self._gone(o):
                return f"{o.kind} area 0x{o.handle:08x} still there after it was freed"
            self._drop(o)
            if o.kind == "vmap":
                self._unpin(o.pfns)
            return None
        return post

    def _unpin(self, pfns):
        for p in pfns:
            for o in self.objs:
                if o.pfn >= 0 and o.pfn <= p < o.pfn + (1 << o.order) and o.pins:
                    o.pins -= 1

    def g_vfree(self):
        addr, post = self._area_target("vfree", "vmalloc", ("vmap", "ioremap"))
        return self._call("vfree", addr, post=self._also_unpin(post))

    def g_vunmap(self):
        addr, post = self._area_target("vunmap", "vmap", ("vmalloc", "ioremap"))
        return self._call("vunmap", addr, post=self._also_unpin(post))

    def _also_unpin(self, post):
        """After a cross free, vmap areas that went away release their pages."""
        def wrapped(ret):
            problem = post(ret) if post is not None else None
            for o in [o for o in self.objs if o.kind == "vmap" and self._gone(o)]:
                self._drop(o)
                self._unpin(o.pfns)
            return problem
        return wrapped

    def g_vmap(self):
        if not self.free_slot():
            return self.g_vunmap()
        r = self.rng
        pages = [o for o in self.objs if o.kind in ("pages", "gfp")]
        pfns = []
        for o in r.sample(pages, min(len(pages), r.randrange(1, 6))):
            pfns += range(o.pfn, o.pfn + min(1 << o.order, 8))
        entries = [self.page_ptr(p) for p in pfns]
        clean = True
        if r.random() < 0.15 or not entries:
            bad = r.choice((0, self.wild(), self.memmap + 3))
            if self.page_pfn(bad) is not None:
                bad |= 2            # wild() may land on a real struct page
            entries.insert(r.randrange(len(entries) + 1), bad)
            clean = False
        count = len(entries)
        if r.random() < 0.1:
            count = r.choice((0, count + 1, 5000, U32, r.getrandbits(32)))
            clean = False
        cap = self.scratch_size // 4
        if count > cap:
            clean = None            # it reads past the scratch buffer: no verdict
        array = entries[:cap] + [0] * max(0, min(count, cap) - len(entries))
        flags = VM_MAP if r.random() < 0.8 else r.getrandbits(32) & ~VM_MAP_PUT_PAGES
        prot = 0x163 if r.random() < 0.8 else r.choice((0, 0x161, 0x173, r.getrandbits(12)))
        data = b"".join(e.to_bytes(4, "little") for e in array)
        extra = ()
        if self.m.pgtable.pae:       # pgprot_t's high word (NX) follows the caller's address
            extra = (0, r.choice((0, 0x80000000)))
        return self._call("vmap", self.scratch, count, flags, prot, *extra,
                          pokes=[(self.scratch_phys, data)],
                          post=lambda ret: self._vmapped(ret, pfns, clean, prot))

    def _vmapped(self, ret, pfns, clean, prot):
        if ret == 0:
            return None
        if clean is None:           # mapped whatever followed the buffer: ours to unmap
            self._new_obj("vmap", ret, size=PAGE_SIZE)
            return None
        if not clean:
            return f"vmap of a bad pages array or count returned 0x{ret:08x}"
        if prot & 1:
            for i, p in enumerate(pfns):
                if not self.maps_to(ret + i * PAGE_SIZE, p << PAGE_SHIFT):
                    return f"vmap = 0x{ret:08x}: page {i} does not map pfn 0x{p:x}"
        for p in pfns:
            for o in self.objs:
                if o.pfn >= 0 and o.pfn <= p < o.pfn + (1 << o.order):
                    o.pins += 1
        self._new_obj("vmap", ret, size=len(pfns) * PAGE_SIZE, pfns=tuple(pfns))
        return None

    def g_vmalloc_to_page(self):
        o = self.pick("vmalloc")
        if o is not None and self.rng.random() < 0.7:
            i = self.rng.randrange(len(o.pfns))
            want = self.page_ptr(o.pfns[i])
            return self._call("vmalloc_to_page", o.handle + i * PAGE_SIZE + self.rng.randrange(PAGE_SIZE),
                              post=lambda ret: None if ret == want else
                              f"vmalloc_to_page gave 0x{ret:08x}, want 0x{want:08x}")
        return self._call("vmalloc_to_page", self.wild())

    def g_ioremap(self):
        if not self.free_slot():
            return self.g_iounmap()
        r = self.rng
        devs = self.m.cfg.devices
        x = r.random()
        if x < 0.5 and devs:
            d = r.choice(devs)
            phys = d.base + r.randrange(d.size)
            size = r.choice((1, 4, PAGE_SIZE, d.size - (phys - d.base), r.randrange(1, 4 * PAGE_SIZE)))
        else:
            ram_end = max(rr.end for rr in self.m.cfg.ram)
            phys = r.choice((0, 0x9fc00, 0x9f000, 0xa0000, 0xc0000, 0xf0000, 0x100000, ram_end - PAGE_SIZE,
                             ram_end, 0xE0000000, 0xFEC00000, 0xFFFFF000, r.randrange(ram_end),
                             r.getrandbits(32)))
            size = r.choice((0, 1, PAGE_SIZE, 0x400, 1 << 20, U32, 0x80000000, r.getrandbits(32)))

        def post(ret):
            if ret == 0:
                return None
            if not self.m.vmalloc.is_vmalloc_addr(ret) or ret % PAGE_SIZE != phys % PAGE_SIZE:
                return f"ioremap(0x{phys:x}, {size:#x}) = 0x{ret:08x}"
            if not self.maps_to(ret & ~(PAGE_SIZE - 1), phys & ~(PAGE_SIZE - 1)):
                return f"ioremap(0x{phys:x}) = 0x{ret:08x} does not map phys 0x{phys:x}"
            self._new_obj("ioremap", ret, size=size)
            return None
        # 686-pae: resource_size_t's high word follows the caller's address (0 here:
        # the phys the oracle checks is the low word's)
        extra = (0, 0) if self.m.pgtable.pae else ()
        return self._call("ioremap", phys, size, *extra, post=post)

    def g_iounmap(self):
        r = self.rng
        if r.random() < 0.1:        # lowmem RAM: ignored as Linux ignores it
            o = self.pick("gfp", "slab")
            if o is not None:
                return self._call("iounmap", o.handle)
        addr, post = self._area_target("iounmap", "ioremap", ("vmalloc", "vmap"))
        return self._call("iounmap", addr, post=self._also_unpin(post))


class HighmemCalls:
    def _some_page(self):
        """A struct page * to map: one of ours (HighMem first), any page, or wild."""
        r = self.rng
        x = r.random()
        own = [o for o in self.objs if o.kind == "pages"]
        high = [o for o in own if self.is_highmem(o.pfn)]
        if x < 0.5 and (high or own):
            o = r.choice(high or own)
            k = r.randrange(1 << o.order)
            return o.handle + STRUCT_PAGE * k, o.pfn + k
        if x < 0.85:
            pfn = r.randrange(self.max_pfn)
            return self.page_ptr(pfn), pfn
        ptr = self.wild()
        return ptr, self.page_pfn(ptr)

    def _maps(self, what, pfn):
        def post(ret):
            if ret and pfn is None:
                return f"{what} of a non-page returned 0x{ret:08x}"
            if ret and not self.maps_to(ret & ~(PAGE_SIZE - 1), pfn << PAGE_SHIFT):
                return f"{what}(pfn 0x{pfn:x}) = 0x{ret:08x}, which does not map it"
            if ret and what == "kmap":
                self.kmaps[pfn] += 1
            return None
        return post

    def g_kmap(self):
        ptr, pfn = self._some_page()
        return self._call("kmap", ptr, post=self._maps("kmap", pfn))

    def g_kunmap(self):
        r = self.rng
        mapped = [p for p, n in self.kmaps.items() if n > 0]
        if mapped and r.random() < 0.7:
            pfn = r.choice(mapped)
            self.kmaps[pfn] -= 1
            return self._call("kunmap", self.page_ptr(pfn))
        ptr, _ = self._some_page()
        return self._call("kunmap", ptr)

    def g_kmap_atomic(self):
        ptr, pfn = self._some_page()
        return self._call("kmap_atomic", ptr, post=self._maps("kmap_atomic", pfn))

    def g_kmap_local_page(self):
        ptr, pfn = self._some_page()
        return self._call("kmap_local_page", ptr, post=self._maps("kmap_local_page", pfn))

    def _some_pfn(self):
        r = self.rng
        if r.random() < 0.85:
            pfn = r.randrange(self.max_pfn)
            return pfn, pfn
        w = r.choice((self.max_pfn, self.max_pfn + 1, 0x100000, U32, r.getrandbits(32)))
        return w, (w if w < self.max_pfn else None)    # a random word may be a real pfn

    def g_kmap_local_pfn(self):
        arg, pfn = self._some_pfn()
        return self._call("kmap_local_pfn", arg, post=self._maps("kmap_local_pfn", pfn))

    def g_kmap_atomic_pfn(self):
        arg, pfn = self._some_pfn()
        return self._call("kmap_atomic_pfn", arg, post=self._maps("kmap_atomic_pfn", pfn))

    def _unmap_local_target(self):
        r = self.rng
        depth = self.m.sched.kmap_local_idx
        x = r.random()
        if x < 0.65 and 0 < depth <= 16:
            return fix_to_virt(FIX_KMAP_BEGIN + depth - 1) + r.choice((0, 0, 8))
        if x < 0.8:
            return fix_to_virt(FIX_KMAP_BEGIN + r.randrange(16 * 2))
        if x < 0.9:
            return PAGE_OFFSET + r.randrange(self.m.layout.max_low_pfn << PAGE_SHIFT)
        return self.wild()

    def g_kunmap_atomic(self):
        return self._call("kunmap_atomic", self._unmap_local_target())

    def g_kunmap_local(self):
        return self._call("kunmap_local", self._unmap_local_target())

    def _fix_idx(self):
        r = self.rng
        if r.random() < 0.8:
            idx = r.randrange(END_OF_FIXED)
            return idx if not FIX_KMAP_BEGIN <= idx <= FIX_KMAP_END else 1
        return r.choice((END_OF_FIXED, END_OF_FIXED + 1, 0x10000, U32, r.getrandbits(32)))

    def g___set_fixmap(self):
        r = self.rng
        flags = r.choice((0x163, 0x161, 0x17b, 0, 0x173, r.getrandbits(12), r.getrandbits(32)))
        extra = (0, r.choice((0, 0x80000000))) if self.m.pgtable.pae else ()   # phys_hi, flags_hi
        return self._call("__set_fixmap", self._fix_idx(), self.wild(), flags, *extra)

    def g_clear_fixmap(self):
        return self._call("clear_fixmap", self._fix_idx())


class SchedCalls:
    def g___might_sleep(self):
        f, pokes = self.string_arg()
        return self._call("__might_sleep", f, self.rng.getrandbits(32), pokes=pokes)

    def g_preempt_count_sub(self):
        r = self.rng
        return self._call("preempt_count_sub", r.choice((1, 1, 2, 0x100, 0x200, 0x10000, 0x80000000, U32,
                                                         r.getrandbits(32))))

    def g_spin_bug(self):
        r = self.rng
        return self._call("spin_bug", r.choice((self.scratch, self.wild())), r.choice((1, 2, 0, 3, U32)))


class SlabCalls:
    def kmalloc_caches(self):
        sl = self.m.slab
        return [s.addr for row in sl.kmalloc_caches for s in row if s]

    def some_cache(self, own_only=False):
        """A struct kmem_cache *: ours, a kmalloc cache, a dead one, or a bogus pointer."""
        r = self.rng
        x = r.random()
        o = self.pick("cache")
        if x < 0.5 and o:
            return o.handle
        if x < 0.8 and not own_only:
            return r.choice(self.kmalloc_caches())
        if x < 0.88:
            dead = [d for d in self.dead if d.kind == "cache"]
            if dead and self.m.slab.cache_at(dead[-1].handle) is None:
                return dead[-1].handle
        s = self.pick("slab")
        if x < 0.94 and s is not None:
            return s.handle          # an object, not a cache
        return self.wild() | 1

    def g_kmem_cache_create(self):
        if not self.free_slot():
            return self.g_kmem_cache_destroy()
        r = self.rng
        name, pokes = self.string_arg() if r.random() < 0.2 else self.scratch_string(
            f"fuzz-{r.randrange(1000)}".encode())
        size = r.choice((r.randrange(1, 300), r.randrange(1, 9000), 8, 4096, 8192, 0, 1 << 22, (1 << 22) + 1,
                         U32, r.getrandbits(32)))
        align = r.choice((0, 0, 8, 64, 4096, 3, 24, 1 << 20, U32))
        flags = r.choice((0, 0, 0x2000, 0x100 | 0x400 | 0x800 | 0x10000, 0x400, 0x800, 0x4000, 0x20000,
                          0x80000, 0x40000 if r.random() < 0.05 else 0, r.getrandbits(32) & ~0x40000))
        ctor = 0 if r.random() < 0.9 else self.wild()

        def post(ret):
            if ret:
                s = self.m.slab.cache_at(ret)
                if s is None:
                    return f"kmem_cache_create returned 0x{ret:08x}, not a live cache"
                self._new_obj("cache", ret, size=s.object_size)
            return None
        return self._call("kmem_cache_create", name, size, align, flags, ctor, pokes=pokes, post=post)

    def g_kmem_cache_destroy(self):
        r = self.rng
        o = self.pick("cache")
        if o is not None and r.random() < 0.7:
            live = [s for s in self.objs if s.kind == "slab" and s.cache == o.handle]
            if r.random() < 0.7:     # empty it first: free its objects from the model's view
                for s in live:
                    return self._call("__slab_free", o.handle, s.handle, post=self._slab_freed(s))
            return self._call("kmem_cache_destroy", o.handle, post=self._destroyed(o, live))
        s = self.some_cache()
        if s in self.kmalloc_caches() or any(c.handle == s for c in self.objs):
            s = self.wild() | 2
        return self._call("kmem_cache_destroy", s)

    def _destroyed(self, o, live):
        def post(ret):
            if self._gone(o):
                if live:
                    return f"kmem_cache_destroy freed cache 0x{o.handle:08x} with {len(live)} live objects"
                self._drop(o)
            return None
        return post

    def g_kmem_cache_shrink(self):
        return self._call("kmem_cache_shrink", self.some_cache())

    def g_validate_slab_cache(self):
        s = self.some_cache()
        known = s in self.kmalloc_caches() or any(c.handle == s for c in self.objs if c.kind == "cache")

        def post(ret):
            if known and s32(ret) > 0 and not self.percpu_dirty:
                return f"validate_slab_cache(0x{s:08x}) found {ret} errors"
            return None
        return self._call("validate_slab_cache", s, post=post)

    def g___slab_alloc(self):
        if not self.free_slot():
            return self.g___slab_free()
        s = self.some_cache()
        gfp = self.gfp()

        def post(ret):
            if ret == 0:
                return None
            c = self.m.slab.cache_at(s)
            if c is None:
                return f"__slab_alloc(0x{s:08x}) of a non-cache returned 0x{ret:08x}"
            if not PAGE_OFFSET <= ret < PAGE_OFFSET + (self.m.layout.max_low_pfn << PAGE_SHIFT):
                return f"__slab_alloc({c.name}) returned 0x{ret:08x}, not lowmem"
            if any(o.kind == "slab" and o.handle == ret for o in self.objs):
                return f"__slab_alloc({c.name}) returned 0x{ret:08x}, which is live already"
            o = self._new_obj("slab", ret, size=c.object_size, cache=s,
                              extents=[(ret - PAGE_OFFSET, c.object_size)])
            self.patterns.write(o)
            return None
        return self._call("__slab_alloc", s, gfp, post=post)

    def _slab_freed(self, o):
        def post(ret):
            self._drop(o)
            self.last_slab_free = (o, self.result.calls)
            return None
        return post

    def g___slab_free(self, kfree=False):
        r = self.rng
        x = r.random()
        o = self.pick("slab")
        big = self.pick("large")
        if x < 0.1 and big is not None:
            return self._call("__slab_free", 0, big.handle, post=self._freed(big))
        if x < 0.6 and o:
            s = 0 if r.random() < 0.5 or not o.cache else o.cache
            return self._call("__slab_free", s, o.handle, post=self._slab_freed(o))
        last = self.last_slab_free
        if x < 0.7 and last is not None and last[1] == self.result.calls:
            d = last[0]                 # immediately again: SLUB's naive check catches it
            return self._call("__slab_free", r.choice((0, d.cache)), d.handle)
        if x < 0.75 and o:            # the wrong cache: freed to the right one (with a warning) or not
            c = r.choice(self.kmalloc_caches())
            return self._call("__slab_free", c, o.handle, post=self.adapt(o, "wrong cache"))
        if x < 0.85:                  # kfree of something not from kmalloc
            v = self.pick("vmalloc", "vmap", "ioremap", "pages", "gfp", "large")
            if v is not None:
                return self._call("__slab_free", 0, v.handle, post=self.adapt(v, "kfree cross"))
        x_ = self.wild()
        pfn = (x_ - PAGE_OFFSET) >> PAGE_SHIFT if x_ >= PAGE_OFFSET else -1
        if 0 <= pfn < self.max_pfn:
            flags = self.u32[self.mbase + (pfn * PAGE_WORDS) + W_FLAGS]
            head = self.u32[self.mbase + (pfn * PAGE_WORDS) + W_NEXT]
            if flags & ((1 << PG_slab) | (1 << PG_head)) or head & 1:
                x_ = self.m.layout.vmalloc_end + 16
        return self._call("__slab_free", r.choice((0, 0, self.some_cache())), x_)

    def g_kmalloc_large(self, size=None):
        if not self.free_slot():
            return self.g___slab_free()
        r = self.rng
        if size is None:
            size = r.choice((r.randrange(8193, 1 << 20), r.randrange(8193, 1 << 22), 1 << 22,
                             (1 << 22) + 1, 0, 1, 4096, U32, r.getrandbits(32)))
        gfp = self.gfp()

        def post(ret):
            if size == 0:
                return None if ret in (0, ZERO_SIZE_PTR) else f"kmalloc(0) = 0x{ret:08x}"
            if ret == 0:
                return None
            if size > 1 << 22:
                return f"kmalloc_large({size:#x}) succeeded"
            if not PAGE_OFFSET <= ret < PAGE_OFFSET + (self.m.layout.max_low_pfn << PAGE_SHIFT):
                return f"kmalloc({size:#x}) = 0x{ret:08x}, not lowmem"
            pfn = (ret - PAGE_OFFSET) >> PAGE_SHIFT
            kind = "large" if size > 8192 else "slab"
            o = self._new_obj(kind, ret, size=size, pfn=pfn if kind == "large" else -1,
                              extents=self.extents(ret - PAGE_OFFSET, size))
            self.patterns.write(o)
            return None
        return self._call("kmalloc_large", size, gfp, post=post)

    def g_kmalloc(self):
        if not self.free_slot():
            return self.g_kfree()
        call = self.g_kmalloc_large()
        r = self.rng
        if r.random() < 0.6:       # kmalloc's own sizes, mostly from the caches
            size = r.choice((r.randrange(1, 257), r.randrange(1, 8193), 0, 8192, 8193))
            call = self.g_kmalloc_large(size)
        return self._call("kmalloc", *call.args, post=call.post)

    def g_kfree(self):
        call = self.g___slab_free(kfree=True)
        return self._call("kfree", call.args[1], post=call.post)

    def g_ksize(self):
        o = self.pick("slab", "large")
        if o is not None and self.rng.random() < 0.7:
            return self._call("ksize", o.handle, post=lambda ret: None if ret >= o.size else
                              f"ksize(0x{o.handle:08x}) = {ret} < {o.size}")
        return self._call("ksize", self.wild())


def s32(v):
    return v - (1 << 32) if v & 0x80000000 else v


def ident(name):
    return re.sub(r"\W", "_", name)


def is_slab_call(name):
    return name in ("kmem_cache_create", "kmem_cache_destroy", "kmem_cache_shrink", "__slab_alloc",
                    "__slab_free", "kmalloc_large", "ksize", "validate_slab_cache")
