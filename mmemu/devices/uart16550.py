"""A 16550A UART on MMIO: what drivers/tty/serial/8250 drives.

Registers (offset << reg_shift from the window's base; reg_shift is an
option, 0 by default as for an 8250 with regshift 0):

  0  RBR (read) / THR (write); DLL when LCR.DLAB is set
  1  IER; DLM when LCR.DLAB is set
  2  IIR (read) / FCR (write)
  3  LCR        4  MCR        5  LSR        6  MSR        7  SCR

Transmitting never waits: LSR always has THRE|TEMT.  Bytes written to THR
become console lines: collected until a newline (a carriage return is
dropped) and then printed on the machine console with no prefix, where the
guest's printk lines go, since on a PC the serial port is the console.
``output`` keeps every byte, ``lines`` every finished line; flush() prints a
partial line.  feed(data) queues bytes for the guest to receive (LSR.DR,
RBR).  In loopback (MCR bit 4) THR goes to the receiver instead, as on the
chip.  Interrupts are not delivered (no interrupt controller is modelled);
IIR still reports what would be pending.
"""
from collections import deque

from mmemu.devices import device_option

UART_RX, UART_TX, UART_DLL = 0, 0, 0
UART_IER, UART_DLM = 1, 1
UART_IIR, UART_FCR = 2, 2
UART_LCR = 3
UART_MCR = 4
UART_LSR = 5
UART_MSR = 6
UART_SCR = 7

UART_LCR_DLAB = 0x80
UART_MCR_LOOP = 0x10
UART_LSR_DR = 0x01
UART_LSR_THRE = 0x20
UART_LSR_TEMT = 0x40
UART_IER_RDI = 0x01
UART_IER_THRI = 0x02
UART_IIR_NO_INT = 0x01
UART_IIR_THRI = 0x02
UART_IIR_RDI = 0x04
UART_IIR_FIFO_ENABLED = 0xC0
UART_FCR_ENABLE_FIFO = 0x01
UART_FCR_CLEAR_RCVR = 0x02
UART_MSR_CTS = 0x10
UART_MSR_DSR = 0x20
UART_MSR_DCD = 0x80
BASE_BAUD = 115200


class Uart16550:
    """One 16550A; see the module docstring for the register map."""

    model = "uart16550"

    def __init__(self, machine, cfg):
        self.machine = machine
        self.name = cfg.name
        self.reg_shift = device_option(machine, cfg, "reg_shift", 0, 0, 2,
                                       "a register spacing shift")
        self.rx = deque()
        self.output = bytearray()
        self.lines = []
        self._line = bytearray()
        self.ier = self.lcr = self.mcr = self.scr = self.fcr = 0
        self.dll, self.dlm = 1, 0           # 115200 baud
        self.thri_pending = False

    @property
    def baud(self):
        divisor = (self.dlm << 8) | self.dll
        return BASE_BAUD // divisor if divisor else 0

    # -- host side -----------------------------------------------------------
    def feed(self, data):
        """Queue bytes for the guest to read from RBR."""
        self.rx.extend(data.encode() if isinstance(data, str) else bytes(data))

    def flush(self):
        """Print a partial output line, if any."""
        if self._line:
            self._emit()

    # -- MMIO ----------------------------------------------------------------
    def read(self, offset, size):
        reg = (offset >> self.reg_shift) & 7
        dlab = self.lcr & UART_LCR_DLAB
        if reg == UART_RX:
            return self.dll if dlab else (self.rx.popleft() if self.rx else 0)
        if reg == UART_IER:
            return self.dlm if dlab else self.ier
        if reg == UART_IIR:
            return self._iir()
        if reg == UART_LSR:
            return UART_LSR_THRE | UART_LSR_TEMT | (UART_LSR_DR if self.rx else 0)
        if reg == UART_MSR:
            return self._msr()
        return {UART_LCR: self.lcr, UART_MCR: self.mcr, UART_SCR: self.scr}[reg]

    def write(self, offset, size, value):
        reg = (offset >> self.reg_shift) & 7
        value &= 0xFF
        dlab = self.lcr & UART_LCR_DLAB
        if reg == UART_TX:
            if dlab:
                self.dll = value
            else:
                self._transmit(value)
        elif reg == UART_IER:
            if dlab:
                self.dlm = value
            else:
                self.ier = value & 0x0F
                self.thri_pending = bool(self.ier & UART_IER_THRI)
        elif reg == UART_FCR:
            self.fcr = value & 0xC9
            if value & UART_FCR_CLEAR_RCVR:
                self.rx.clear()
        elif reg == UART_LCR:
            self.lcr = value
        elif reg == UART_MCR:
            self.mcr = value & 0x1F
        elif reg == UART_SCR:
            self.scr = value
        # LSR and MSR writes are ignored (factory test registers)

    # -- internals -------------------------------------------------------------
    def _iir(self):
        fifo = UART_IIR_FIFO_ENABLED if self.fcr & UART_FCR_ENABLE_FIFO else 0
        if self.ier & UART_IER_RDI and self.rx:
            return fifo | UART_IIR_RDI
        if self.thri_pending:
            self.thri_pending = False            # reading IIR clears THRI
            return fifo | UART_IIR_THRI
        return fifo | UART_IIR_NO_INT

    def _msr(self):
        if self.mcr & UART_MCR_LOOP:
            # loopback: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD
            m = self.mcr
            return ((m & 0x02) << 3) | ((m & 0x01) << 5) | ((m & 0x04) << 4) | ((m & 0x08) << 4)
        return UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS

    def _transmit(self, byte):
        if self.ier & UART_IER_THRI:
            self.thri_pending = True
        if self.mcr & UART_MCR_LOOP:
            self.rx.append(byte)
            return
        self.output.append(byte)
        if byte == 0x0A:
            self._emit()
        elif byte != 0x0D:
            self._line.append(byte)

    def _emit(self):
        line = self._line.decode("utf-8", "replace")
        self._line = bytearray()
        self.lines.append(line)
        rt = getattr(self.machine, "runtime", None)
        if rt is not None:
            rt.console_write(line + "\n")
        else:
            self.machine.log.printk(line)
