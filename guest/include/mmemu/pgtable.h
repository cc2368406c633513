/*
 * mmemu/pgtable.h - the kernel page tables, read by guest code
 * (arch/x86/include/asm/pgtable*.h, pgtable_types.h, pgtable-2level*.h,
 * pgtable-3level*.h; include/asm-generic/pgtable-nop4d.h, -nopud.h,
 * -nopmd.h; arch/x86/mm/pat/set_memory.c's lookup_address(); Linux 6.1).
 *
 * swapper_pg_dir is in guest memory and the CPU walks it; so can a guest:
 *
 *	pgd_t *pgd = pgd_offset_k(addr);
 *	p4d_t *p4d = p4d_offset(pgd, addr);
 *	pud_t *pud = pud_offset(p4d, addr);
 *	pmd_t *pmd = pmd_offset(pud, addr);
 *	if (pmd_none(*pmd) || pmd_large(*pmd)) ...	// no table, or a 4 MiB page
 *	pte_t *pte = pte_offset_kernel(pmd, addr);
 *
 * or in one call, lookup_address(addr, &level) (the entry and its level).
 * The 686 kernel has two levels: a 1024-entry page directory of 4-byte
 * entries and 1024-entry page tables; p4d, pud and pmd are folded into the
 * pgd as asm-generic's pgtable-nop4d/nopud/nopmd.h fold them, so the walk
 * above is the same code on every configuration.  Build with
 * -DCONFIG_X86_PAE for the 686-pae layout (three levels: a 4-entry PDPT
 * at the pud level, 512-entry PMDs and PTEs of 8 bytes; p4d folded into
 * the pgd, pud into the p4d) and the same callers walk it.
 */
#ifndef _MMEMU_PGTABLE_H
#define _MMEMU_PGTABLE_H

#include <mmemu/types.h>
#include <mmemu/compiler.h>
#include <mmemu/hypercall.h>
#include <mmemu/page.h>

/* -- entry bits (pgtable_types.h) ---------------------------------------- */
#define _PAGE_BIT_PRESENT	0
#define _PAGE_BIT_RW		1
#define _PAGE_BIT_USER		2
#define _PAGE_BIT_PWT		3
#define _PAGE_BIT_PCD		4
#define _PAGE_BIT_ACCESSED	5
#define _PAGE_BIT_DIRTY		6
#define _PAGE_BIT_PSE		7	/* a 4 MiB (2 MiB under PAE) page */
#define _PAGE_BIT_PAT		7	/* in a 4 KiB PTE */
#define _PAGE_BIT_GLOBAL	8

#ifndef _MMEMU_PGPROT_T
#define _MMEMU_PGPROT_T
#ifdef CONFIG_X86_PAE
typedef u64 pgprotval_t;
#else
typedef unsigned long pgprotval_t;
#endif
typedef struct { pgprotval_t pgprot; } pgprot_t;
#define __pgprot(x)		((pgprot_t){ (x) })
#define pgprot_val(x)		((x).pgprot)
#define _PAGE_PRESENT		0x001
#define _PAGE_RW		0x002
#define _PAGE_USER		0x004
#define _PAGE_PWT		0x008
#define _PAGE_PCD		0x010
#define _PAGE_ACCESSED		0x020
#define _PAGE_DIRTY		0x040
#define _PAGE_PSE		0x080
#define _PAGE_PAT		0x080
#define _PAGE_GLOBAL		0x100
#define _PAGE_PROTNONE		_PAGE_GLOBAL	/* only when not present */
#define _PAGE_KNL_ERRATUM_MASK	(_PAGE_DIRTY | _PAGE_ACCESSED)
#define __PAGE_KERNEL		((pgprotval_t)0x163 | _PAGE_NX)	/* P RW A D G (NX) */
#define __PAGE_KERNEL_RO	((pgprotval_t)0x161 | _PAGE_NX)
#define __PAGE_KERNEL_NOCACHE	((pgprotval_t)0x173 | _PAGE_NX)	/* | PCD: UC_MINUS */
#define __PAGE_KERNEL_LARGE	((pgprotval_t)0x1e3 | _PAGE_NX)	/* | PSE */
#define _KERNPG_TABLE		0x063	/* a kernel page table: P RW A D */
#define PAGE_KERNEL		__pgprot(__PAGE_KERNEL)
#define PAGE_KERNEL_RO		__pgprot(__PAGE_KERNEL_RO)
#define PAGE_KERNEL_NOCACHE	__pgprot(__PAGE_KERNEL_NOCACHE)
/*
 * What __supported_pte_mask leaves of _PAGE_NX on the CPU: every
 * protection above is NX on 686-pae (only kernel text is executable there);
 * PAGE_KERNEL_EXEC and PAGE_KERNEL_RX are the executable ones.
 */
#define __PAGE_KERNEL_EXEC	((pgprotval_t)0x163)
#define __PAGE_KERNEL_RX	((pgprotval_t)0x161)
#define PAGE_KERNEL_EXEC	__pgprot(__PAGE_KERNEL_EXEC)
#define PAGE_KERNEL_RX		__pgprot(__PAGE_KERNEL_RX)
#endif

/* -- the geometry: two levels, or three under PAE --------------------------- */
#ifdef CONFIG_X86_PAE
typedef u64 pteval_t;
typedef u64 pmdval_t;
typedef u64 pudval_t;
typedef u64 pgdval_t;
#define CONFIG_PGTABLE_LEVELS	3
#define PGDIR_SHIFT		30
#define PTRS_PER_PGD		4
#define PMD_SHIFT		21
#define PTRS_PER_PMD		512
#define PTRS_PER_PTE		512
/* 52, not 44: inverted PROT_NONE entries keep every host bit (page_32_types.h) */
#define __PHYSICAL_MASK_SHIFT	52
#define _PAGE_BIT_NX		63
#define _PAGE_NX		(1ULL << _PAGE_BIT_NX)
#else
typedef unsigned long pteval_t;
typedef unsigned long pmdval_t;
typedef unsigned long pudval_t;
typedef unsigned long pgdval_t;
#define CONFIG_PGTABLE_LEVELS	2
#define PGDIR_SHIFT		22
#define PTRS_PER_PGD		1024
#define PMD_SHIFT		PGDIR_SHIFT	/* folded into the pgd */
#define PTRS_PER_PMD		1
#define PTRS_PER_PTE		1024
#define __PHYSICAL_MASK_SHIFT	32
#define _PAGE_NX		0UL
#endif

/* Split a 64-bit value into the two 32-bit mailbox words hypercalls carry. */
#define __mmemu_lo32(x)		((unsigned long)((u64)(x) & 0xffffffffu))
#define __mmemu_hi32(x)		((unsigned long)((u64)(x) >> 32))
#define P4D_SHIFT		PGDIR_SHIFT	/* folded */
#define PTRS_PER_P4D		1
#define PUD_SHIFT		PGDIR_SHIFT	/* folded */
#define PTRS_PER_PUD		1

#define PGDIR_SIZE		(1ULL << PGDIR_SHIFT)
#define PMD_SIZE		(1UL << PMD_SHIFT)
#define PMD_MASK		(~(PMD_SIZE - 1))
#define __PHYSICAL_MASK		((pteval_t)((1ULL << __PHYSICAL_MASK_SHIFT) - 1))
#define PTE_PFN_MASK		(__PHYSICAL_MASK & ~(pteval_t)(PAGE_SIZE - 1))
#define PTE_FLAGS_MASK		(~PTE_PFN_MASK)
#define PMD_PAGE_MASK		(__PHYSICAL_MASK & ~(pteval_t)(PMD_SIZE - 1))

/*
 * One type per level, each one entry wide.  The folded levels (p4d, pud;
 * pmd too without PAE) share the entry of the level above, so a pointer
 * to one is a pointer to the other.
 */
typedef struct { pteval_t pte; } pte_t;
typedef struct { pmdval_t pmd; } pmd_t;
typedef struct { pudval_t pud; } pud_t;
typedef struct { pgdval_t p4d; } p4d_t;
typedef struct { pgdval_t pgd; } pgd_t;

#define pte_val(x)	((x).pte)
#define pmd_val(x)	((x).pmd)
#define pud_val(x)	((x).pud)
#define p4d_val(x)	((x).p4d)
#define pgd_val(x)	((x).pgd)

#define pte_flags(x)	(pte_val(x) & PTE_FLAGS_MASK)
#define pmd_flags(x)	(pmd_val(x) & PTE_FLAGS_MASK)
#define pud_flags(x)	(pud_val(x) & PTE_FLAGS_MASK)

/* -- init_mm and the pgd ------------------------------------------------- */
struct mm_struct {
	pgd_t *pgd;
};

extern struct mm_struct init_mm;	/* init_mm.pgd is swapper_pg_dir (lib/init.c) */

#define swapper_pg_dir		((pgd_t *)MMEMU_BOOTINFO->kernel_pgd)

#define pgd_index(a)		(((a) >> PGDIR_SHIFT) & (PTRS_PER_PGD - 1))
#define pmd_index(a)		(((a) >> PMD_SHIFT) & (PTRS_PER_PMD - 1))
#define pte_index(a)		(((a) >> PAGE_SHIFT) & (PTRS_PER_PTE - 1))

#define pgd_offset_pgd(pgd, a)	((pgd) + pgd_index((unsigned long)(a)))
#define pgd_offset(mm, a)	pgd_offset_pgd((mm)->pgd, (a))
#define pgd_offset_k(a)		pgd_offset(&init_mm, (a))

/* -- the folded levels: pgd and p4d always, pud too without PAE ------------ */
static __always_inline int pgd_none(pgd_t pgd) { return 0; }
static __always_inline int pgd_bad(pgd_t pgd) { return 0; }
static __always_inline int pgd_present(pgd_t pgd) { return 1; }

static __always_inline p4d_t *p4d_offset(pgd_t *pgd, unsigned long address)
{
	return (p4d_t *)pgd;
}

static __always_inline int p4d_none(p4d_t p4d) { return 0; }
static __always_inline int p4d_bad(p4d_t p4d) { return 0; }
static __always_inline int p4d_present(p4d_t p4d) { return 1; }
static __always_inline int p4d_large(p4d_t p4d) { return 0; }	/* no 512 GiB pages */

static __always_inline pud_t *pud_offset(p4d_t *p4d, unsigned long address)
{
	return (pud_t *)p4d;
}

#if CONFIG_PGTABLE_LEVELS == 2
static __always_inline int pud_none(pud_t pud) { return 0; }
static __always_inline int pud_bad(pud_t pud) { return 0; }
static __always_inline int pud_present(pud_t pud) { return 1; }
static __always_inline int pud_large(pud_t pud) { return 0; }

static __always_inline pmd_t *pmd_offset(pud_t *pud, unsigned long address)
{
	return (pmd_t *)pud;
}
#else
/* PAE: the pud is an entry of the 4-entry PDPT and points at a PMD. */
static __always_inline int pud_none(pud_t pud)
{
	return (pud_val(pud) & ~(pudval_t)_PAGE_KNL_ERRATUM_MASK) == 0;
}

static __always_inline int pud_present(pud_t pud)
{
	return pud_flags(pud) & _PAGE_PRESENT;
}

static __always_inline int pud_large(pud_t pud)
{
	return (pud_val(pud) & (_PAGE_PSE | _PAGE_PRESENT)) == (_PAGE_PSE | _PAGE_PRESENT);
}

static __always_inline int pud_bad(pud_t pud)
{
	return (pud_flags(pud) & ~(pudval_t)(_KERNPG_TABLE | _PAGE_USER)) != 0;
}

static __always_inline pmd_t *pmd_offset(pud_t *pud, unsigned long address)
{
	return (pmd_t *)__va((unsigned long)(pud_val(*pud) & PTE_PFN_MASK)) + pmd_index(address);
}
#endif

/* -- pmd and pte: the real entries ------------------------------------------- */
static __always_inline int pmd_none(pmd_t pmd)
{
	return (pmd_val(pmd) & ~(pmdval_t)_PAGE_KNL_ERRATUM_MASK) == 0;
}

static __always_inline int pmd_present(pmd_t pmd)
{
	return (pmd_flags(pmd) & (_PAGE_PRESENT | _PAGE_PROTNONE | _PAGE_PSE)) != 0;
}

/* pmd_large(): the entry maps a 4 MiB (PAE: 2 MiB) page itself. */
static __always_inline int pmd_large(pmd_t pmd)
{
	return (pmd_flags(pmd) & _PAGE_PSE) != 0;
}

static __always_inline int pmd_bad(pmd_t pmd)
{
	return (pmd_flags(pmd) & ~(pmdval_t)(_PAGE_USER | _PAGE_ACCESSED)) !=
	       (_KERNPG_TABLE & ~_PAGE_ACCESSED);
}

static __always_inline unsigned long pmd_pfn(pmd_t pmd)
{
	pteval_t mask = pmd_large(pmd) ? PMD_PAGE_MASK : PTE_PFN_MASK;

	return (unsigned long)((pmd_val(pmd) & mask) >> PAGE_SHIFT);
}

/* pmd_page_vaddr(): the page table a pmd points at, in the direct map. */
static __always_inline pte_t *pmd_page_vaddr(pmd_t pmd)
{
	return (pte_t *)__va((unsigned long)(pmd_val(pmd) & PTE_PFN_MASK));
}

static __always_inline pte_t *pte_offset_kernel(pmd_t *pmd, unsigned long address)
{
	return pmd_page_vaddr(*pmd) + pte_index(address);
}

static __always_inline int pte_none(pte_t pte)
{
	return (pte_val(pte) & ~(pteval_t)_PAGE_KNL_ERRATUM_MASK) == 0;
}

static __always_inline int pte_present(pte_t pte)
{
	return (pte_flags(pte) & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0;
}

static __always_inline int pte_write(pte_t pte) { return (pte_flags(pte) & _PAGE_RW) != 0; }
static __always_inline int pte_dirty(pte_t pte) { return (pte_flags(pte) & _PAGE_DIRTY) != 0; }
static __always_inline int pte_young(pte_t pte) { return (pte_flags(pte) & _PAGE_ACCESSED) != 0; }
static __always_inline int pte_global(pte_t pte) { return (pte_flags(pte) & _PAGE_GLOBAL) != 0; }
static __always_inline int pte_exec(pte_t pte) { return !(pte_flags(pte) & _PAGE_NX); }

static __always_inline unsigned long pte_pfn(pte_t pte)
{
	return (unsigned long)((pte_val(pte) & PTE_PFN_MASK) >> PAGE_SHIFT);
}

#define pte_page(pte)		pfn_to_page(pte_pfn(pte))

/* -- lookup_address() (arch/x86/mm/pat/set_memory.c) ------------------------- */
enum pg_level {
	PG_LEVEL_NONE,
	PG_LEVEL_4K,
	PG_LEVEL_2M,		/* a large page at the pmd: 4 MiB without PAE */
	PG_LEVEL_1G,
	PG_LEVEL_512G,
	PG_LEVEL_NUM
};

/*
 * lookup_address(address, &level): the entry that maps address in the
 * kernel's page tables, and its level.  A large page gives its pmd (as a
 * pte_t *) and PG_LEVEL_2M; a page table gives the pte slot and
 * PG_LEVEL_4K, present or not (check pte_present()); no table at all gives
 * NULL, and the level of the last entry looked at (PG_LEVEL_1G on i386,
 * where the pud is folded and the pmd is none).
 */
pte_t *lookup_address(unsigned long address, unsigned int *level);
pte_t *lookup_address_in_pgd(pgd_t *pgd, unsigned long address, unsigned int *level);

#endif /* _MMEMU_PGTABLE_H */
