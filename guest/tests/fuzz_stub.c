/*
 * fuzz_stub.c - the guest half of mmemu's raw hypercall fuzzer (mmemu/harness/hostfuzz.py).
 *
 * It makes no decision of its own: it tells the host where its scratch
 * buffer is, then loops asking the host for the next call.  The host
 * writes that call's arguments straight into the mailbox words (any values
 * at all, which the C wrappers would never let through) and returns its
 * number; the stub reads that word of the doorbell (the hypercall) and hands
 * the result back with the next request.  A negative number ends the run.
 *
 * The stub never dereferences anything the host gives it, so whatever the
 * arguments, a fault here would be mmemu's doing; but for one step of the
 * corrupting driver (mmemu/harness/corruptfuzz.py): FUZZ_STORE, a store of
 * the guest's own into a kernel structure (mailbox word 1 at the address
 * in word 0), as a stray pointer in a driver would make it.
 */
#include <mmemu.h>

#define HC_FUZZ_NEXT	(HC_DEBUG_BASE + 0)	/* (previous result) -> nr or -1 */
#define HC_FUZZ_HELLO	(HC_DEBUG_BASE + 1)	/* (scratch, size) */
#define FUZZ_STORE	0x10000			/* not a hypercall: *(u32 *)mb[0] = mb[1] */

#define SCRATCH_SIZE	(4 * PAGE_SIZE)

/* Strings, struct page * arrays and such the host builds for its calls. */
static u32 scratch[SCRATCH_SIZE / 4] __attribute__((aligned(PAGE_SIZE)));

/* The doorbell read of hypercall nr (any word of the page): the mailbox is already full. */
static __always_inline unsigned long hypercall_nr(unsigned long nr)
{
	unsigned long ret;

	__asm__ __volatile__("movl %1, %0"
			     : "=a"(ret)
			     : "m"(HC_DOORBELL[nr])
			     : "memory");
	return ret;
}

int main(void)
{
	unsigned long ret;
	long nr;

	hypercall2(HC_FUZZ_HELLO, (unsigned long)scratch, SCRATCH_SIZE);
	ret = 0;
	for (;;) {
		nr = (long)hypercall1(HC_FUZZ_NEXT, ret);
		if (nr < 0)
			break;
		if (nr == FUZZ_STORE) {
			*(volatile u32 *)HC_MAILBOX[0] = HC_MAILBOX[1];
			ret = 0;
			continue;
		}
		ret = hypercall_nr(nr);
	}
	return 0;
}
