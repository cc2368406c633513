/*
 * user_tasks.c - user space under the 3G/1G split.
 *
 * Five tasks: one that writes and exits 3; one that reads a kernel address,
 * one that writes to its own (read-only) code, one that reads an unmapped
 * user address — each killed with a segfault while the kernel goes on —
 * and one whose syscall makes the kernel vmalloc and touch memory through
 * the task's own page directory (vmalloc_fault syncs the new PDE).
 * Exit status: the number of checks that failed.
 */
#include <mmemu.h>
#include <mmemu/task.h>

static const char hello_msg[] __user_rodata = "hello from ring 3\n";
static u32 secret = 0x5ec12e7;
static volatile u32 *kernel_word __user_data = &secret;

static void __user_text hello(void)
{
	user_write(hello_msg, sizeof(hello_msg) - 1);
	user_exit(3);
}

static void __user_text read_kernel(void)
{
	u32 v = *kernel_word;		/* supervisor page: SIGSEGV */

	user_exit((int)v);
}

static void __user_text write_kernel(void)
{
	*kernel_word = 0;		/* supervisor page: SIGSEGV */
	user_exit(0);
}

static void __user_text write_code(void)
{
	*(volatile u8 *)write_code = 0xc3;	/* read-only text: SIGSEGV */
	user_exit(0);
}

static void __user_text read_unmapped(void)
{
	user_exit(*(volatile int *)0x40000000);	/* nothing mapped: SIGSEGV */
}

static void __user_text ask_kernel(void)
{
	user_exit((int)user_syscall3(400, 7, 0, 0));
}

/* Runs in kernel mode on the task's page tables. */
static long my_syscall(long nr, long a, long b, long c)
{
	u32 *buf = vmalloc(8 << 20);	/* new page tables, made after the task's pgd */
	long r;

	if (!buf)
		return -12;
	buf[(4 << 20) / 4] = (u32)a;	/* faults once per missing PDE, then works */
	r = buf[(4 << 20) / 4] * 6;
	vfree(buf);
	return nr == 400 ? r : -1;
}

int main(void)
{
	int bad = 0;
	long r;

	r = run_user("hello", hello);
	printk(KERN_INFO "user_tasks: hello exited %ld\n", r);
	bad += r != 3;

	bad += run_user("rdkern", read_kernel) != 128 + SIGSEGV;
	bad += run_user("wrkern", write_kernel) != 128 + SIGSEGV;
	bad += secret != 0x5ec12e7;
	bad += run_user("wrcode", write_code) != 128 + SIGSEGV;
	bad += run_user("unmapped", read_unmapped) != 128 + SIGSEGV;

	set_user_syscall_handler(my_syscall);
	r = run_user("vmfault", ask_kernel);
	printk(KERN_INFO "user_tasks: vmfault exited %ld\n", r);
	bad += r != 42;

	printk(KERN_INFO "user_tasks: %d check(s) failed\n", bad);
	return bad;
}
