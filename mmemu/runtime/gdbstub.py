"""A GDB remote-protocol server for guest programs (`mmemu run PROG --gdb PORT`).

The guest stops at its entry point, before main(), and waits for one gdb to
connect; gdb then reads registers and memory, sets breakpoints, steps and
continues, as with a kernel under QEMU's gdbstub:

    gdb -ex 'target remote :1234' -ex 'break main' -ex continue prog.elf

Memory is read and written by *virtual* address through swapper_pg_dir,
which is how gdb sees kernel code: the direct map, vmalloc and kmap
addresses all look as they do to the guest.  That is why this is not the
udbserver package (a Rust gdbstub around a Unicorn Uc): it accesses memory
with uc_mem_read()/uc_mem_write(), which take *physical* addresses in
Unicorn 2.1, so with paging on every read at 0xC1000000 fails on a 1 GiB
machine, and silently reads the wrong RAM on a 4 GiB one.

Served: ?, g, G, p, P, m, M, c, s, C, S (the signal ignored), Z0/z0 and Z1/z1 (both become a Unicorn
code hook on that one address, so a running guest pays nothing for them),
D, k, qSupported, qAttached, H, and Ctrl-C while the guest runs.  Anything
else gets the empty reply, which gdb reads as "not supported" (vCont, X and
watchpoints fall back or are refused that way).

A fault, BUG() or panic stops the guest with SIGSEGV, SIGABRT or SIGKILL
so its registers and memory can be looked at; the next resume ends the run.
The exit status reaches gdb as W (exit) or X (killed by a signal).
"""
import select
import socket
import sys
import threading

from mmemu.errors import UsageError

SIGINT, SIGTRAP, SIGABRT, SIGKILL, SIGSEGV, SIGXCPU = 2, 5, 6, 9, 11, 24
# gdb's i386 register numbers 0..15, the 'g' packet order.
GDB_REGS = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi",
            "eip", "eflags", "cs", "ss", "ds", "es", "fs", "gs")
SEGMENT_REGS = frozenset(("cs", "ss", "ds", "es", "fs", "gs"))
FAULT_SIGNALS = {"oops": SIGSEGV, "bug": SIGABRT, "panic": SIGKILL}
END_SIGNALS = {**FAULT_SIGNALS, "insn-budget": SIGXCPU, "time-budget": SIGXCPU, "halt": SIGXCPU,
               "error": SIGSEGV, "killed": SIGKILL}
MAX_READ = 2048                 # bytes per 'm' reply; PacketSize below allows it
MAX_PACKET = 64 * 1024          # a packet without its '#' by then is noise: dropped
MAX_BREAKPOINTS = 64            # code hooks a session may add: Unicorn tries each per block
SUPPORTED = "PacketSize=1100"   # hex: 4352 bytes


class GdbStub:
    """One gdb session driving one run of a guest program.

    >>> stub = GdbStub(machine.runtime, 1234)
    >>> err, seconds = stub.serve(entry, max_insns)   # as Engine.run()
    >>> stub.finish("exit", 0)
    """

    def __init__(self, runtime, port, host="127.0.0.1"):
        self.rt = runtime
        self.eng = runtime.machine.engine
        try:
            self.listener = socket.create_server((host, port))
        except OSError as e:
            raise UsageError(f"gdb: cannot listen on {host}:{port}: {e.strerror or e}") from None
        self.port = self.listener.getsockname()[1]
        self.conn = None
        self.breakpoints = {}        # address -> engine hook
        self.err, self.seconds = None, 0.0
        self._skip_bp = None         # the resume address: its breakpoint is already reported
        self._hit = None
        self._interrupted = False
        self._fault_reported = False

    # -- the session ----------------------------------------------------
    def serve(self, entry, max_insns=0):
        """Wait for gdb at entry, then run as it says: (error or None, seconds)."""
        self.eng.set_reg("eip", entry)
        self.max_insns = max_insns
        elf = getattr(self.rt.image, "path", None) or "PROGRAM.elf"
        print(f"mmemu: gdb: waiting on localhost:{self.port}; connect with\n"
              f"  gdb -ex 'target remote :{self.port}' {elf}", file=sys.stderr, flush=True)
        try:
            sock, _ = self.listener.accept()
        finally:
            self.listener.close()
        self.conn = _Connection(sock)
        try:
            self._session()
        finally:
            self._clear_breakpoints()
        return self.err, self.seconds

    def _session(self):
        while True:
            packet = self.conn.recv()
            if packet is None:                    # gdb went away: run on, as if detached
                return self._run_detached()
            kind = packet[:1]
            if kind in ("c", "s", "C", "S"):
                if not _resume_packet_ok(packet):
                    self.conn.send("E01")
                    continue
                stop = self._resume(packet)
                if stop is None:
                    return                        # the run is over; finish() tells gdb
                self.conn.send(stop)
            elif kind == "D":
                self.conn.send("OK")
                self.conn.close()
                return self._run_detached()
            elif kind == "k":
                self.conn.close()
                self.rt.stop("killed")
                return
            else:
                self.conn.send(self._answer(packet))

    def finish(self, reason, status):
        """Tell gdb how the run ended (W status, or X signal) and hang up."""
        if self.conn is None or self.conn.closed:
            return
        if reason == "exit":
            self.conn.send(f"W{status & 0xFF:02x}")
        else:
            self.conn.send(f"X{END_SIGNALS.get(reason, SIGKILL):02x}")
        self.conn.close()

    # -- running --------------------------------------------------------
    def _resume(self, packet):
        """c[addr], s[addr], Csig[;addr], Ssig[;addr]: the stop reply, or None
        when the run has ended.  A signal gdb passes on has no meaning here."""
        if self._fault_reported:
            return None
        kind, address = packet[0], packet[1:]
        if kind in "CS":
            address = address.partition(";")[2]
        if address:
            self.eng.set_reg("eip", int(address, 16) & 0xFFFFFFFF)
        step = kind in "sS"
        self._hit, self._interrupted = None, False
        self._skip_bp = self.eng.reg("eip")
        going = self._emulate(1) if step else self._continue()
        reason = self.rt.stop_reason
        if reason in FAULT_SIGNALS:
            self._fault_reported = True
            return f"S{FAULT_SIGNALS[reason]:02x}"
        if not going:
            return None
        if step or self._hit is not None:
            return f"S{SIGTRAP:02x}"
        return f"S{SIGINT:02x}" if self._interrupted else None

    def _continue(self):
        """Run until a breakpoint, Ctrl-C or the end, watching gdb for Ctrl-C."""
        done = threading.Event()
        watcher = threading.Thread(target=self._watch_for_interrupt, args=(done,), daemon=True)
        watcher.start()
        try:
            return self._emulate(self.max_insns)
        finally:
            done.set()
            watcher.join()

    def _emulate(self, count):
        """Run from EIP for up to count instructions (0: no limit), applying
        the runtime's mode switches; False once the guest can go no further."""
        pc = self.eng.reg("eip")
        while True:
            err, secs = self.eng.run(pc, 0xFFFFFFFF, 0, count)
            self.seconds += secs
            switch = self.rt.take_switch()
            if err is not None:
                self.err = err
                return False
            if self.rt.stop_reason is not None:
                return False
            if switch is None:
                return True
            pc = self.rt.apply_switch(switch)
            if pc is None:                          # the task died in it (a BUG, an oops)
                return False
            self.eng.set_reg("eip", pc)
            if count == 1 or self._interrupted:     # a Ctrl-C between two stretches
                return True

    def _run_detached(self):
        """gdb detached or hung up: the guest runs on to its end, unless it already has."""
        self._clear_breakpoints()
        if self.rt.stop_reason is None:
            self._emulate(self.max_insns)

    def _watch_for_interrupt(self, done):
        while not done.is_set():
            # A Ctrl-C that came in the same read as the packet before it is
            # already in the buffer.
            byte = b"\x03" if self.conn.take_interrupt() else self.conn.poll_byte(0.05)
            if byte == b"\x03":
                self._interrupted = True
                # The first request stops the guest at its next hypercall
                # (never inside one); the next ones stop it wherever it is.
                # A stop that lands before emu_start() begins is forgotten:
                # repeat it until the run is over.
                while not done.is_set():
                    self.eng.request_stop()
                    done.wait(0.05)
                return
            if byte == b"":
                return                             # gdb hung up; let the guest run on

    def _on_breakpoint(self, address):
        if address == self._skip_bp:
            self._skip_bp = None                   # resuming from it: run it once
            return
        self._hit = address
        self.eng.stop()

    # -- breakpoints ----------------------------------------------------
    def _set_breakpoint(self, address):
        if address not in self.breakpoints:
            if len(self.breakpoints) >= MAX_BREAKPOINTS:
                return "E01"
            self.breakpoints[address] = self.eng.hook_code_at(address, self._on_breakpoint)
        return "OK"

    def _clear_breakpoint(self, address):
        hook = self.breakpoints.pop(address, None)
        if hook is not None:
            self.eng.unhook(hook)
        return "OK"

    def _clear_breakpoints(self):
        for address in list(self.breakpoints):
            self._clear_breakpoint(address)

    # -- queries --------------------------------------------------------
    def _answer(self, packet):
        """The reply to a packet that does not resume the guest ("": not supported)."""
        if packet.startswith("qSupported"):
            return SUPPORTED
        if packet == "qAttached":
            return "1"                  # so gdb detaches on quit, and the guest runs on
        kind, body = packet[:1], packet[1:]
        handler = {
            "?": lambda: f"S{SIGTRAP:02x}",
            "g": self._read_registers,
            "G": lambda: self._write_registers(body),
            "p": lambda: self._read_register(int(body, 16)),
            "P": lambda: self._write_register(*body.split("=", 1)),
            "m": lambda: self._read_memory(*_addr_len(body)),
            "M": lambda: self._write_memory(body),
            "Z": lambda: self._breakpoint_packet(body, insert=True),
            "z": lambda: self._breakpoint_packet(body, insert=False),
            "H": lambda: "OK",
            "T": lambda: "OK",
        }.get(kind)
        if handler is None:
            return ""
        try:
            return handler()
        except (ValueError, OverflowError):     # a malformed packet: bad hex, missing field
            return "E01"

    def _breakpoint_packet(self, body, insert):
        """Z/z type,addr,kind: types 0 (software) and 1 (hardware) are the same here."""
        btype, address, _ = body.split(",", 2)
        if btype not in ("0", "1"):
            return ""                   # watchpoints: not supported
        address = int(address, 16) & 0xFFFFFFFF
        return self._set_breakpoint(address) if insert else self._clear_breakpoint(address)

    def _read_registers(self):
        return "".join(_le32(self.eng.reg(name)) for name in GDB_REGS)

    def _read_register(self, number):
        if not 0 <= number < len(GDB_REGS):
            return ""
        return _le32(self.eng.reg(GDB_REGS[number]))

    def _write_registers(self, body):
        values = [int.from_bytes(bytes.fromhex(body[i:i + 8]), "little")
                  for i in range(0, min(len(body), 8 * len(GDB_REGS)), 8)]
        for number, value in enumerate(values):
            if self._write_register(f"{number:x}", _le32(value)) != "OK":
                return "E01"
        return "OK"

    def _write_register(self, number, hexval):
        """Segment registers stay as they are: reloading one could fault."""
        number = int(number, 16)
        if not 0 <= number < len(GDB_REGS) or len(hexval) != 8:
            return "E01"
        name, value = GDB_REGS[number], int.from_bytes(bytes.fromhex(hexval), "little")
        if value == self.eng.reg(name):
            return "OK"
        if name in SEGMENT_REGS:
            return "E01"
        self.eng.set_reg(name, value)
        return "OK"

    def _read_memory(self, address, length):
        """As many bytes as are mapped from address on (page by page), or E14 (EFAULT).

        Device windows (ioremap) read as unmapped: a read must not touch a register.
        """
        out = bytearray()
        length = min(length, MAX_READ)
        while len(out) < length:
            va = (address + len(out)) & 0xFFFFFFFF
            chunk = min(length - len(out), 0x1000 - (va & 0xFFF))
            pa = self._phys(va)
            if pa is None:
                break
            out += self.rt.machine.pm.read(pa, chunk)
        return out.hex() if out else "E14"

    def _write_memory(self, body):
        where, data = body.split(":", 1)
        address, length = _addr_len(where)
        data = bytes.fromhex(data)[:length]
        done = 0
        while done < len(data):
            va = (address + done) & 0xFFFFFFFF
            pa = self._phys(va)
            if pa is None:
                return "E14"
            chunk = min(len(data) - done, 0x1000 - (va & 0xFFF))
            self.rt.machine.pm.write(pa, data[done:done + chunk])
            done += chunk
        self.eng.remove_code_cache(address, address + len(data))
        return "OK"

    def _phys(self, va):
        """va through the page tables the CPU has loaded (CR3), or None if unmapped or not RAM."""
        m = self.rt.machine
        pa = m.virt_to_phys(va, self.eng.reg("cr3") & (~0x1F if m.pgtable.pae else ~0xFFF))
        return pa if pa is not None and pa < m.pm.size else None


class _Connection:
    """Packets over one TCP connection: $payload#checksum, acknowledged with +."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.last = b""
        self.closed = False

    def recv(self):
        """The next packet's payload, or None when gdb has hung up."""
        while True:
            packet = self._take_packet()
            if packet is not None:
                return packet
            try:
                data = self.sock.recv(4096)
            except OSError:
                data = b""
            if not data:
                self.close()
                return None
            self.buf += data

    def _take_packet(self):
        start = self.buf.find(b"$")
        noise = self.buf if start < 0 else self.buf[:start]
        if b"-" in noise:                         # gdb asks for the last reply again
            self._sendall(self.last)
        if start < 0:
            self.buf = b""
            return None
        self.buf = self.buf[start:]
        end = self.buf.find(b"#")
        if end < 0 and len(self.buf) > MAX_PACKET:
            self.buf = b""                        # no packet gdb would send: drop it
            self._sendall(b"-")
            return None
        if end < 0 or len(self.buf) < end + 3:
            return None
        payload, checksum = self.buf[1:end], self.buf[end + 1:end + 3]
        self.buf = self.buf[end + 3:]
        if not _checksum_ok(checksum, payload):
            self._sendall(b"-")
            return None
        self._sendall(b"+")
        return payload.decode("latin-1")

    def send(self, payload):
        data = payload.encode("latin-1")
        self.last = b"$" + data + b"#%02x" % (sum(data) & 0xFF)
        self._sendall(self.last)

    def take_interrupt(self):
        """Whether gdb's Ctrl-C byte is waiting in the buffer (and take it)."""
        if b"\x03" not in self.buf:
            return False
        self.buf = self.buf.replace(b"\x03", b"", 1)
        return True

    def poll_byte(self, timeout):
        """One byte if gdb sends one within timeout (b"" if it hung up), else None."""
        if self.closed:
            return b""
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return None
        try:
            byte = self.sock.recv(1)
        except OSError:
            byte = b""
        if byte not in (b"\x03", b""):
            self.buf += byte
        return byte

    def _sendall(self, data):
        if self.closed:
            return
        try:
            self.sock.sendall(data)
        except OSError:
            self.close()

    def close(self):
        if not self.closed:
            self.closed = True
            self.sock.close()


def _addr_len(text):
    """"addr,length" in hex; a negative length is a malformed packet."""
    address, length = text.split(",", 1)
    address, length = int(address, 16) & 0xFFFFFFFF, int(length, 16)
    if length < 0:
        raise ValueError("negative length")
    return address, length


def _checksum_ok(checksum, payload):
    try:
        return int(checksum, 16) == sum(payload) & 0xFF
    except ValueError:
        return False


def _resume_packet_ok(packet):
    """c[addr], s[addr], Csig[;addr], Ssig[;addr] with hex where hex belongs."""
    kind, rest = packet[0], packet[1:]
    if kind in "CS":
        sig, _, rest = rest.partition(";")
        if not _is_hex(sig):
            return False
    return not rest or _is_hex(rest)


def _is_hex(text):
    try:
        int(text, 16)
    except ValueError:
        return False
    return not text.startswith("-")


def _le32(value):
    return (value & 0xFFFFFFFF).to_bytes(4, "little").hex()
