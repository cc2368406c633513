/*
 * hello.c - the smallest guest program: one printk at KERN_INFO, exit 0.
 *
 *   mmemu run guest/examples/hello.c
 */
#include <mmemu.h>

int main(void)
{
	pr_info("Hello from a guest at %px (main), mem_map at %px\n",
		(void *)main, (void *)mem_map);
	return 0;
}
