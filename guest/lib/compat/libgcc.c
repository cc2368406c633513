/*
 * libgcc.c - 64-bit division, the only runtime calls the compiler makes.
 *
 * An i386 compiler turns u64 / and % into calls to __udivdi3 and friends,
 * and under -mregparm=3 both clang and gcc pass their arguments in
 * registers.  The compilers' own runtimes (zig's compiler-rt, libgcc.a) are
 * built for the stack convention, so the build links neither (-nostdlib)
 * and compiles this file, with the program's flags, into every guest.
 * Shift-and-subtract: slow, small, and free of further calls.
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
