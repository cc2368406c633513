/*
 * mmemu/bug.h - BUG_ON, WARN_ON and friends (include/asm-generic/bug.h).
 *
 * Linux reaches its BUG/WARN handler through a ud2 and a __bug_table entry;
 * mmemu passes the same facts (file, line, flags) in a hypercall made from
 * the very function that checks, so the host's report names it as
 * "at prog.c:12 main+0x1c/0x80" the way Linux does.  Differs: the condition's
 * text travels too, and the host prints it.
 *
 * BUG() stops the program: the host ends the run on HC_BUG; should it ever
 * return, the ud2 that follows raises #UD as Linux's BUG() does.
 * WARN_ON(cond) reports and carries on; it evaluates to !!cond.
 */
#ifndef _MMEMU_BUG_H
#define _MMEMU_BUG_H

#include <mmemu/types.h>
#include <mmemu/compiler.h>
#include <mmemu/hypercall.h>

/* struct bug_entry flags (include/asm-generic/bug.h), passed with HC_WARN. */
#define BUGFLAG_WARNING		(1 << 0)
#define BUGFLAG_ONCE		(1 << 1)
#define BUGFLAG_DONE		(1 << 2)
#define BUGFLAG_NO_CUT_HERE	(1 << 3)	/* the guest already printed it */

#define CUT_HERE	"------------[ cut here ]------------\n"

static __always_inline __noreturn void __mmemu_bug(const char *file, int line,
						   const char *cond)
{
	hypercall3(HC_BUG, (unsigned long)file, (unsigned long)line,
		   (unsigned long)cond);
	__builtin_trap();	/* ud2, like Linux's BUG() */
}

static __always_inline void __mmemu_warn(const char *file, int line,
					 const char *cond, unsigned int flags)
{
	hypercall4(HC_WARN, (unsigned long)file, (unsigned long)line,
		   (unsigned long)cond, flags);
}

/* Prints CUT_HERE and the message, as __warn_printk() does (lib/bug.c). */
void __warn_printk(const char *fmt, ...) __printf(1, 2);

#define BUG()		__mmemu_bug(__FILE__, __LINE__, "")

#define BUG_ON(condition)						\
	do {								\
		if (unlikely(condition))				\
			__mmemu_bug(__FILE__, __LINE__, #condition);	\
	} while (0)

#define __WARN()	__mmemu_warn(__FILE__, __LINE__, "", BUGFLAG_WARNING)

#define WARN_ON(condition)						\
({									\
	int __ret_warn_on = !!(condition);				\
	if (unlikely(__ret_warn_on))					\
		__mmemu_warn(__FILE__, __LINE__, #condition,		\
			     BUGFLAG_WARNING);				\
	unlikely(__ret_warn_on);					\
})

#define WARN(condition, format, ...)					\
({									\
	int __ret_warn_on = !!(condition);				\
	if (unlikely(__ret_warn_on)) {					\
		__warn_printk(format, ##__VA_ARGS__);			\
		__mmemu_warn(__FILE__, __LINE__, #condition,		\
			     BUGFLAG_WARNING | BUGFLAG_NO_CUT_HERE);	\
	}								\
	unlikely(__ret_warn_on);					\
})

#define WARN_ON_ONCE(condition)						\
({									\
	static bool __warned;						\
	int __ret_warn_once = !!(condition);				\
	if (unlikely(__ret_warn_once && !__warned)) {			\
		__warned = true;					\
		__mmemu_warn(__FILE__, __LINE__, #condition,		\
			     BUGFLAG_WARNING | BUGFLAG_ONCE);		\
	}								\
	unlikely(__ret_warn_once);					\
})

#define WARN_ONCE(condition, format, ...)				\
({									\
	static bool __warned;						\
	int __ret_warn_once = !!(condition);				\
	if (unlikely(__ret_warn_once && !__warned)) {			\
		__warned = true;					\
		WARN(1, format, ##__VA_ARGS__);				\
	}								\
	unlikely(__ret_warn_once);					\
})

#endif /* _MMEMU_BUG_H */
