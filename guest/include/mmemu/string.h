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

#endif /* _MMEMU_STRING_H */
