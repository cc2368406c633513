/*
 * 10_use_after_free.c - a use-after-free, caught by slub_debug.
 *
 * Freed memory is not unmapped: a pointer kept after kfree() still reads
 * and writes the object, which by then may belong to someone else.  With
 * slub_debug=P, SLUB fills every free object with POISON_FREE (0x6b, the
 * last byte POISON_END 0xa5) and checks the poison when it hands the
 * object out again; with U it records who allocated and freed it.
 */
#include <mmemu.h>
#include <mmemu/slab.h>

struct session {
	int id;
	char user[32];
};

int main(void)
{
	struct session *s = kmalloc(sizeof(*s), GFP_KERNEL);

	if (!s)
		return 1;
	s->id = 1;
	kfree(s);

	s->id = 2;				/* BUG: s was freed */

	s = kmalloc(sizeof(*s), GFP_KERNEL);	/* the same object, checked */
	kfree(s);
	return 0;
}
