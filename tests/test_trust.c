/*
 * test_trust: which roots the TLS clients are pointed at (trust.h), for
 * each way the environment and the folders can be.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/x509.h>

#include "trust.h"

static char	base[64];	/* mkdtemp(): the folders below */

/* Folders under base, by the names the cases use. */
static const struct {
	const char	*dir;
	const char	*file;		/* one entry in it, or NULL */
} folders[] = {
	{ "hashed", "1a2b3c4d.0" },	/* as openssl rehash leaves one */
	{ "second", "0000ffff.12" },	/* a later root of one hash */
	{ "empty", NULL },
	{ "bundle", "ca-certificates.crt" },
	{ "crl-only", "1a2b3c4d.r0" },	/* revocation lists, no roots */
	{ "upper", "1A2B3C4D.0" },	/* not how OpenSSL names them */
	{ "short", "1a2b3c4.0" },
	{ "no-digit", "1a2b3c4d." },
	{ "suffix", "1a2b3c4d.0~" },
};

static int
setup(void **state)
{
	char path[PATH_MAX];
	FILE *fp;
	size_t i;

	(void)state;
	snprintf(base, sizeof(base), "/tmp/test_trust.XXXXXX");
	if (mkdtemp(base) == NULL)
		return -1;
	for (i = 0; i < sizeof(folders) / sizeof(folders[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", base, folders[i].dir);
		if (mkdir(path, 0700) == -1)
			return -1;
		if (folders[i].file == NULL)
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", base, folders[i].dir,
		    folders[i].file);
		if ((fp = fopen(path, "w")) == NULL)
			return -1;
		fclose(fp);
	}
	return 0;
}

static int
teardown(void **state)
{
	char path[PATH_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(folders) / sizeof(folders[0]); i++) {
		if (folders[i].file != NULL) {
			snprintf(path, sizeof(path), "%s/%s/%s", base,
			    folders[i].dir, folders[i].file);
			unlink(path);
		}
		snprintf(path, sizeof(path), "%s/%s", base, folders[i].dir);
		rmdir(path);
	}
	rmdir(base);
	return 0;
}

/* "@/x:@/y" with each @ replaced by base. */
static void
expand(char *out, size_t size, const char *in)
{
	size_t n = 0;

	for (; *in != '\0' && n + 1 < size; in++) {
		if (*in == '@') {
			n += (size_t)snprintf(out + n, size - n, "%s", base);
			if (n >= size)
				n = size - 1;
		} else
			out[n++] = *in;
	}
	out[n] = '\0';
}

static const struct {
	const char	*name;
	const char	*cert_file;	/* $SSL_CERT_FILE, NULL: unset */
	const char	*cert_dir;	/* $SSL_CERT_DIR, NULL: unset */
	const char	*want_dir;	/* trust_dir(), NULL: none */
	const char	*want_bundle;	/* trust_bundle() */
} cases[] = {
	{ "a hashed folder is used", NULL, "@/hashed", "@/hashed", NULL },
	{ "N > 0 counts too", NULL, "@/second", "@/second", NULL },
	{ "a bundle wins over any folder", "@/bundle/ca-certificates.crt",
	    "@/hashed", NULL, "@/bundle/ca-certificates.crt" },
	{ "an empty $SSL_CERT_FILE is unset", "", "@/hashed", "@/hashed",
	    NULL },
	{ "a folder with no hash link", NULL, "@/empty", NULL, NULL },
	{ "a folder with only a bundle", NULL, "@/bundle", NULL, NULL },
	{ "CRLs are not roots", NULL, "@/crl-only", NULL, NULL },
	{ "upper-case hex is not a link", NULL, "@/upper", NULL, NULL },
	{ "seven digits are not a hash", NULL, "@/short", NULL, NULL },
	{ "no number after the dot", NULL, "@/no-digit", NULL, NULL },
	{ "junk after the number", NULL, "@/suffix", NULL, NULL },
	{ "a missing folder", NULL, "@/missing", NULL, NULL },
	{ "a list: the whole list if one has links", NULL,
	    "@/missing:@/empty:@/hashed", "@/missing:@/empty:@/hashed", NULL },
	{ "a list with no links", NULL, "@/empty::@/bundle", NULL, NULL },
	{ "an empty list element is skipped", NULL, ":@/hashed:",
	    ":@/hashed:", NULL },
};

static void
set(const char *var, const char *value)
{
	char buf[PATH_MAX];

	if (value == NULL) {
		assert_int_equal(unsetenv(var), 0);
		return;
	}
	expand(buf, sizeof(buf), value);
	assert_int_equal(setenv(var, buf, 1), 0);
}

static void
test_table(void **state)
{
	char want[PATH_MAX];
	const char *bundle;
	char *dir;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("%s\n", cases[i].name);
		set("SSL_CERT_FILE", cases[i].cert_file);
		set("SSL_CERT_DIR", cases[i].cert_dir);
		dir = trust_dir();
		bundle = trust_bundle();
		if (cases[i].want_dir == NULL)
			assert_null(dir);
		else {
			expand(want, sizeof(want), cases[i].want_dir);
			assert_non_null(dir);
			assert_string_equal(dir, want);
		}
		if (cases[i].want_bundle == NULL)
			assert_null(bundle);
		else {
			expand(want, sizeof(want), cases[i].want_bundle);
			assert_non_null(bundle);
			assert_string_equal(bundle, want);
		}
		free(dir);
	}
}

/* With neither variable, OpenSSL's own folder is asked: on Debian that is
 * /usr/lib/ssl/certs, a link to the hashed /etc/ssl/certs. */
static void
test_default_folder(void **state)
{
	char *dir;

	(void)state;
	assert_int_equal(unsetenv("SSL_CERT_FILE"), 0);
	assert_int_equal(unsetenv("SSL_CERT_DIR"), 0);
	dir = trust_dir();
	if (dir != NULL)
		assert_string_equal(dir, X509_get_default_cert_dir());
	free(dir);
	assert_null(trust_bundle());
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_default_folder),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
