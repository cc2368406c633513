/* spin.c - a runaway guest: it never returns, so its budget must stop it. */
#include <mmemu.h>

int main(void)
{
	volatile unsigned long n = 0;

	for (;;)
		n++;
	return 0;
}
