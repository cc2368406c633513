/*
 * nx_exec.c - jump into a kmalloc'd buffer, as an exploit would after
 * writing code there.  On 686-pae every page but kernel text is NX, so the
 * fetch faults: "kernel tried to execute NX-protected page - exploit
 * attempt? (uid: 0)", then "#PF: supervisor instruction fetch in kernel
 * mode" and an oops.  On 686 there is no NX: the `ret` written into the
 * buffer runs and main returns 7.
 */
#include <mmemu.h>

int main(void)
{
	unsigned char *buf = kmalloc(64, GFP_KERNEL);
	void (*fn)(void) = (void (*)(void))buf;

	buf[0] = 0xc3;		/* ret */
	pr_info("nx_exec: calling the kmalloc'd buffer at %p\n", buf);
	fn();
	pr_info("nx_exec: the buffer's code ran: no NX on this kernel\n");
	kfree(buf);
	return 7;
}
