/*
 * mmemu/task.h - user-mode tasks below PAGE_OFFSET (the 3G/1G split).
 *
 * run_user() makes a task the way exec() would: a page directory from
 * pgd_alloc() (the kernel half copied from swapper_pg_dir, the user half
 * empty), the program's __user_text copied into read-only user pages at
 * 0x08048000, its __user_data into writable ones after it, and a stack below
 * 0xc0000000; then it drops to ring 3 at entry and returns, in the kernel,
 * when the task exits or is killed.  A task that touches kernel memory,
 * writes to its own code or reads an unmapped address is killed with
 * Linux's "segfault at" line and run_user() returns 128 + SIGSEGV.
 *
 * User code may only use what is mapped for it: mark every function it
 * calls __user_text, every variable it uses __user_data and every constant
 * string or table __user_rodata (no
 * kernel .rodata: avoid string literals and switch tables in user code).
 * It talks to the kernel with int $0x80, as i386 Linux programs do:
 * sys_exit (1), sys_write (4, to the console), sys_getpid (20), and any
 * other number goes to the handler set with set_user_syscall_handler(),
 * which runs in kernel mode on the task's page tables.
 */
#ifndef _MMEMU_TASK_H
#define _MMEMU_TASK_H

#include <mmemu/types.h>
#include <mmemu/hypercall.h>

#define __user_text	__attribute__((section(".user.text"), __noinline__, __used__))
#define __user_data	__attribute__((section(".user.data"), __used__))
#define __user_rodata	__attribute__((section(".user.rodata"), __used__))

#define __NR_exit	1
#define __NR_write	4
#define __NR_getpid	20
#define SIGSEGV		11

#define HC_RUN_USER		(HC_TASK_BASE + 0)	/* (name, entry, iret) -> status */
#define HC_SET_SYSCALL		(HC_TASK_BASE + 1)	/* (handler) */
#define HC_SYSCALL_RETURN	(HC_TASK_BASE + 2)	/* (result): back to the task */

typedef long (*user_syscall_fn)(long nr, long a, long b, long c);

void __mmemu_syscall_trampoline(void);
void __mmemu_iret_to_user(void);

/* Run entry as a user-mode task named name; its exit status, or 128 + signal. */
static inline long run_user(const char *name, void (*entry)(void))
{
	return (long)hypercall3(HC_RUN_USER, (unsigned long)name, (unsigned long)entry,
				(unsigned long)__mmemu_iret_to_user);
}

/* Serve the syscall numbers mmemu does not know with fn (kernel mode, task's mm). */
static inline void set_user_syscall_handler(user_syscall_fn fn)
{
	hypercall2(HC_SET_SYSCALL, (unsigned long)fn,
		   (unsigned long)__mmemu_syscall_trampoline);
}

/* From user mode: int $0x80 with the i386 syscall convention. */
static inline __attribute__((always_inline)) long user_syscall3(long nr, long a, long b, long c)
{
	long ret;

	asm volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
	return ret;
}

#define user_exit(status)	user_syscall3(__NR_exit, (status), 0, 0)
#define user_write(buf, len)	user_syscall3(__NR_write, 1, (long)(buf), (len))
#define user_getpid()		user_syscall3(__NR_getpid, 0, 0, 0)

#endif
