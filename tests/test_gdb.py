"""`mmemu run PROGRAM --gdb PORT`: the GDB remote-protocol server (runtime/gdbstub.py).

The gdb tests drive the real gdb against `mmemu run` in a subprocess (skipped
where gdb is not installed); the protocol tests speak the packets themselves,
so they run everywhere.
"""
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest

from mmemu.runtime.build import build

pytestmark = pytest.mark.flavours

GDB = shutil.which("gdb")
needs_gdb = pytest.mark.skipif(GDB is None, reason="gdb is not installed")
WAIT_S = 30


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(program, port):
    """mmemu run program --gdb port, once it waits for gdb: (process, port)."""
    proc = subprocess.Popen([sys.executable, "-m", "mmemu.cli", "run", program, "--gdb", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"gdb: waiting on localhost:(\d+)", line)
        if m:
            return proc, int(m.group(1))
        if not line and proc.poll() is not None:
            break
    proc.kill()
    pytest.fail(f"mmemu run --gdb did not start listening: {proc.communicate()}")


def _gdb(elf, port, *commands):
    args = [GDB, "-nx", "-batch", "-ex", "set architecture i386", "-ex", f"file {elf}",
            "-ex", f"target remote :{port}"]
    for c in commands:
        args += ["-ex", c]
    return subprocess.run(args, capture_output=True, text=True, timeout=WAIT_S).stdout


def _finish(proc):
    out, err = proc.communicate(timeout=WAIT_S)
    return proc.returncode, out, err


@needs_gdb
def test_gdb_break_main_then_run_to_end():
    # gdb stops at _start, breaks at main, disassembles at EIP, then lets hello.c finish.
    elf = build("guest/examples/hello.c")
    proc, port = _start("guest/examples/hello.c", _free_port())
    out = _gdb(elf, port, "break main", "continue", "info registers eip", "x/4i $eip", "continue")
    status, stdout, _ = _finish(proc)
    assert "_start ()" in out
    assert re.search(r"Breakpoint 1, main \(\) at .*hello\.c", out), out
    assert re.search(r"eip\s+0xc10[0-9a-f]{5}\s+0xc10[0-9a-f]{5} <main\+\d+>", out), out
    assert re.search(r"=> 0xc10[0-9a-f]{5} <main\+\d+>:\t\w+", out), out   # memory read by virtual address
    assert "exited normally" in out
    assert status == 0
    assert "Hello from a guest" in stdout


@needs_gdb
def test_gdb_oops_stops_with_sigsegv_then_ends():
    # null_deref.c writes through NULL in poke(): gdb sees SIGSEGV there, with a backtrace.
    elf = build("guest/tests/null_deref.c")
    proc, port = _start("guest/tests/null_deref.c", 0)
    out = _gdb(elf, port, "continue", "bt", "continue")
    status, _, _ = _finish(proc)
    assert "Program received signal SIGSEGV" in out
    assert re.search(r"#0 .*poke \(p=0x0", out), out
    assert re.search(r"#1 .* in main \(\)", out), out
    assert "Program terminated with signal SIGSEGV" in out
    assert status == 139


class _Client:
    """The client side of the GDB remote protocol, packets only."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
        self.buf = b""

    def send(self, payload):
        data = payload.encode()
        self.sock.sendall(b"$" + data + b"#%02x" % (sum(data) & 0xFF))

    def reply(self):
        while True:
            self.buf = self.buf.lstrip(b"+")
            end = self.buf.find(b"#")
            if self.buf.startswith(b"$") and 0 <= end <= len(self.buf) - 3:
                payload, self.buf = self.buf[1:end], self.buf[end + 3:]
                self.sock.sendall(b"+")
                return payload.decode()
            data = self.sock.recv(4096)
            if not data:
                return None
            self.buf += data

    def ask(self, payload):
        self.send(payload)
        return self.reply()


def test_gdb_protocol_memory_registers_interrupt_kill():
    # spin.c never returns: read and write memory and registers, continue, Ctrl-C, kill.
    from mmemu.config import load_config
    from mmemu.kernel.image import KernelImage
    cfg = load_config("pc-1g")                   # what _start() runs: built the same
    elf = build("guest/tests/spin.c", image=KernelImage.from_config(cfg.kernel), pae=cfg.pae)
    with open(elf, "rb") as f:
        image = f.read()
    proc, port = _start("guest/tests/spin.c", 0)
    gdb = _Client(port)
    try:
        assert gdb.ask("qSupported:multiprocess+").startswith("PacketSize=")
        assert gdb.ask("?") == "S05"
        regs = gdb.ask("g")
        eip = int.from_bytes(bytes.fromhex(regs[64:72]), "little")
        assert len(regs) == 16 * 8 and 0xC1000000 <= eip < 0xC1100000     # the kernel's text
        code = bytes.fromhex(gdb.ask(f"m{eip:x},8"))
        assert code in image                      # the loaded text, read by virtual address
        assert gdb.ask("m0,4") == "E14"           # the NULL page is not mapped
        assert gdb.ask("P0=78563412") == "OK"
        assert gdb.ask("p0") == "78563412"
        assert gdb.ask("Mc0001000,4:01020304") == "OK"   # the hypercall mailbox page
        assert gdb.ask("mc0001000,4") == "01020304"
        assert gdb.ask("s").startswith("S05")
        assert gdb.ask("p8") != regs[64:72]        # one instruction on
        gdb.send("c")
        time.sleep(0.3)
        gdb.sock.sendall(b"\x03")
        assert gdb.reply() == "S02"
        gdb.send("k")
    finally:
        gdb.sock.close()
    status, _, _ = _finish(proc)
    assert status == 137                          # killed, as by SIGKILL


def test_gdb_protocol_breakpoint_then_detach():
    # A Z0 breakpoint at main stops there; after D the guest runs to its end alone.
    from mmemu.runtime.loader import read_image
    main = read_image(build("guest/examples/hello.c")).lookup("main")
    proc, port = _start("guest/examples/hello.c", 0)
    gdb = _Client(port)
    try:
        assert gdb.ask(f"Z0,{main:x},1") == "OK"
        assert gdb.ask("c") == "S05"
        assert gdb.ask("p8") == main.to_bytes(4, "little").hex()
        assert gdb.ask("c").startswith("W00")     # runs on: main returns 0
    finally:
        gdb.sock.close()
    status, stdout, _ = _finish(proc)
    assert status == 0 and "Hello from a guest" in stdout


def test_gdb_protocol_detach_runs_to_end():
    proc, port = _start("guest/examples/hello.c", 0)
    gdb = _Client(port)
    try:
        assert gdb.ask("D") == "OK"
    finally:
        gdb.sock.close()
    status, stdout, _ = _finish(proc)
    assert status == 0 and "Hello from a guest" in stdout


def test_gdb_port_in_use_is_a_clear_error():
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "mmemu.cli", "run", "guest/examples/hello.c",
                            "--gdb", str(port)], capture_output=True, text=True, timeout=WAIT_S)
    assert r.returncode == 2
    assert f"gdb: cannot listen on 127.0.0.1:{port}" in r.stderr
    assert "Traceback" not in r.stderr


def test_gdb_protocol_interrupts_never_land_inside_a_hypercall():
    # hypercall_loop.c only takes and frees pages; Ctrl-C over and over while
    # it runs: every stop lands between two calls, so no call is served twice
    # (a page lost or freed twice would fail the program or report).
    proc, port = _start("guest/tests/hypercall_loop.c", 0)
    gdb = _Client(port)
    stops, reply = 0, None
    try:
        while True:
            gdb.send("c")
            time.sleep(0.01)
            try:
                gdb.sock.sendall(b"\x03")
            except OSError:                       # it ended and hung up meanwhile
                break
            reply = gdb.reply()
            if reply != "S02":
                break
            stops += 1
    finally:
        gdb.sock.close()
    status, stdout, _ = _finish(proc)
    assert stops >= 10, (stops, reply)
    assert status == 0 and "every page back" in stdout, stdout
    assert "BUG" not in stdout and "Bad page" not in stdout
