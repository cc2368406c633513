"""Views: the machine's state as Linux prints it (/proc files, dmesg,
the page-table dump).  Views only read; they sit at the top of the chain."""


def show(machine, name):
    """The text of /proc/<name> for a machine."""
    from mmemu.views import procfs
    fn = getattr(procfs, name, None)
    if fn is None:
        from mmemu.errors import UsageError
        raise UsageError(f"no view named {name!r}")
    return fn(machine)
