/*
 * slab_kzalloc.c - a tour of kzalloc(), kcalloc() and kmalloc_array().
 *
 * Shows: kzalloc() memory is zero even where a freed object left garbage;
 * kcalloc() zeroes n * size bytes; kmalloc_array() and kcalloc() return
 * NULL when n * size overflows size_t instead of allocating too little.
 *
 * Returns 0 when every check holds, else the number of the failed check.
 */
#include <mmemu.h>
#include <mmemu/slab.h>

static bool all_zero(const unsigned char *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

int main(void)
{
	unsigned char *p = kmalloc(128, GFP_KERNEL);
	unsigned int *v;

	if (!p)
		return 1;
	memset(p, 0xee, 128);
	kfree(p);				/* back on the cpu freelist ... */
	p = kzalloc(128, GFP_KERNEL);		/* ... and handed out again, zeroed */
	if (!p || !all_zero(p, 128))
		return 2;
	kfree(p);

	v = kcalloc(100, sizeof(*v), GFP_KERNEL);
	if (!v || !all_zero((unsigned char *)v, 400) || ksize(v) != 512)
		return 3;
	kfree(v);

	if (kcalloc(0x10000, 0x10001, GFP_KERNEL) != NULL)
		return 4;			/* 0x100010000 does not fit in size_t */
	if (kmalloc_array(0x40000000, 8, GFP_KERNEL) != NULL)
		return 5;
	v = kmalloc_array(10, sizeof(*v), GFP_KERNEL);
	if (!v || ksize(v) != 64)
		return 6;
	kfree(v);
	pr_info("kzalloc/kcalloc zero their memory; overflowing n * size gives NULL\n");
	return mmemu_check() ? 7 : 0;
}
