/*
 * libgcc.c - 64-bit division for compilers that bring no runtime library.
 *
 * An i386 compiler turns u64 / and % into calls to __udivdi3 and friends.
 * zig cc links its compiler-rt; a system `gcc -m32` on a 64-bit host usually
 * has no 32-bit libgcc.a, so the build adds this file for compilers other
 * than zig.  Shift-and-subtract: slow, small, and free of further calls.
 */
#include <mmemu.h>

unsigned long long __sdk __udivmoddi4(unsigned long long num, unsigned long long den,
				      unsigned long long *rem)
{
	unsigned long long quot = 0, bit = 1;

	if (den == 0)
		__builtin_trap();	/* #UD where the CPU would raise #DE */
	while (den < num && !(den & (1ULL << 63))) {
		den <<= 1;
		bit <<= 1;
	}
	while (bit) {
		if (num >= den) {
			num -= den;
			quot |= bit;
		}
		den >>= 1;
		bit >>= 1;
	}
	if (rem)
		*rem = num;
	return quot;
}

unsigned long long __sdk __udivdi3(unsigned long long num, unsigned long long den)
{
	return __udivmoddi4(num, den, NULL);
}

unsigned long long __sdk __umoddi3(unsigned long long num, unsigned long long den)
{
	unsigned long long rem;

	__udivmoddi4(num, den, &rem);
	return rem;
}

long long __sdk __divdi3(long long num, long long den)
{
	bool neg = (num < 0) != (den < 0);
	unsigned long long q = __udivmoddi4(num < 0 ? -(unsigned long long)num : num,
					    den < 0 ? -(unsigned long long)den : den,
					    NULL);

	return neg ? -(long long)q : (long long)q;
}

long long __sdk __moddi3(long long num, long long den)
{
	unsigned long long rem;

	__udivmoddi4(num < 0 ? -(unsigned long long)num : num,
		     den < 0 ? -(unsigned long long)den : den, &rem);
	return num < 0 ? -(long long)rem : (long long)rem;
}
