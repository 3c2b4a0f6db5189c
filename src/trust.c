/*
 * trust: see trust.h.
 */
#include <ctype.h>
#include <dirent.h>
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

const char *
trust_bundle(void)
{
	const char *env = getenv(X509_get_default_cert_file_env());

	return env != NULL && *env != '\0' ? env : NULL;
}

char *
trust_dir(void)
{
	const char *env, *p, *sep;
	char *one, *list;
	int found = 0;

	if (trust_bundle() != NULL)
		return NULL;
	env = getenv(X509_get_default_cert_dir_env());
	if (env == NULL || *env == '\0')
		env = X509_get_default_cert_dir();
	if ((list = strdup(env)) == NULL)
		return NULL;
	for (p = list; !found && *p != '\0'; p = *sep ? sep + 1 : sep) {
		sep = strchr(p, ':');
		if (sep == NULL)
			sep = p + strlen(p);
		if ((one = strndup(p, (size_t)(sep - p))) == NULL)
			break;
		found = *one != '\0' && trust_has_hash_link(one);
		free(one);
	}
	if (!found) {
		free(list);
		return NULL;
	}
	return list;
}
