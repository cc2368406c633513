/*
 * mmemu/string.h - the string functions the SDK provides (lib/string.c).
 * The compiler also emits calls to memset/memcpy/memmove/memcmp by itself.
 */
#ifndef _MMEMU_STRING_H
#define _MMEMU_STRING_H

#include <mmemu/types.h>

void *memset(void *s, int c, size_t n);
void *memcpy(void *dest, const void *src, size_t n);
void *memmove(void *dest, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t maxlen);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strcpy(char *dest, const char *src);

/*
 * The build's -ffreestanding implies -fno-builtin; as on i386 Linux
 * (arch/x86/include/asm/string_32.h) memcpy and memset are the compiler's
 * builtins again, so small fixed-size copies become plain moves.
 * lib/string.c, which defines them, sets __MMEMU_STRING_IMPL.
 */
#ifndef __MMEMU_STRING_IMPL
#define memcpy(t, f, n)		__builtin_memcpy(t, f, n)
#define memset(s, c, count)	__builtin_memset(s, c, count)
#endif

#endif /* _MMEMU_STRING_H */
