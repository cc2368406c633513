/*
 * mmemu/check.h - CHECK(n, cond) for guest test programs: when cond is
 * false, print which check failed and return n from the calling function
 * (main's return value is the exit status, so a test sees which check it was).
 */
#ifndef _MMEMU_CHECK_H
#define _MMEMU_CHECK_H

#include <mmemu/printk.h>

#define CHECK(n, cond)							\
	do {								\
		if (!(cond)) {						\
			pr_err("check %d failed: %s\n", (n), #cond);	\
			return (n);					\
		}							\
	} while (0)

#endif
