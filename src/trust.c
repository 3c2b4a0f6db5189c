/*
 * trust: see trust.h.
 */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "trust.h"

/* "1a2b3c4d.0": a subject hash link as openssl rehash names it (".rN" are
 * CRLs, not roots). */
static int
trust_is_hash_link(const char *name)
{
	int i;

	for (i = 0; i < 8; i++)
		if (!isxdigit((unsigned char)name[i]) ||
		    isupper((unsigned char)name[i]))
			return 0;
	if (name[8] != '.' || !isdigit((unsigned char)name[9]))
		return 0;
	for (i = 10; name[i] != '\0'; i++)
		if (!isdigit((unsigned char)name[i]))
			return 0;
	return 1;
}

static int
trust_has_hash_link(const char *dir)
{
	struct dirent *de;
	DIR *d;
	int found = 0;

	if ((d = opendir(dir)) == NULL)
		return 0;
	while (!found && (de = readdir(d)) != NULL)
		found = trust_is_hash_link(de->d_name);
	closedir(d);
	return found;
}

char *
trust_bundle(void)
{
	const char *env = getenv(X509_get_default_cert_file_env());

	return env != NULL && *env != '\0' ? strdup(env) : NULL;
}

char *
trust_dir_from(const char *cert_file, const char *cert_dir,
    const char *default_dir)
{
	char *list;

	if (cert_file != NULL && *cert_file != '\0')
		return NULL;
	if (default_dir == NULL || !trust_has_hash_link(default_dir))
		return NULL;
	if (cert_dir == NULL || *cert_dir == '\0' ||
	    strcmp(cert_dir, default_dir) == 0)
		return strdup(default_dir);
	if (asprintf(&list, "%s:%s", cert_dir, default_dir) == -1)
		return NULL;
	return list;
}

char *
trust_dir(void)
{
	return trust_dir_from(getenv(X509_get_default_cert_file_env()),
	    getenv(X509_get_default_cert_dir_env()),
	    X509_get_default_cert_dir());
}
