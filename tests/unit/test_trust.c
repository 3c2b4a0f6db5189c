/*
 * test_trust: which roots the TLS clients are pointed at (trust.h), for
 * each way the environment and the folders can be.
 */
#include <glob.h>
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
	const char	*def;		/* OpenSSL's built-in folder */
	const char	*want;		/* trust_dir_from(), NULL: none */
} cases[] = {
	{ "the built-in folder, hashed", NULL, NULL, "@/hashed",
	    "@/hashed" },
	{ "N > 0 counts too", NULL, NULL, "@/second", "@/second" },
	{ "$SSL_CERT_DIR first, the system's roots after", NULL,
	    "@/empty", "@/hashed", "@/empty:@/hashed" },
	{ "a list in $SSL_CERT_DIR is kept whole", NULL, "@/a:@/b",
	    "@/hashed", "@/a:@/b:@/hashed" },
	{ "$SSL_CERT_DIR naming the built-in folder", NULL, "@/hashed",
	    "@/hashed", "@/hashed" },
	{ "an empty $SSL_CERT_DIR is unset", NULL, "", "@/hashed",
	    "@/hashed" },
	{ "a bundle wins over any folder", "@/bundle/ca-certificates.crt",
	    "@/hashed", "@/hashed", NULL },
	{ "an empty $SSL_CERT_FILE is unset", "", NULL, "@/hashed",
	    "@/hashed" },
	/* The built-in folder decides: without its links, the defaults
	 * (the bundle) must stay, or the system's roots would be lost. */
	{ "a built-in folder with no hash link", NULL, "@/hashed", "@/empty",
	    NULL },
	{ "a folder with only a bundle", NULL, NULL, "@/bundle", NULL },
	{ "CRLs are not roots", NULL, NULL, "@/crl-only", NULL },
	{ "upper-case hex is not a link", NULL, NULL, "@/upper", NULL },
	{ "seven digits are not a hash", NULL, NULL, "@/short", NULL },
	{ "no number after the dot", NULL, NULL, "@/no-digit", NULL },
	{ "junk after the number", NULL, NULL, "@/suffix", NULL },
	{ "a missing folder", NULL, NULL, "@/missing", NULL },
	{ "no built-in folder", NULL, "@/hashed", NULL, NULL },
};

/* value with @ expanded into buf, or NULL */
static const char *
arg(char *buf, size_t size, const char *value)
{
	if (value == NULL)
		return NULL;
	expand(buf, size, value);
	return buf;
}

static void
test_table(void **state)
{
	char file[PATH_MAX], dir[PATH_MAX], def[PATH_MAX], want[PATH_MAX];
	char *got;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("%s\n", cases[i].name);
		got = trust_dir_from(arg(file, sizeof(file), cases[i].cert_file),
		    arg(dir, sizeof(dir), cases[i].cert_dir),
		    arg(def, sizeof(def), cases[i].def));
		if (cases[i].want == NULL)
			assert_null(got);
		else {
			expand(want, sizeof(want), cases[i].want);
			assert_non_null(got);
			assert_string_equal(got, want);
		}
		free(got);
	}
}

/* The real inputs: the environment and OpenSSL's folder. */
static void
test_environment(void **state)
{
	char pattern[PATH_MAX], want[PATH_MAX / 2];
	const char *def = X509_get_default_cert_dir();
	char *dir, *bundle;
	glob_t g;
	int hashed;

	(void)state;
	/* On Debian /usr/lib/ssl/certs, a link to /etc/ssl/certs. */
	snprintf(pattern, sizeof(pattern), "%s/[0-9a-f][0-9a-f][0-9a-f]"
	    "[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f].[0-9]*", def);
	hashed = glob(pattern, 0, NULL, &g) == 0;
	globfree(&g);
	if (!hashed) {
		print_message("%s has no hash links: skipped\n", def);
		skip();
	}

	assert_int_equal(unsetenv("SSL_CERT_FILE"), 0);
	assert_int_equal(unsetenv("SSL_CERT_DIR"), 0);
	dir = trust_dir();
	assert_non_null(dir);
	assert_string_equal(dir, def);
	free(dir);
	assert_null(trust_bundle());

	expand(want, sizeof(want), "@/hashed");
	assert_int_equal(setenv("SSL_CERT_DIR", want, 1), 0);
	dir = trust_dir();
	assert_true(strlen(def) < sizeof(pattern) - sizeof(want));
	snprintf(pattern, sizeof(pattern), "%s:%.*s", want,
	    (int)(sizeof(pattern) - sizeof(want) - 1), def);
	assert_non_null(dir);
	assert_string_equal(dir, pattern);
	free(dir);

	expand(want, sizeof(want), "@/bundle/ca-certificates.crt");
	assert_int_equal(setenv("SSL_CERT_FILE", want, 1), 0);
	assert_null(trust_dir());
	bundle = trust_bundle();
	assert_non_null(bundle);
	assert_string_equal(bundle, want);
	free(bundle);

	assert_int_equal(setenv("SSL_CERT_FILE", "", 1), 0);
	assert_null(trust_bundle());
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_environment),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
