/*
 * uart_hello.c - a tiny 16550 UART driver: ioremap() the registers, set the
 * line up (115200 8N1, FIFOs on), and print a line through the UART.
 *
 * Like drivers/tty/serial/8250: wait for THRE in LSR before each byte of
 * THR, with readb()/writeb() on the ioremap()ed registers.  The UART is
 * pc-1g's uart0 at physical 0xfe000000; its output appears on the machine
 * console as a line of its own.  Returns 0 on success.
 */
#include <mmemu.h>

#define UART0_PHYS	0xfe000000UL

#define UART_TX		0	/* out: transmit buffer (DLAB=0) */
#define UART_DLL	0	/* out: divisor latch low (DLAB=1) */
#define UART_DLM	1	/* out: divisor latch high (DLAB=1) */
#define UART_IER	1
#define UART_FCR	2
#define UART_LCR	3
#define UART_MCR	4
#define UART_LSR	5
#define UART_SCR	7
#define UART_LCR_DLAB	0x80
#define UART_LCR_WLEN8	0x03
#define UART_LSR_THRE	0x20

static void __iomem *uart;

static void serial_putc(char c)
{
	while (!(readb(uart + UART_LSR) & UART_LSR_THRE))
		;
	writeb(c, uart + UART_TX);
}

static void serial_puts(const char *s)
{
	for (; *s; s++) {
		if (*s == '\n')
			serial_putc('\r');
		serial_putc(*s);
	}
}

int main(void)
{
	char line[80];

	uart = ioremap(UART0_PHYS, 8);
	if (!uart)
		return 1;
	writeb(0x5a, uart + UART_SCR);		/* is anybody there? */
	if (readb(uart + UART_SCR) != 0x5a)
		return 2;
	writeb(UART_LCR_DLAB, uart + UART_LCR);
	writeb(1, uart + UART_DLL);		/* 115200 baud */
	writeb(0, uart + UART_DLM);
	writeb(UART_LCR_WLEN8, uart + UART_LCR);	/* 8N1 */
	writeb(0x07, uart + UART_FCR);		/* FIFOs on and cleared */
	writeb(0x00, uart + UART_IER);		/* polled */
	snprintf(line, sizeof(line), "Hello from the 16550 at %#lx, mapped at %p\n",
		 UART0_PHYS, uart);
	serial_puts(line);
	iounmap(uart);
	return 0;
}
