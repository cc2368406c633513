/* warn_on.c - WARN_ON() reports and carries on; returns how often it fired. */
#include <mmemu.h>

int main(void)
{
	int fired = 0, i;

	for (i = 0; i < 3; i++)
		if (WARN_ON(i == 1))
			fired++;
	printk(KERN_INFO "warn_on: carried on after %d warning(s)\n", fired);
	return fired;
}
