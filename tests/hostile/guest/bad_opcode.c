/*
 * bad_opcode.c - an opcode the i686 CPU does not know (0f 04), in kernel
 * code, and the same in a user task.
 *
 * The task gets SIGILL and 6.1's "traps: badop[2] trap invalid opcode
 * ip:... sp:... error:0 in badop[...]" line; run_user() returns 128 + 4.
 * The kernel code's own is "invalid opcode: 0000 [#1]", an oops (139).
 */
#include <mmemu.h>
#include <mmemu/task.h>

static void __user_text bad(void)
{
	__asm__ volatile(".byte 0x0f, 0x04");
}

int main(void)
{
	long r = run_user("badop", bad);

	printk("run_user: %ld\n", r);
	if (r != 128 + 4)
		return 1;
	__asm__ volatile(".byte 0x0f, 0x04");
	printk("not reached\n");
	return 0;
}
