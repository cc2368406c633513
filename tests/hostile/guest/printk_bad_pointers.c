/*
 * printk_bad_pointers.c - %s given pointers that are no strings.
 *
 * 6.1's vsprintf checks a %s pointer first (check_pointer_msg()): NULL
 * prints "(null)", an address in the first page or an ERR_PTR() value
 * "(efault)"; the text around them is printed as usual and nothing oopses.
 */
#include <mmemu.h>

int main(void)
{
	printk("null=[%s]\n", (char *)0);
	printk("low=[%s] err=[%s] %d\n", (char *)0x10, (char *)-12L, 42);
	printk("padded=[%10s]\n", (char *)1);
	return 0;
}
