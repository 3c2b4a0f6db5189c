/*
 * secret: the one way a secret string (a password, a token, a serial,
 * which is half of a login) leaves memory: wiped, then freed, so a later
 * allocation or a core file never shows it.
 */
#ifndef GFE_SECRET_H
#define GFE_SECRET_H

/* explicit_bzero() over the string, then free(); NULL is fine. */
void	 secret_free(char *s);

#endif
