/*
 * 16_user_tasks.c - user space: the lower 3 GiB.
 *
 * A user task has its own page directory: the kernel half copied from
 * swapper_pg_dir, so every process sees the kernel at the same place, and
 * a user half of its own.  The kernel's pages are mapped without the User
 * bit: a task that reads them takes a page fault and, in Linux's words, a
 * segfault; the kernel goes on.
 */
#include <mmemu.h>
#include <mmemu/task.h>

static const char msg[] __user_rodata = "hello from user space\n";
static u32 kernel_secret = 42;
static volatile u32 *secret_ptr __user_data = &kernel_secret;

static void __user_text greet(void)
{
	user_write(msg, sizeof(msg) - 1);
	user_exit(0);
}

static void __user_text peek(void)
{
	user_exit((int)*secret_ptr);	/* a kernel address: SIGSEGV */
}

int main(void)
{
	long greeted = run_user("greet", greet);
	long peeked;

	pr_info("greet: exit status %ld\n", greeted);
	peeked = run_user("peek", peek);
	pr_info("peek:  exit status %ld (128 + SIGSEGV)\n", peeked);
	return greeted == 0 && peeked == 128 + SIGSEGV ? 0 : 1;
}
