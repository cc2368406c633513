/*
 * null_deref.c - a NULL pointer write, which oopses like a kernel module's.
 *
 * Expect: "BUG: kernel NULL pointer dereference, address: 00000000",
 * "#PF: supervisor write access in kernel mode", "#PF: error_code(0x0002)
 * - not-present page", "EIP: poke+0x.../0x...", and a Call Trace through
 * main.  The program never returns.
 */
#include <mmemu.h>

/* noinline: keeps a frame of its own, so the trace shows poke <- main. */
static noinline void poke(int *p, int value)
{
	*p = value;
}

int main(void)
{
	/* volatile: the compiler cannot see the NULL and turn the store into ud2. */
	int *volatile target = NULL;

	pr_info("null_deref: writing 42 to %p\n", (void *)target);
	poke(target, 42);
	pr_err("null_deref: still running after the write - this is wrong\n");
	return 1;
}
