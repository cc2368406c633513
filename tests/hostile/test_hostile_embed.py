"""The hostile corpus, the embedding API: a host program's call gets the
kernel's answer for that input (NULL, a WARN, a refusal) or a documented
mmemu exception (UsageError, KernelOops), never an assert or an IndexError.
"""
import pytest

from mmemu import Machine
from mmemu.errors import KernelOops, MmemuError, UsageError
from mmemu.mm.gfp import GFP_KERNEL


@pytest.fixture
def m():
    return Machine("pc-16m", echo=False)


def test_kmalloc_of_a_negative_size_is_the_kernels_warn_and_null(m):
    # size_t: -5 is 0xfffffffb, far above KMALLOC_MAX_SIZE: 6.1 WARNs, NULL
    mark = m.log.mark()
    assert m.slab.kmalloc(-5) is None
    assert m.slab.kmalloc(-4096, GFP_KERNEL) is None
    text = m.log.text(mark)
    assert "WARNING: CPU: 0 PID: 1 at mm/page_alloc.c:" in text
    assert "kmalloc(4294967291) is above KMALLOC_MAX_SIZE" in text
    m.check()


def test_vmalloc_of_a_negative_size_exceeds_total_pages(m):
    mark = m.log.mark()
    assert m.vmalloc.vmalloc(-4096) is None
    assert m.vmalloc.vzalloc(-1) is None
    assert "vmalloc error: size 4294963200, exceeds total pages" in m.log.text(mark)
    m.check()


def test_sizes_wrap_as_in_c(m):
    assert m.slab.kmalloc_array(-1, 2) is None            # n * size overflows size_t
    assert m.slab.kcalloc(1 << 31, 4) is None
    assert m.slab.krealloc(0, 0) == 16                     # ZERO_SIZE_PTR
    assert m.slab.ksize(-1) == 0
    m.slab.kfree(-5)                                        # not a slab object: WARN, no change
    m.vmalloc.vfree(-4096)
    m.check()


def test_a_bad_cache_or_pfn_is_a_usage_error(m):
    with pytest.raises(UsageError, match="is not a live kmem_cache"):
        m.slab.kmem_cache_alloc(0x1234)
    with pytest.raises(UsageError, match="must be a string"):
        m.slab.kmem_cache_create(5, 64)
    with pytest.raises(UsageError, match="is not a page frame"):
        m.is_highmem_pfn(-5)
    with pytest.raises(UsageError, match="is not a kmap_local slot"):
        m.highmem.kmap_local_pte(-1)
    with pytest.raises(MmemuError, match="is not mapped"):
        m.read32(0x1000)


def test_machine_write_takes_bytes_only(m):
    with pytest.raises(TypeError, match="must be bytes"):
        m.write(0xC0100000, 1 << 40)                  # would be 1 TiB of zeros


def test_a_host_call_on_state_the_guest_broke_raises_kernel_oops(m):
    # the guest scribbled on kmalloc-64's cpu freelist; a host kmalloc follows
    # the pointer as the kernel would: the oops is reported, the call raises
    s = m.slab.find_cache("kmalloc-64")
    m.slab.kmalloc(64, GFP_KERNEL)                    # a cpu slab now
    m.pm.write32(s.cpu - 0xC0000000, 0x123)           # c->freelist = 0x123
    mark = m.log.mark()
    with pytest.raises(KernelOops, match=r"oops in get_freepointer\(\) at address 0x00000143"):
        m.slab.kmalloc(64, GFP_KERNEL)
    text = m.log.text(mark)
    assert "BUG: kernel NULL pointer dereference, address: 00000143" in text
    assert "mmemu: in get_freepointer(), called from " in text
    assert m.runtime.stop_reason is None               # a host call kills no task


def test_run_refuses_budgets_unicorn_cannot_take(m):
    for kw in ({"max_insns": -5}, {"timeout": float("nan")}, {"timeout": float("inf")},
               {"gdb_port": 99999}):
        with pytest.raises(UsageError):
            m.run("tests/hostile/guest/printk_bad_pointers.c", **kw)
