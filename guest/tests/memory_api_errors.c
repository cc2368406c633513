/*
 * memory_api_errors.c - the memory API called wrongly, each call failing as
 * Linux's fails: the return value, and the kernel's report where it gives
 * one.  The program carries on after each but the last (a BUG, which ends
 * the task: status 134) and prints "FAIL <line>" for a wrong return value.
 *
 *   alloc_pages_exact(GFP_HIGHUSER): WARN_ON_ONCE, then lowmem anyway
 *   alloc_pages_exact(8 MiB): the page allocator's WARN (order >= MAX_ORDER), NULL
 *   ioremap_wc() of RAM in use: "ioremap on RAM at ...", NULL
 *   kvmalloc() of more than INT_MAX: WARN_ON_ONCE, NULL
 *   kvmalloc() of 8 MiB with GFP_NOWAIT: NULL, no report (no vmalloc fallback)
 *   put_page() of a page already freed: VM_BUG_ON_PAGE(page_ref_count(page) == 0),
 *   refused; the task dies there
 */
#include <mmemu.h>
#include <mmemu/slab.h>

static int failures;

#define EXPECT(cond)							\
	do {								\
		if (!(cond)) {						\
			failures++;					\
			pr_err("FAIL %d: %s\n", __LINE__, #cond);	\
		}							\
	} while (0)

int main(void)
{
	struct page *page;
	unsigned long ram;
	void *p, *q;

	p = alloc_pages_exact(PAGE_SIZE, GFP_HIGHUSER);
	EXPECT(p && !PageHighMem(virt_to_page(p)));
	q = alloc_pages_exact(PAGE_SIZE, GFP_KERNEL | __GFP_COMP);	/* warned once only */
	EXPECT(q && !PageCompound(virt_to_page(q)));
	free_pages_exact(p, PAGE_SIZE);
	free_pages_exact(q, PAGE_SIZE);
	EXPECT(alloc_pages_exact(8 << 20, GFP_KERNEL) == NULL);

	ram = __get_free_page(GFP_KERNEL);
	EXPECT(ioremap_wc(__pa(ram), PAGE_SIZE) == NULL);
	free_page(ram);

	EXPECT(kvmalloc(0x80000000UL, GFP_KERNEL) == NULL);
	EXPECT(kvmalloc(8 << 20, GFP_NOWAIT) == NULL);
	EXPECT(kmalloc_node(64, GFP_KERNEL, numa_node_id()) != NULL);

	page = alloc_page(GFP_KERNEL);
	__free_page(page);
	pr_info("memory_api_errors: %d failure(s) before the last\n", failures);
	put_page(page);				/* no reference left: VM_BUG_ON_PAGE */
	return 100;				/* not reached */
}
