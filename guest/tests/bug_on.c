/* bug_on.c - BUG_ON() of a true condition stops the program with a report. */
#include <mmemu.h>

static int check(int pages)
{
	BUG_ON(pages > 2);
	return pages;
}

int main(void)
{
	printk(KERN_INFO "bug_on: checking\n");
	check(1);
	check(3);
	printk(KERN_INFO "bug_on: not reached\n");
	return 0;
}
