/*
 * sim_fleet: see sim_fleet.h.
 *
 * Both tables are arrays of chain heads sized to a power of two at least
 * twice the machines (tokens: 2 x (1 + ws slots) per machine at most), so
 * chains stay short and never need a rehash.  Token hashes read the first
 * 16 hex chars: tokens are random.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "secret.h"
#include "sim_fleet.h"

#define SIM_FLEET_WS_ONE	16	/* ws tokens alive at once, one machine */
#define SIM_FLEET_WS_MANY	2	/* per machine in a fleet */
#define SIM_FLEET_CSV_MAX	(64 * 1024 * 1024)	/* bytes */

struct sim_fleet {
	struct sim_machine	 *m;
	size_t			  n;
	struct sim_tok		 *slots;	/* every machine's ws slots */
	struct sim_machine	**by_serial;
	size_t			  serial_mask;
	struct sim_tok		**by_tok;
	size_t			  tok_mask;
};

static uint64_t
sim_fleet_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static size_t
sim_fleet_pow2(size_t n)
{
	size_t p = 16;

	while (p < n)
		p <<= 1;
	return p;
}

int
sim_fleet_same(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i;
	unsigned char d = 0;

	if (la != lb || la == 0)
		return 0;
	for (i = 0; i < la; i++)
		d |= (unsigned char)a[i] ^ (unsigned char)b[i];
	return d == 0;
}

static int
sim_fleet_digits(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > SIM_FLEET_SERIAL_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* The fleet's storage for n machines, identities still empty. */
static struct sim_fleet *
sim_fleet_alloc(size_t n)
{
	struct sim_fleet *f;
	size_t nws = n == 1 ? SIM_FLEET_WS_ONE : SIM_FLEET_WS_MANY, i;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	f->n = n;
	f->serial_mask = sim_fleet_pow2(2 * n) - 1;
	f->tok_mask = sim_fleet_pow2(2 * n * (1 + nws)) - 1;
	if ((f->m = calloc(n, sizeof(*f->m))) == NULL ||
	    (f->slots = calloc(n * nws, sizeof(*f->slots))) == NULL ||
	    (f->by_serial = calloc(f->serial_mask + 1,
	    sizeof(*f->by_serial))) == NULL ||
	    (f->by_tok = calloc(f->tok_mask + 1, sizeof(*f->by_tok))) ==
	    NULL) {
		sim_fleet_free(f);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		f->m[i].idx = i;
		f->m[i].ws = f->slots + i * nws;
		f->m[i].nws = nws;
	}
	return f;
}

/* Fills machine i; 0, or -1 with err (a duplicate serial, no memory). */
static int
sim_fleet_set(struct sim_fleet *f, size_t i, const char *serial,
    const char *password, const char *host, char *err, size_t errlen)
{
	struct sim_machine *m = &f->m[i];
	size_t h, k;

	if (sim_fleet_by_serial(f, serial) != NULL) {
		snprintf(err, errlen, "serial %s given twice", serial);
		return -1;
	}
	snprintf(m->serial, sizeof(m->serial), "%s", serial);
	snprintf(m->hostname, sizeof(m->hostname), "%s", host);
	if ((m->password = strdup(password)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	m->auth.m = m;
	m->auth.kind = SIM_TOK_AUTH;
	for (k = 0; k < m->nws; k++) {
		m->ws[k].m = m;
		m->ws[k].kind = SIM_TOK_WS;
	}
	h = sim_fleet_hash(m->serial) & f->serial_mask;
	m->next_serial = f->by_serial[h];
	f->by_serial[h] = m;
	return 0;
}

static int
sim_fleet_password_ok(const char *pw, char *err, size_t errlen)
{
	size_t n = strlen(pw), i;

	if (n == 0 || n > SIM_FLEET_PASSWORD_MAX) {
		snprintf(err, errlen, "a password is 1 to %d bytes",
		    SIM_FLEET_PASSWORD_MAX);
		return 0;
	}
	for (i = 0; i < n; i++)
		if ((unsigned char)pw[i] < 0x20 || pw[i] == 0x7f ||
		    pw[i] == ',' || pw[i] == '"') {
			snprintf(err, errlen, "a password holds a control "
			    "character, a comma or a quote");
			return 0;
		}
	return 1;
}

struct sim_fleet *
sim_fleet_single(const char *serial, const char *password, char *err,
    size_t errlen)
{
	return sim_fleet_range(serial, 1, password, err, errlen);
}

struct sim_fleet *
sim_fleet_range(const char *first, size_t n, const char *password,
    char *err, size_t errlen)
{
	struct sim_fleet *f;
	unsigned long long s0;
	char sn[32];
	size_t i;

	/* Past 18 digits a range could overflow: one machine only. */
	if (!sim_fleet_digits(first) || (n > 1 && strlen(first) > 18)) {
		snprintf(err, errlen, "serial \"%.24s\": 1 to %d digits, "
		    "without the S", first, n > 1 ? 18 : SIM_FLEET_SERIAL_MAX);
		return NULL;
	}
	if (n == 0 || n > SIM_FLEET_MACHINES_MAX) {
		snprintf(err, errlen, "1 to %d machines",
		    SIM_FLEET_MACHINES_MAX);
		return NULL;
	}
	if (!sim_fleet_password_ok(password, err, errlen))
		return NULL;
	s0 = strtoull(first, NULL, 10);
	if ((f = sim_fleet_alloc(n)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (i = 0; i < n; i++) {
		/* Keep the first serial's width: 00012 → 00013. */
		if (n == 1)
			snprintf(sn, sizeof(sn), "%s", first);
		else
			snprintf(sn, sizeof(sn), "%0*llu", (int)strlen(first),
			    s0 + i);
		if (strlen(sn) > SIM_FLEET_SERIAL_MAX) {
			snprintf(err, errlen, "serials past %d digits",
			    SIM_FLEET_SERIAL_MAX);
			sim_fleet_free(f);
			return NULL;
		}
		if (sim_fleet_set(f, i, sn, password, "", err, errlen) == -1) {
			sim_fleet_free(f);
			return NULL;
		}
	}
	return f;
}

/* Splits one CSV line in place into up to 3 fields; their count, or -1
 * when there are more. */
static int
sim_fleet_fields(char *line, char *fld[3])
{
	int n = 0;
	char *p = line, *c;

	for (;;) {
		if (n == 3)
			return -1;
		fld[n++] = p;
		if ((c = strchr(p, ',')) == NULL)
			break;
		*c = '\0';
		p = c + 1;
	}
	return n;
}

static char *
sim_fleet_trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' ||
	    s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

static int
sim_fleet_host_ok(const char *h)
{
	size_t n = strlen(h), i;

	if (n > SIM_FLEET_HOST_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)h[i]) && h[i] != '-' &&
		    h[i] != '.' && h[i] != '_')
			return 0;
	return 1;
}

/* One line's fields checked; 0, or -1 with the reason in why. */
static int
sim_fleet_csv_line(char *line, char **serial, char **pw, const char **host,
    char *why, size_t whylen)
{
	char *fld[3];
	int n, i;

	if ((n = sim_fleet_fields(line, fld)) < 2) {
		snprintf(why, whylen, n == -1 ? "more than 3 fields" :
		    "expected serial,password[,hostname]");
		return -1;
	}
	for (i = 0; i < n; i++)
		fld[i] = sim_fleet_trim(fld[i]);
	if (fld[0][0] == 'S' || fld[0][0] == 's')
		fld[0]++;
	if (!sim_fleet_digits(fld[0])) {
		snprintf(why, whylen, "the serial is not 1 to %d digits",
		    SIM_FLEET_SERIAL_MAX);
		return -1;
	}
	if (!sim_fleet_password_ok(fld[1], why, whylen))
		return -1;
	if (n == 3 && !sim_fleet_host_ok(fld[2])) {
		snprintf(why, whylen, "the hostname is not up to %d of "
		    "[A-Za-z0-9._-]", SIM_FLEET_HOST_MAX);
		return -1;
	}
	*serial = fld[0];
	*pw = fld[1];
	*host = n == 3 ? fld[2] : "";
	return 0;
}

/* Lines that name a machine (not blank, not a comment: '#' or ';', as
 * the daemon's machines_file, so one file serves both). */
static int
sim_fleet_skip(const char *line)
{
	while (*line == ' ' || *line == '\t' || *line == '\r')
		line++;
	return *line == '\0' || *line == '#' || *line == ';';
}

struct sim_fleet *
sim_fleet_parse_csv(const char *text, size_t len, const char *name,
    char *err, size_t errlen)
{
	struct sim_fleet *f = NULL;
	char *buf, *line, *nl, *serial, *pw, why[160];
	const char *host;
	size_t n = 0, i = 0, k;
	int lineno, pass;

	if ((buf = malloc(len + 1)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		return NULL;
	}
	/* Pass 0 counts and checks, pass 1 fills (fields are split in a
	 * copy each time). */
	for (pass = 0; pass < 2; pass++) {
		memcpy(buf, text, len);
		buf[len] = '\0';
		if (memchr(text, '\0', len) != NULL) {
			snprintf(err, errlen, "%s: a NUL byte", name);
			goto fail;
		}
		lineno = 0;
		for (line = buf; line != NULL; line = nl) {
			lineno++;
			if ((nl = strchr(line, '\n')) != NULL)
				*nl++ = '\0';
			if (nl == NULL && *line == '\0')
				break;
			if (sim_fleet_skip(line))
				continue;
			if (sim_fleet_csv_line(line, &serial, &pw, &host, why,
			    sizeof(why)) == -1) {
				snprintf(err, errlen, "%s:%d: %s", name, lineno,
				    why);
				goto fail;
			}
			if (pass == 0) {
				n++;
				continue;
			}
			if (sim_fleet_set(f, i++, serial, pw, host, why,
			    sizeof(why)) == -1) {
				snprintf(err, errlen, "%s:%d: %s", name, lineno,
				    why);
				goto fail;
			}
		}
		if (pass == 0) {
			if (n == 0 || n > SIM_FLEET_MACHINES_MAX) {
				snprintf(err, errlen, "%s: 1 to %d machines, "
				    "not %zu", name, SIM_FLEET_MACHINES_MAX, n);
				goto fail;
			}
			if ((f = sim_fleet_alloc(n)) == NULL) {
				snprintf(err, errlen, "%s: out of memory",
				    name);
				goto fail;
			}
		}
	}
	explicit_bzero(buf, len);
	free(buf);
	return f;
fail:
	explicit_bzero(buf, len);
	free(buf);
	if (f != NULL) {
		/* Machines past i were never set: their passwords NULL. */
		for (k = i; k < f->n; k++)
			f->m[k].password = NULL;
	}
	sim_fleet_free(f);
	return NULL;
}

struct sim_fleet *
sim_fleet_load_csv(const char *path, char *err, size_t errlen)
{
	struct sim_fleet *f = NULL;
	struct stat sb;
	char *text = NULL;
	size_t got = 0;
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &sb) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto done;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size > SIM_FLEET_CSV_MAX) {
		snprintf(err, errlen, "%s: not a regular file up to %d bytes",
		    path, SIM_FLEET_CSV_MAX);
		goto done;
	}
	if ((text = malloc((size_t)sb.st_size + 1)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto done;
	}
	while (got < (size_t)sb.st_size) {
		r = read(fd, text + got, (size_t)sb.st_size - got);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	f = sim_fleet_parse_csv(text, got, path, err, errlen);
	explicit_bzero(text, got);
done:
	free(text);
	if (fd != -1)
		close(fd);
	return f;
}

void
sim_fleet_free(struct sim_fleet *f)
{
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; f->m != NULL && i < f->n; i++)
		secret_free(f->m[i].password);
	if (f->slots != NULL)
		explicit_bzero(f->slots, sizeof(*f->slots) * f->n *
		    (f->n == 1 ? SIM_FLEET_WS_ONE : SIM_FLEET_WS_MANY));
	if (f->m != NULL)
		explicit_bzero(f->m, sizeof(*f->m) * f->n);
	free(f->m);
	free(f->slots);
	free(f->by_serial);
	free(f->by_tok);
	free(f);
}

size_t
sim_fleet_count(const struct sim_fleet *f)
{
	return f->n;
}

struct sim_machine *
sim_fleet_machine(struct sim_fleet *f, size_t idx)
{
	return idx < f->n ? &f->m[idx] : NULL;
}

struct sim_machine *
sim_fleet_by_serial(struct sim_fleet *f, const char *serial)
{
	struct sim_machine *m;

	if (*serial == 'S')
		serial++;
	if (!sim_fleet_digits(serial))
		return NULL;
	for (m = f->by_serial[sim_fleet_hash(serial) & f->serial_mask];
	    m != NULL; m = m->next_serial)
		if (strcmp(m->serial, serial) == 0)
			return m;
	return NULL;
}

static size_t
sim_fleet_tok_hash(const struct sim_fleet *f, const char *tok)
{
	return (size_t)sim_fleet_hash(tok) & f->tok_mask;
}

struct sim_tok *
sim_fleet_by_token(struct sim_fleet *f, const char *tok)
{
	struct sim_tok *t;

	if (strlen(tok) != SIM_FLEET_TOKEN_LEN)
		return NULL;
	for (t = f->by_tok[sim_fleet_tok_hash(f, tok)]; t != NULL;
	    t = t->next)
		if (sim_fleet_same(t->tok, tok))
			return t;
	return NULL;
}

static void
sim_fleet_unlink(struct sim_fleet *f, struct sim_tok *t)
{
	struct sim_tok **pp;

	if (!t->linked)
		return;
	for (pp = &f->by_tok[sim_fleet_tok_hash(f, t->tok)]; *pp != NULL;
	    pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	t->next = NULL;
	t->linked = 0;
}

void
sim_fleet_token_set(struct sim_fleet *f, struct sim_tok *t, const char *tok,
    int64_t now_ms)
{
	size_t h;

	sim_fleet_unlink(f, t);
	explicit_bzero(t->tok, sizeof(t->tok));
	snprintf(t->tok, sizeof(t->tok), "%s", tok);
	t->issued = now_ms;
	t->live = 1;
	h = sim_fleet_tok_hash(f, t->tok);
	t->next = f->by_tok[h];
	f->by_tok[h] = t;
	t->linked = 1;
}

struct sim_tok *
sim_fleet_ws_slot(struct sim_machine *m, int64_t now_ms, int64_t ttl_ms)
{
	size_t i, slot = 0;

	for (i = 0; i < m->nws; i++) {
		if (!m->ws[i].live || now_ms - m->ws[i].issued > ttl_ms)
			return &m->ws[i];
		if (m->ws[i].issued < m->ws[slot].issued)
			slot = i;
	}
	return &m->ws[slot];
}
