/*
 * util.c - the allocation helpers of mm/util.c (6.1): kstrdup() and
 * friends over kmalloc(), kvmalloc_node() and kvfree() over kmalloc and
 * vmalloc.
 */
#include <mmemu.h>
#include <mmemu/slab.h>

void * __sdk kmemdup(const void *src, size_t len, gfp_t gfp)
{
	void *p = kmalloc(len, gfp);

	if (p)
		memcpy(p, src, len);
	return p;
}

char * __sdk kmemdup_nul(const char *s, size_t len, gfp_t gfp)
{
	char *buf;

	if (!s)
		return NULL;
	buf = kmalloc(len + 1, gfp);
	if (buf) {
		memcpy(buf, s, len);
		buf[len] = '\0';
	}
	return buf;
}

char * __sdk kstrdup(const char *s, gfp_t gfp)
{
	if (!s)
		return NULL;
	return kmemdup(s, strlen(s) + 1, gfp);
}

char * __sdk kstrndup(const char *s, size_t max, gfp_t gfp)
{
	if (!s)
		return NULL;
	return kmemdup_nul(s, strnlen(s, max), gfp);
}

void * __sdk kvmalloc_node(size_t size, gfp_t flags, int node)
{
	gfp_t kmalloc_flags = flags;
	void *ret;

	/*
	 * A physically contiguous block first, which fragments memory less in
	 * the long run than the vmalloc fallback; but for more than a page,
	 * without the OOM path or failure warnings, since there is a fallback.
	 */
	if (size > PAGE_SIZE) {
		kmalloc_flags |= __GFP_NOWARN;
		if (!(kmalloc_flags & __GFP_RETRY_MAYFAIL))
			kmalloc_flags |= __GFP_NORETRY;
		kmalloc_flags &= ~__GFP_NOFAIL;	/* vmalloc implements nofail */
	}
	ret = kmalloc_node(size, kmalloc_flags, node);
	if (ret || size <= PAGE_SIZE)
		return ret;
	if (!(flags & __GFP_DIRECT_RECLAIM))	/* !gfpflags_allow_blocking() */
		return NULL;
	if (unlikely(size > 0x7fffffffUL)) {	/* INT_MAX */
		WARN_ON_ONCE(!(flags & __GFP_NOWARN));
		return NULL;
	}
	return __vmalloc_node(size, 1, flags, 0, node,
			      (unsigned long)__builtin_return_address(0));
}

void __sdk kvfree(const void *addr)
{
	if (is_vmalloc_addr(addr))
		__vfree(addr, (unsigned long)__builtin_return_address(0));
	else
		kfree(addr);
}
