"""Core hypercalls: nop, exit, printk, BUG, WARN, and the consistency check."""
from mmemu.log import KERN_DEFAULT
from mmemu.runtime.abi import HC_BUG, HC_CHECK, HC_EXIT, HC_NOP, HC_PRINTK, HC_WARN

KERN_SOH = "\001"
PRINTK_MAX = 1024


def register(rt, table):
    """Serve the core calls of runtime rt (a GuestRuntime)."""
    table.register(HC_NOP, "nop", lambda: 0, 0)
    table.register(HC_EXIT, "exit", rt.guest_exit, 1)
    table.register(HC_PRINTK, "printk", lambda buf, n: guest_printk(rt, buf, n), 2)
    table.register(HC_BUG, "BUG", lambda f, line, cond: rt.guest_bug(f, line, cond), 3)
    table.register(HC_WARN, "WARN", lambda f, line, cond, flags: rt.guest_warn(f, line, cond, flags), 4)
    table.register(HC_CHECK, "check", rt.check_consistency, 0)


def guest_printk(rt, buf, n):
    """printk() from the guest: the formatted text, with its KERN_* prefix."""
    n = min(n, PRINTK_MAX)
    try:
        raw = rt.machine.read(buf, n)
    except Exception:
        rt.reporter.report(f"mmemu: printk buffer 0x{buf:08x} is not readable")
        return -14
    text = raw.decode("utf-8", "replace")
    rt.console_write(text)
    return n


def split_level(text, default=KERN_DEFAULT):
    """Strip a KERN_* prefix ("\\0016..."): (level, rest)."""
    if len(text) >= 2 and text[0] == KERN_SOH and text[1].isdigit():
        return int(text[1]), text[2:]
    if len(text) >= 2 and text[0] == KERN_SOH and text[1] == "c":
        return None, text[2:]          # KERN_CONT
    return default, text
