"""The hostile corpus, the GDB port: a client that sends what gdb never would.

Bad checksums, bytes that never end a packet, malformed and out-of-range
packets: each gets the protocol's answer ('-' to resend, E01, or "" for an
unknown packet), never a traceback, and the session goes on; a client's
noise costs a bounded buffer.
"""
import re
import socket
import subprocess
import sys
import time

from mmemu.runtime.gdbstub import MAX_BREAKPOINTS

WAIT_S = 30


def start(program):
    proc = subprocess.Popen([sys.executable, "-m", "mmemu.cli", "run", program, "--gdb", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        m = re.search(r"gdb: waiting on localhost:(\d+)", proc.stderr.readline())
        if m:
            return proc, socket.create_connection(("127.0.0.1", int(m.group(1))),
                                                  timeout=WAIT_S)
    proc.kill()
    raise AssertionError(f"no gdb port: {proc.communicate()}")


def packet(payload):
    data = payload.encode("latin-1")
    return b"$" + data + b"#%02x" % (sum(data) & 0xFF)


class Raw:
    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def until(self, pred):
        while not pred(self.buf):
            data = self.sock.recv(65536)
            assert data, "the stub hung up"
            self.buf += data

    def ack(self):
        """The next '+' or '-' the stub sent."""
        self.buf = self.buf.lstrip(b"$")
        self.until(lambda b: b[:1] in (b"+", b"-"))
        c, self.buf = self.buf[:1], self.buf[1:]
        return c.decode()

    def ask(self, payload):
        self.sock.sendall(packet(payload) if isinstance(payload, str) else payload)
        assert self.ack() == "+"
        self.until(lambda b: b.startswith(b"$") and b.find(b"#") >= 0
                   and len(b) >= b.find(b"#") + 3)
        end = self.buf.find(b"#")
        reply, self.buf = self.buf[1:end].decode(), self.buf[end + 3:]
        self.sock.sendall(b"+")
        return reply


def test_a_hostile_gdb_client_gets_protocol_answers_and_the_run_goes_on():
    proc, sock = start("guest/examples/hello.c")
    gdb = Raw(sock)
    try:
        sock.sendall(b"$g#zz")                       # a checksum that is not hex
        assert gdb.ack() == "-"
        sock.sendall(b"$" + b"A" * (80 * 1024))      # no '#': dropped at 64 KiB
        assert gdb.ack() == "-"
        for bad, reply in [
            ("P0=" + "f" * 100, "E01"),               # a register value of 400 bits
            ("P99=00000000", "E01"), ("p-1", ""), ("pzz", "E01"),
            ("m-1,4", "E14"), ("m0,-4", "E01"), ("mzz", "E01"), ("m", "E01"),
            ("M-1000,4:01020304", "E14"), ("M0,4:zz", "E01"),
            ("Z0,-1,1", "OK"), ("z0,-1,1", "OK"), ("Z0,zz,1", "E01"), ("Z9,0,1", ""),
            ("Gzz", "E01"), ("czz", "E01"), ("Czz;0", "E01"), ("S05;-4", "E01"),
            ("\xff\xfe", ""),
        ]:
            got = gdb.ask(bad)
            assert got == reply or (reply == "" and got == ""), (bad, got)
        assert gdb.ask("?") == "S05"                 # the session is intact
        assert gdb.ask("c").startswith("W00")        # and the program runs to its end
    finally:
        sock.close()
    out, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0 and "Hello from a guest" in out
    assert "Traceback" not in err


def test_breakpoints_are_bounded():
    proc, sock = start("guest/examples/hello.c")
    gdb = Raw(sock)
    try:
        for i in range(MAX_BREAKPOINTS):
            assert gdb.ask(f"Z0,{0xd0000000 + i:x},1") == "OK"
        assert gdb.ask("Z0,e0000000,1") == "E01"
        assert gdb.ask("D") == "OK"
    finally:
        sock.close()
    out, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0 and "Traceback" not in err
