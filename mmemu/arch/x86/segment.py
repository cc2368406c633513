"""The GDT and the segment selectors of 32-bit Linux.

Models arch/x86/include/asm/segment.h (CONFIG_X86_32): the kernel runs with
CS = __KERNEL_CS, SS = __KERNEL_DS, DS = ES = __USER_DS, FS = __KERNEL_PERCPU;
user mode with __USER_CS / __USER_DS.  All segments are flat (base 0, 4 GiB)
except the per-cpu one, whose base is this CPU's per-cpu area.  Differs: no
TSS, LDT or double-fault task (the host takes every exception).
"""
import struct

GDT_PHYS = 0x2000          # gdt_page, in the first MiB, which Linux 6.1 reserves
GDT_ENTRIES = 32
GDT_ENTRY_KERNEL_CS = 12
GDT_ENTRY_KERNEL_DS = 13
GDT_ENTRY_DEFAULT_USER_CS = 14
GDT_ENTRY_DEFAULT_USER_DS = 15
GDT_ENTRY_PERCPU = 27

__KERNEL_CS = GDT_ENTRY_KERNEL_CS * 8            # 0x60
__KERNEL_DS = GDT_ENTRY_KERNEL_DS * 8            # 0x68
__USER_CS = GDT_ENTRY_DEFAULT_USER_CS * 8 + 3    # 0x73
__USER_DS = GDT_ENTRY_DEFAULT_USER_DS * 8 + 3    # 0x7b
__KERNEL_PERCPU = GDT_ENTRY_PERCPU * 8           # 0xd8

# access bytes: present, DPL, code/data, type
_CODE0, _DATA0, _CODE3, _DATA3 = 0x9A, 0x92, 0xFA, 0xF2
_FLAGS_4K_32 = 0xC                                # G=1, D/B=1


def gdt_entry(base: int, limit: int, access: int, flags: int = _FLAGS_4K_32) -> bytes:
    """One 8-byte segment descriptor (GDT_ENTRY_INIT)."""
    return struct.pack("<HHBBBB", limit & 0xFFFF, base & 0xFFFF, (base >> 16) & 0xFF,
                       access, ((limit >> 16) & 0xF) | (flags << 4), (base >> 24) & 0xFF)


def build_gdt(percpu_base: int) -> bytes:
    """The bytes of the boot CPU's GDT (gdt_page)."""
    gdt = bytearray(GDT_ENTRIES * 8)
    for idx, access, base in ((GDT_ENTRY_KERNEL_CS, _CODE0, 0), (GDT_ENTRY_KERNEL_DS, _DATA0, 0),
                              (GDT_ENTRY_DEFAULT_USER_CS, _CODE3, 0),
                              (GDT_ENTRY_DEFAULT_USER_DS, _DATA3, 0),
                              (GDT_ENTRY_PERCPU, _DATA0, percpu_base)):
        gdt[idx * 8:idx * 8 + 8] = gdt_entry(base, 0xFFFFF, access)
    return bytes(gdt)


KERNEL_SEGMENTS = {"cs": __KERNEL_CS, "ss": __KERNEL_DS, "ds": __USER_DS,
                   "es": __USER_DS, "fs": __KERNEL_PERCPU, "gs": 0}
USER_SEGMENTS = {"cs": __USER_CS, "ss": __USER_DS, "ds": __USER_DS,
                 "es": __USER_DS, "fs": __USER_DS, "gs": 0}
