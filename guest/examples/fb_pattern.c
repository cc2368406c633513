/*
 * fb_pattern.c - draw a test pattern on the framebuffer.
 *
 * ioremap()s pc-1g's fb0 (640x480 xrgb8888 at physical 0xfd000000) and
 * draws eight vertical colour bars over the top half and a gradient
 * below, one writel() a pixel, as a simple fbdev driver's fillrect would.
 * The host saves the result as a PNG.  Returns 0 on success.
 */
#include <mmemu.h>

#define FB_PHYS		0xfd000000UL
#define FB_WIDTH	640
#define FB_HEIGHT	480
#define FB_STRIDE	(FB_WIDTH * 4)

static const u32 bars[8] = {		/* white yellow cyan green magenta red blue black */
	0xffffff, 0xffff00, 0x00ffff, 0x00ff00, 0xff00ff, 0xff0000, 0x0000ff, 0x000000,
};

static u32 pattern_pixel(int x, int y)
{
	if (y < FB_HEIGHT / 2)
		return bars[x * 8 / FB_WIDTH];
	/* red rises left to right, blue top to bottom */
	return ((x * 255 / (FB_WIDTH - 1)) << 16) |
	       (((y - FB_HEIGHT / 2) * 255 / (FB_HEIGHT / 2 - 1)) & 0xff);
}

int main(void)
{
	void __iomem *fb = ioremap(FB_PHYS, FB_STRIDE * FB_HEIGHT);
	int x, y;

	if (!fb)
		return 1;
	for (y = 0; y < FB_HEIGHT; y++)
		for (x = 0; x < FB_WIDTH; x++)
			writel(pattern_pixel(x, y), fb + y * FB_STRIDE + x * 4);
	if (readl(fb) != 0xffffff)		/* reads back like memory */
		return 2;
	pr_info("fb0: drew %dx%d pixels at %p\n", FB_WIDTH, FB_HEIGHT, fb);
	iounmap(fb);
	return 0;
}
