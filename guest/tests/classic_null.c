/*
 * classic_null.c - the NULL pointer dereference, written the plain way.
 *
 * The build keeps the load (-fno-delete-null-pointer-checks, as Linux
 * builds), so it faults on the NULL page: "BUG: kernel NULL pointer
 * dereference, address: 00000000", an oops, status 139.
 */
#include <mmemu.h>

int main(void)
{
	int *p = NULL;

	return *p;
}
