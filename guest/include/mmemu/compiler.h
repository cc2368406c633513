/*
 * mmemu/compiler.h - attributes the SDK uses (include/linux/compiler*.h).
 */
#ifndef _MMEMU_COMPILER_H
#define _MMEMU_COMPILER_H

/*
 * Every SDK function lives in section .text.mmemu, which guest/link.ld
 * gathers between __mmemu_sdk_start and __mmemu_sdk_end.  The host uses that
 * range to tell SDK code from the program's own: a hypercall made from inside
 * the SDK is attributed to the first caller outside it (the way Linux passes
 * __builtin_return_address(0) as the "caller" of vmalloc).
 */
#define __sdk		__attribute__((section(".text.mmemu")))

/*
 * The calling convention is the i386 kernel's: the build passes -mregparm=3
 * (arch/x86/Makefile), so the first three integer arguments of every
 * function travel in EAX, EDX and ECX, the rest on the stack, and the
 * result comes back in EAX (EDX:EAX for 64 bits).  Code entered from
 * assembly or from the host with its arguments on the stack is declared
 * asmlinkage, as in arch/x86/include/asm/linkage.h.
 */
#define asmlinkage	__attribute__((regparm(0)))

#define __always_inline	inline __attribute__((always_inline))
#define noinline	__attribute__((noinline))
#define __noreturn	__attribute__((noreturn))
#define __printf(a, b)	__attribute__((format(printf, a, b)))
#define __used		__attribute__((used))
#define __aligned(x)	__attribute__((aligned(x)))
#define __maybe_unused	__attribute__((unused))

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

#define barrier()	__asm__ __volatile__("" : : : "memory")

#define __stringify_1(x)	#x
#define __stringify(x)		__stringify_1(x)

#endif /* _MMEMU_COMPILER_H */
