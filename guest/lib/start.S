/*
 * start.S - the guest program's entry point.
 *
 * mmemu starts the program at _start with paging on and the kernel's
 * segments; nothing else is set up.  _start switches to the program's own
 * 16 KiB stack (in .bss, which the loader has zeroed), clears EBP so that
 * backtraces end here, copies the boot information into mem_map and
 * friends, runs main(), and hands main's return value to the host with
 * HC_EXIT.  The hlt after it ends the run should the host return.
 */
#include <mmemu/hypercall.h>

#define THREAD_SIZE	16384

	.section .text.mmemu, "ax", @progbits
	.globl	_start
	.type	_start, @function
_start:
	movl	$init_stack_end, %esp
	xorl	%ebp, %ebp
	call	mmemu_setup
	call	main
	movl	%eax, HC_MAILBOX_VIRT		/* mailbox word 0: the status */
	movl	HC_DOORBELL_VIRT + 4 * HC_EXIT, %eax	/* the doorbell: exit */
1:	hlt
	jmp	1b
	.size	_start, . - _start

/*
 * The program's stack, like Linux's init_stack (page aligned, THREAD_SIZE),
 * with a guard page below it that the host leaves unmapped: a stack that
 * overflows faults there ("BUG: TASK stack guard page was hit"), as with
 * CONFIG_VMAP_STACK, instead of running over the program's data.
 */
	.section .bss.init_stack, "aw", @nobits
	.balign	4096
	.globl	init_stack_guard
	.type	init_stack_guard, @object
init_stack_guard:
	.skip	4096
	.size	init_stack_guard, 4096
	.globl	init_stack
	.type	init_stack, @object
init_stack:
	.skip	THREAD_SIZE
	.size	init_stack, THREAD_SIZE
	.globl	init_stack_end
init_stack_end:

	.section .note.GNU-stack, "", @progbits
