/*
 * task.c - the kernel-mode side of user syscalls that the guest serves.
 *
 * The host enters here, in ring 0 on the task's page tables, with the
 * handler and its arguments on the stack (like entry_INT80_32 calling
 * do_int80_syscall_32); the result goes back with HC_SYSCALL_RETURN, which
 * resumes the task after its int $0x80.
 */
#include <mmemu.h>
#include <mmemu/task.h>

/* asmlinkage: the host leaves every argument on the stack (not -mregparm=3). */
__sdk __attribute__((noreturn, used)) asmlinkage
void __mmemu_syscall_entry(user_syscall_fn fn, long nr, long a, long b, long c)
{
	long ret = fn(nr, a, b, c);

	hypercall1(HC_SYSCALL_RETURN, (unsigned long)ret);
	__builtin_trap();
}

/* The host sets ESP to a frame (fn, nr, a, b, c) and jumps here. */
asm(".pushsection .text.mmemu, \"ax\"\n"
    ".globl __mmemu_syscall_trampoline\n"
    "__mmemu_syscall_trampoline:\n"
    "	pushl $0\n"			/* a return address for the frame chain */
    "	xorl %ebp, %ebp\n"
    "	jmp __mmemu_syscall_entry\n"
    /*
     * Into ring 3: the host puts an iret frame (eip, cs, eflags, esp, ss)
     * on the kernel stack and starts here, as a return to user mode does.
     */
    ".globl __mmemu_iret_to_user\n"
    "__mmemu_iret_to_user:\n"
    "	iret\n"
    ".popsection\n");
