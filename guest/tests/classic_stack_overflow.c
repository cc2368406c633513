/*
 * classic_stack_overflow.c - recursion that runs off the 16 KiB stack.
 *
 * The stack ends at the guard page below init_stack: "BUG: TASK stack
 * guard page was hit at ... (stack is ...)", "stack guard page: 0000 [#1]",
 * status 139.
 */
#include <mmemu.h>

static int depth(int n)
{
	char buf[200];

	if (n > 100000)
		return 0;		/* far more than 16 KiB of frames */
	memset(buf, n, sizeof(buf));
	return depth(n + 1) + buf[n % 200];
}

int main(void)
{
	return depth(0);
}
