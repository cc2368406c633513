"""Tests for mmemu.views.page_types: stable_page_flags() over mem_map and
page-types' summary, checked against counts made independently from the
struct pages (and, on a bootable Machine, against the page allocator)."""
import re

import pytest

from mmemu.mm.mmzone import PG_reserved
from mmemu.views import page_types as pt
from mmemu.views.page_types import KPF

from test_ptdump_fixtures import build_machine, free_pages

pytestmark = pytest.mark.flavours

SUMMARY_LINE = re.compile(r"^0x[0-9a-f]{16}\t[ 0-9]{9}\d [ 0-9]{7}\d  [A-Za-z0-9_]{45}\t[a-z0-9_,]*$")


@pytest.fixture(scope="module")
def m16(kernel_flavour):
    return build_machine("pc-16m")


def _reserved(m):
    return sum(1 for pfn in range(m.mem_map.nr_pages)
               if m.pm.u32[m.mem_map.page_word(pfn)] >> PG_reserved & 1)


def test_buddy_count_equals_the_free_blocks(m16):
    counts = pt.page_types_counts(m16)
    assert counts[1 << KPF["BUDDY"]] == free_pages(m16)


def test_raw_reserved_count_equals_pg_reserved(m16):
    counts = pt.page_types_counts(m16, raw=True)
    assert counts[1 << KPF["RESERVED"]] == _reserved(m16)
    assert sum(counts.values()) == m16.mem_map.nr_pages


def test_default_mode_hides_reserved_and_compound_bits(m16):
    counts = pt.page_types_counts(m16)
    assert all(not f & pt.KPF_HACKERS_BITS and not f & pt.BITS_COMPOUND for f in counts)
    assert counts[1 << KPF["SLAB"]] == 2               # head and tail of the slab
    assert counts[1 << KPF["PGTABLE"]] == 1


def test_raw_mode_shows_compound_pages(m16):
    counts = pt.page_types_counts(m16, raw=True)
    head, tail, slab = (1 << KPF[k] for k in ("COMPOUND_HEAD", "COMPOUND_TAIL", "SLAB"))
    assert counts[head] == 1 and counts[tail] == 3      # the order-2 compound page
    assert counts[slab | head] == 1 and counts[slab | tail] == 1


def test_summary_format(m16):
    lines = pt.page_types_text(m16).splitlines()
    assert lines[0] == ("             flags\tpage-count       MB  symbolic-flags"
                        "\t\t\tlong-symbolic-flags")
    for line in lines[1:-1]:
        assert SUMMARY_LINE.match(line), line
    assert lines[-1] == f"             total\t{4096:10d} {16:8d}"
    assert lines[1].startswith("0x0000000000000000\t")          # flags 0 has slot 0


def test_page_flag_names():
    assert len(pt.page_flag_name(0)) == 45
    flags = 1 << KPF["BUDDY"] | 1 << KPF["RESERVED"]
    assert pt.page_flag_name(flags)[10] == "B" and pt.page_flag_name(flags)[27] == "r"
    assert pt.page_flag_longname(flags) == "buddy,reserved"
    assert pt.parse_flag_names("buddy,0x80") == 1 << 10 | 0x80


def test_hash_order_is_page_types_slot_order():
    assert pt.hash_order([0x400, 0x80, 0, 0x80]) == [0, 0x80, 0x400]
    # 0x2400 hashes to slot 0x400, taken, so it probes on to 0x401
    assert pt.hash_order([0x400, 0x2400]) == [0x400, 0x2400]


def test_filters_and_lists(m16):
    text = pt.page_types_text(m16, bits_filters=[pt.parse_bits_filter("buddy")], list_mode=1,
                              summary=False)
    lines = text.splitlines()
    assert lines[0] == "offset\tlen\tflags"
    assert sum(int(line.split("\t")[1], 16) for line in lines[1:]) == free_pages(m16)
    first = pt.page_types_text(m16, ranges=[pt.parse_addr_range("0,4", 4096)], list_mode=2)
    assert first.splitlines()[1:5] == [f"{pfn:x}\t{pt.page_flag_name(0)}" for pfn in range(4)]
    assert "total\t         4" in first
    assert pt.parse_addr_range("0x10+0x20", 4096) == (0x10, 0x30)
    assert pt.parse_addr_range(",16", 4096) == (0, 16)
    assert pt.parse_bits_filter("slab,~buddy") == (1 << 7 | 1 << 10, 1 << 7)


def test_bad_specs_are_usage_errors():
    from mmemu.errors import UsageError
    with pytest.raises(UsageError, match="unknown flag name"):
        pt.parse_flag_names("nosuchflag")
    with pytest.raises(UsageError, match="addr-spec"):
        pt.parse_addr_range("x+y", 10)


def test_counts_agree_with_the_page_allocator():
    from mmemu.machine import Machine
    from mmemu.mm import page_alloc
    m = Machine("pc-16m", echo=False)
    counts = pt.page_types_counts(m, raw=True)
    buddy = sum(n for f, n in counts.items() if f & 1 << KPF["BUDDY"])
    assert buddy == page_alloc.nr_free_pages(m.mm)
    assert counts[1 << KPF["RESERVED"]] == _reserved(m)
