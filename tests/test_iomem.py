"""views/iomem.py: /proc/iomem in kernel/resource.c's format, with mmemu's own
resources (the hypercall doorbell, the host's ranges) nested where they are."""
import re
import subprocess
import sys

from mmemu.config import load_config
from mmemu.views.iomem import iomem

LINE = re.compile(r"^( {2})*[0-9a-f]{8}-[0-9a-f]{8} : \S.*$")


class Target:
    def __init__(self, cfg):
        self.cfg = cfg


def test_iomem_of_the_qemu_pc_map():
    text = iomem(Target(load_config("qemu-pc-1g")))
    assert all(LINE.match(line) for line in text.splitlines())
    assert text.startswith("00000000-0009fbff : System RAM\n"
                           "  00005000-00005fff : mmemu hypercall doorbell\n"
                           "0009fc00-0009ffff : Reserved\n"
                           "000f0000-000fffff : Reserved\n"
                           "00100000-3ffdffff : System RAM\n"
                           "3ffe0000-3fffffff : Reserved\n")
    assert text.endswith("fffc0000-ffffffff : Reserved\n")


def test_iomem_nests_host_ranges_and_lists_devices(tmp_path):
    path = tmp_path / "h.yaml"
    path.write_text("memory: {size: 64M}\n"
                    "devices: [{name: uart0, model: uart16550, base: 0xfe000000, size: 4K}]\n"
                    "host: [{start: 8M, size: 1M, name: hobby}, {start: 0xfeb00000, size: 4K}]\n")
    lines = iomem(Target(load_config(str(path)))).splitlines()
    assert "  00800000-008fffff : host: hobby" in lines
    assert lines.index("  00800000-008fffff : host: hobby") == \
        lines.index("00100000-03fdffff : System RAM") + 1
    assert "fe000000-fe000fff : uart0" in lines and "feb00000-feb00fff : host: host" in lines


def test_iomem_command_and_snapshot(tmp_path):
    core = tmp_path / "core"
    run = [sys.executable, "-m", "mmemu"]
    r = subprocess.run(run + ["run", "guest/examples/hello.c", "--config", "pc-16m", "--dump",
                              str(core)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    live = subprocess.run(run + ["iomem", "--config", "pc-16m"], capture_output=True, text=True)
    saved = subprocess.run(run + ["iomem", "--snapshot", str(core)], capture_output=True,
                           text=True)
    assert live.returncode == saved.returncode == 0
    assert live.stdout == saved.stdout and "mmemu hypercall doorbell" in live.stdout
