/*
 * secret: see secret.h.
 */
#include <stdlib.h>
#include <string.h>

#include "secret.h"

void
secret_free(char *s)
{
	if (s == NULL)
		return;
	/* explicit_bzero: a memset before free() may be optimised away. */
	explicit_bzero(s, strlen(s));
	free(s);
}
