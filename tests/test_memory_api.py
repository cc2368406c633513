"""The memory API of a 6.1 driver author, from a guest program (guest/tests/
memory_api.c uses every name and checks Linux's results itself), with what
it prints compared to the host's own views of the same run: /proc/zoneinfo,
/proc/meminfo and /proc/vmallocinfo.  memory_api_errors.c makes the calls
fail the way Linux's fail, and the reports are checked.
"""
import re

import pytest

from mmemu.mm import page_alloc
from mmemu.runtime.build import find_guest_dir
from mmemu.testing import run_guest
from mmemu.views import show

pytestmark = pytest.mark.flavours

GUEST = find_guest_dir()


def zoneinfo_fields(text):
    """{(node, zone name): {field: int}} from /proc/zoneinfo."""
    zones, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"Node (\d+), zone +(\w+)", line)
        if m:
            cur = zones.setdefault((int(m.group(1)), m.group(2)), {})
            continue
        m = re.match(r"\s+(pages free|min|low|high|spanned|present|managed|start_pfn:)\s+(\d+)$",
                     line)
        if m and cur is not None:
            cur.setdefault(m.group(1).rstrip(":"), int(m.group(2)))
    return zones


def meminfo_kb(text, key):
    return int(re.search(rf"^{key}:\s+(\d+) kB$", text, re.M).group(1))


@pytest.fixture(scope="module", params=["pc-1g", "numa-2n", "pc-16m"])
def api_run(request, kernel_flavour):
    """memory_api.c on a machine with HighMem, one with two nodes, a tiny one."""
    return run_guest(GUEST / "tests/memory_api.c", config=request.param)


def test_memory_api_every_check_holds(api_run):
    assert (api_run.reason, api_run.status) == ("exit", 0), api_run.console
    assert "FAIL" not in api_run.console


def test_zones_seen_by_the_guest_are_zoneinfos(api_run):
    seen = {}
    for m in re.finditer(r"^zone (\d+) (\w+) start_pfn (\d+) spanned (\d+) present (\d+) "
                         r"managed (\d+) free \d+ min (\d+) low (\d+) high (\d+)$",
                         api_run.console, re.M):
        node, name, *nums = m.groups()
        seen[(int(node), name)] = dict(zip(("start_pfn", "spanned", "present", "managed",
                                            "min", "low", "high"), map(int, nums)))
    proc = zoneinfo_fields(show(api_run.machine, "zoneinfo"))
    populated = {key: fields for key, fields in proc.items() if fields.get("present")}
    assert set(seen) == set(populated)
    for key, fields in seen.items():
        assert {k: populated[key][k] for k in fields} == fields, key


def test_counters_agree_with_meminfo(api_run):
    m = api_run.machine
    meminfo = show(m, "meminfo")
    totals = re.search(r"^totals nodes (\d+) present (\d+) totalram_pages (\d+) "
                       r"totalhigh_pages (\d+)$", api_run.console, re.M)
    nodes, present, totalram, totalhigh = map(int, totals.groups())
    assert nodes == len([p for p in m.mm.node_data if p is not None])
    assert present == sum(z.present_pages for z in m.mm.zones)
    assert totalram * 4 == meminfo_kb(meminfo, "MemTotal")
    assert totalhigh * 4 == meminfo_kb(meminfo, "HighTotal")
    # The last line is printed with nothing allocated after it: the state at exit.
    final = int(re.search(r"^final nr_free_pages (\d+) ", api_run.console, re.M).group(1))
    assert final == page_alloc.nr_free_pages(m.mm)
    assert final * 4 == meminfo_kb(meminfo, "MemFree")
    si = re.search(r"^si_meminfo totalram (\d+) freeram (\d+) totalhigh (\d+) freehigh (\d+) "
                   r"mem_unit 4096$", api_run.console, re.M)
    assert (int(si.group(1)), int(si.group(3))) == (totalram, totalhigh)


def test_vmalloc_user_area_in_vmallocinfo(api_run):
    addr = int(re.search(r"^vmalloc_user 0x([0-9a-f]+)$", api_run.console, re.M).group(1), 16)
    line = next(ln for ln in show(api_run.machine, "vmallocinfo").splitlines()
                if ln.startswith(f"0x{addr:08x}-"))
    # 10000 bytes: three pages and the guard page; the caller is the program's function.
    assert re.fullmatch(rf"0x{addr:08x}-0x{addr + 4 * 4096:08x} +16384 "
                        r"check_vmalloc\+0x[0-9a-f]+/0x[0-9a-f]+ pages=3 vmalloc user( N0=3)?",
                        line), line


def test_memory_api_errors_report_as_linux(kernel_flavour):
    pa = 16 if kernel_flavour == "686-pae" else 8          # %pa: a phys_addr_t
    r = run_guest(GUEST / "tests/memory_api_errors.c", config="pc-1g", expect_report=[
        re.compile(r"^WARNING: CPU: 0 PID: 1 at guest/lib/page_alloc\.c:\d+ main\+", re.M),
        "WARNING: CPU: 0 PID: 1 at mm/page_alloc.c:5581 __alloc_pages",
        "VM_BUG_ON_PAGE(page_ref_count(page) == 0)",
        re.compile(rf"^ioremap on RAM at 0x[0-9a-f]{{{pa}}} - 0x[0-9a-f]{{{pa}}}$", re.M),
        re.compile(r"^WARNING: CPU: 0 PID: 1 at guest/lib/util\.c:\d+ main\+", re.M),
    ])
    assert (r.reason, r.status) == ("bug", 134), r.console   # put_page(): VM_BUG_ON_PAGE
    assert "memory_api_errors: 0 failure(s) before the last" in r.console
    assert "FAIL" not in r.console
    assert len(r.reports) == 5                  # alloc_pages_exact warned once, not twice
    assert "mmemu: WARN_ON(gfp & (__GFP_COMP | __GFP_HIGHMEM))" in r.reports[0]
    assert "mmemu: WARN_ON(!(flags & __GFP_NOWARN))" in r.reports[3]
    assert "kernel BUG at include/linux/mm.h:" in r.reports[4]
