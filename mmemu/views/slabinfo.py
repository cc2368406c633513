"""/proc/slabinfo and the slab lines of /proc/meminfo.

Models mm/slab_common.c:slab_show()/cache_show() of Linux 6.1 with SLUB: the
version 2.1 header, then one line per cache, newest cache first::

    kmalloc-64            128    128     64   64    1 : tunables    0    0    0 : slabdata      2      2      0

SLUB has no tunables and no shared arrays, so those columns are 0;
active_objs counts the free objects of partial slabs only (objects on the
cpu freelist show as active), exactly as get_slabinfo() does.
"""  # noqa: E501 (a line of /proc/slabinfo, as it is)

HEADER = ("slabinfo - version: 2.1\n"
          "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
          " : tunables <limit> <batchcount> <sharedfactor>"
          " : slabdata <active_slabs> <num_slabs> <sharedavail>\n")


def cache_show(info):
    """One /proc/slabinfo line for a SlabInfo record."""
    return ("%-17s %6lu %6lu %6u %4u %4d : tunables %4u %4u %4u : slabdata %6lu %6lu %6lu"
            % (info.name, info.active_objs, info.num_objs, info.objsize, info.objperslab,
               info.pagesperslab, 0, 0, 0, info.active_slabs, info.num_slabs, 0))


def slabinfo(machine):
    """The text of /proc/slabinfo for machine."""
    return HEADER + "".join(cache_show(info) + "\n" for info in machine.slab.slabinfo())


def slab_meminfo(machine):
    """meminfo's Slab, SReclaimable and SUnreclaim, in kB (for its `extra` dict)."""
    return machine.slab.meminfo()
