/*
 * regs_driver.c - drive pc-1g's register block regs0 (physical 0xfe001000).
 *
 * A made-up device: CTRL at 0x0, DATA at 0x4, STATUS at 0x8, SCRATCH at
 * 0xc.  The program does a fixed sequence of MMIO accesses of each width;
 * the host records every one (machine.devices["regs0"].log) and a test
 * compares the log with this sequence (direction, size, offset, value):
 *
 *   write 4 0x0 0x00000001   enable
 *   read  4 0x8 0x00000000   status
 *   write 4 0x4 0xcafef00d   data
 *   read  4 0x4 0xcafef00d
 *   write 2 0xc 0xbeef       scratch, low half
 *   write 1 0xe 0x5a         scratch, third byte
 *   read  4 0xc 0x005abeef
 *   write 4 0x0 0x00000000   disable
 */
#include <mmemu.h>

#define REGS0_PHYS	0xfe001000UL
#define REG_CTRL	0x0
#define REG_DATA	0x4
#define REG_STATUS	0x8
#define REG_SCRATCH	0xc

int main(void)
{
	void __iomem *regs = ioremap(REGS0_PHYS, 16);
	u32 status, data, scratch;

	if (!regs)
		return 1;
	writel(1, regs + REG_CTRL);			/* enable */
	status = readl(regs + REG_STATUS);
	writel(0xcafef00d, regs + REG_DATA);
	data = readl(regs + REG_DATA);
	writew(0xbeef, regs + REG_SCRATCH);
	writeb(0x5a, regs + REG_SCRATCH + 2);
	scratch = ioread32(regs + REG_SCRATCH);
	iowrite32(0, regs + REG_CTRL);			/* disable */
	pr_info("regs0: status %#x data %#x scratch %#x\n", status, data, scratch);
	iounmap(regs);
	return data == 0xcafef00d && scratch == 0x005abeef ? 0 : 2;
}
