/*
 * mmemu/uaccess.h - reading memory that may not be mapped, without an oops.
 *
 * Models the kernel's exception table (arch/x86/mm/extable.c): an
 * instruction listed in __ex_table may fault; the fault handler then
 * resumes at its fixup instead of oopsing, and the caller sees -EFAULT.
 * get_kernel_nofault() and copy_from_kernel_nofault() are built on it, as in
 * mm/maccess.c.  Differs: table entries are absolute addresses.
 */
#ifndef _MMEMU_UACCESS_H
#define _MMEMU_UACCESS_H

#include <mmemu/types.h>

#define EFAULT 14

/* Read one 32-bit word at src into *dst; 0, or -EFAULT if it faulted. */
static inline long __get_kernel_nofault_u32(u32 *dst, const void *src)
{
	long err;
	u32 val;

	asm volatile("1:	movl (%2), %1\n"
		     "	xorl %0, %0\n"
		     "2:\n"
		     ".pushsection .fixup, \"ax\"\n"
		     "3:	movl %3, %0\n"
		     "	xorl %1, %1\n"
		     "	jmp 2b\n"
		     ".popsection\n"
		     ".pushsection __ex_table, \"a\"\n"
		     ".balign 4\n"
		     ".long 1b, 3b\n"
		     ".popsection\n"
		     : "=&r"(err), "=&r"(val)
		     : "r"(src), "i"(-EFAULT)
		     : "memory");
	*dst = val;
	return err;
}

#define get_kernel_nofault(val, ptr) ({					\
	u32 __gkn_v;							\
	long __gkn_e = __get_kernel_nofault_u32(&__gkn_v, (ptr));	\
	(val) = (__typeof__(val))__gkn_v;				\
	__gkn_e; })

/* Copy size bytes (a multiple of 4) from src; -EFAULT at the first fault. */
static inline long copy_from_kernel_nofault(void *dst, const void *src, size_t size)
{
	u32 *d = dst;
	const u8 *s = src;
	size_t i;

	for (i = 0; i < size; i += 4)
		if (__get_kernel_nofault_u32(&d[i / 4], s + i))
			return -EFAULT;
	return 0;
}

#endif
