/* unknown_hypercall.c - a hypercall number nobody serves gets -ENOSYS and a
 * warning, and the program goes on. */
#include <mmemu.h>

int main(void)
{
	long r = (long)hypercall1(250, 7);

	printk(KERN_INFO "unknown_hypercall: got %ld\n", r);
	return r == -38 ? 0 : 1;
}
