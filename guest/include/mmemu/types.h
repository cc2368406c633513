/*
 * mmemu/types.h - the kernel's basic types (include/linux/types.h) for an
 * i386 guest.  Built on the compiler's freestanding headers only.
 */
#ifndef _MMEMU_TYPES_H
#define _MMEMU_TYPES_H

#include <stddef.h>		/* size_t, ptrdiff_t, NULL, offsetof */
#include <stdint.h>		/* uintptr_t, intptr_t */
#include <stdbool.h>		/* bool, true, false */
#include <stdarg.h>		/* va_list */

typedef uint8_t  u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int8_t   s8;
typedef int16_t  s16;
typedef int32_t  s32;
typedef int64_t  s64;

typedef int ssize_t;		/* __kernel_ssize_t on i386 */
#ifdef CONFIG_X86_PAE
typedef u64 phys_addr_t;	/* 686-pae: physical addresses up to 64 GiB and beyond */
#else
typedef u32 phys_addr_t;	/* 686: 32-bit physical addresses */
#endif
typedef phys_addr_t resource_size_t;
typedef unsigned long pgoff_t;
typedef unsigned int gfp_t;

typedef struct {
	int counter;
} atomic_t;

/* Read once: the value may be changed by the host between two reads. */
#define READ_ONCE(x)	(*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

static inline int atomic_read(const atomic_t *v)
{
	return READ_ONCE(v->counter);
}

/* atomic_long_t: a long on 32-bit (include/linux/atomic/atomic-long.h). */
typedef struct {
	long counter;
} atomic_long_t;

static inline long atomic_long_read(const atomic_long_t *v)
{
	return READ_ONCE(v->counter);
}

#define BITS_PER_LONG	32	/* asm/bitsperlong.h: i386 */
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define ALIGN(x, a)	(((x) + ((a) - 1)) & ~((__typeof__(x))(a) - 1))
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

/* What list_del() leaves in an entry (include/linux/poison.h; no POISON_POINTER_DELTA). */
#define LIST_POISON1	((void *)0x00000100)
#define LIST_POISON2	((void *)0x00000122)

/* struct list_head (include/linux/types.h): a circular doubly linked list. */
struct list_head {
	struct list_head *next, *prev;
};

#endif /* _MMEMU_TYPES_H */
