/*
 * string.c - the string functions (lib/string.c, arch/x86/lib/memcpy_32.c).
 * The compiler emits calls to memset/memcpy/memmove/memcmp on its own, so
 * these must exist; the copies use `rep movsb`/`rep stosb`, which also keeps
 * the compiler from turning a byte loop back into a call to itself.
 */
#define __MMEMU_STRING_IMPL	/* the functions themselves, not the builtins */
#include <mmemu.h>

void * __sdk memset(void *s, int c, size_t n)
{
	void *d = s;

	__asm__ __volatile__("rep stosb"
			     : "+D"(d), "+c"(n)
			     : "a"(c)
			     : "memory");
	return s;
}

void * __sdk memcpy(void *dest, const void *src, size_t n)
{
	void *d = dest;

	__asm__ __volatile__("rep movsb"
			     : "+D"(d), "+S"(src), "+c"(n)
			     :
			     : "memory");
	return dest;
}

void * __sdk memmove(void *dest, const void *src, size_t n)
{
	void *d;

	if (dest <= src || (const char *)src + n <= (char *)dest)
		return memcpy(dest, src, n);
	/* Overlapping with dest above src: copy backwards. */
	d = (char *)dest + n - 1;
	src = (const char *)src + n - 1;
	__asm__ __volatile__("std\n\trep movsb\n\tcld"
			     : "+D"(d), "+S"(src), "+c"(n)
			     :
			     : "memory");
	return dest;
}

int __sdk memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *p = a, *q = b;

	for (; n; n--, p++, q++) {
		if (*p != *q)
			return *p < *q ? -1 : 1;
	}
	return 0;
}

size_t __sdk strlen(const char *s)
{
	const char *p = s;

	while (*p)
		p++;
	return p - s;
}

size_t __sdk strnlen(const char *s, size_t maxlen)
{
	const char *p = s;

	while (maxlen-- && *p)
		p++;
	return p - s;
}

int __sdk strcmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned char c1 = *a, c2 = *b;

		if (c1 != c2)
			return c1 < c2 ? -1 : 1;
		if (!c1)
			return 0;
	}
}

int __sdk strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		unsigned char c1 = *a, c2 = *b;

		if (c1 != c2)
			return c1 < c2 ? -1 : 1;
		if (!c1)
			break;
	}
	return 0;
}

char * __sdk strcpy(char *dest, const char *src)
{
	char *d = dest;

	while ((*d++ = *src++) != '\0')
		;
	return dest;
}
