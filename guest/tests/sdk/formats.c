/*
 * formats.c - SDK self-test: snprintf()/printk() formats.
 *
 * Run by tests/test_build.py on a bare CPU with a fake host, which compares
 * each printed line with what C's printf gives.  Not meant for a machine.
 * Exits with 10 * snprintf's would-be length + strlen of what was kept.
 */
#include <mmemu.h>

static char buf[128];

#define T(...)								\
	do {								\
		snprintf(buf, sizeof(buf), __VA_ARGS__);		\
		printk("%s\n", buf);					\
	} while (0)

int main(void)
{
	T("%d|%i|%u", -42, 7, 3000000000u);
	T("%x|%X|%#x|%08x|%-6x|", 0xbeef, 0xbeef, 255, 0x1234, 0xab);
	T("%lx|%lu|%ld", 0xdeadbeefUL, 4000000000UL, -5L);
	T("%llx|%llu|%lld", 0x123456789abcdef0ULL, 18446744073709551615ULL, -9000000000LL);
	T("%p|%px|%pS", (void *)0xc0100000, (void *)0xc0100000, (void *)0x1234);
	T("%s|%10s|%-10s|%.3s|%s", "abc", "right", "left", "truncate", (char *)NULL);
	T("%c%c|%5c|%-3c|%%", 'o', 'k', 'x', 'y');
	T("%zu|%zd|%zx", (size_t)123, (ssize_t)-3, (size_t)0xff);
	T("%5d|%-5d|%05d|%+d|% d|%.3d|%8.3d", 42, 42, -42, 7, 7, 5, -5);
	T("%*d|%-*d|%.*s", 6, 1, 4, 2, 2, "xyz");
	T("%hhx|%hd|%o|%#o|%d", 0x1ff, 70000, 8, 8, -2147483647 - 1);
	printk(KERN_WARNING "level %s\n", "kept");
	return snprintf(buf, 4, "%s", "overflow") * 10 + (int)strlen(buf);
}
