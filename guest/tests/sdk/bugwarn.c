/*
 * bugwarn.c - SDK self-test: what WARN_ON, WARN and BUG_ON hand the host.
 *
 * Run by tests/test_build.py on a bare CPU with a fake host, which checks
 * the HC_WARN/HC_BUG arguments (file, line, condition, flags) and that each
 * hypercall is made from main itself.  The line numbers are part of the test.
 */
#include <mmemu.h>

int main(void)
{
	volatile int x = 1;
	int ret = WARN_ON(x == 1);		/* line 13: reported, ret = 1 */

	ret += WARN_ON(x == 2);			/* not reported */
	WARN(x, "value %d\n", x);		/* line 16: message first */
	BUG_ON(x + ret == 2);			/* line 17: stops here */
	return 99;
}
