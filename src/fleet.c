/*
 * fleet: see fleet.h.  Serials in count mode are serial_first + index;
 * from machines_file, the file's lines in order; from [MACHINE], its one.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fleet.h"
#include "secret.h"

static void	fleet_reason(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

static void
fleet_reason(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* floor(i * total / n) without overflow: i*q + floor(i*r/n), i*r < n^2. */
static size_t
fleet_bound(size_t total, unsigned i, unsigned n)
{
	size_t q = total / n, r = total % n;

	return (size_t)i * q + (size_t)((uint64_t)i * r / n);
}

int
fleet_slice(size_t total, unsigned shard, unsigned nshards, size_t *first,
    size_t *count)
{
	size_t lo;

	if (nshards == 0 || shard >= nshards)
		return -1;
	lo = fleet_bound(total, shard, nshards);
	*first = lo;
	*count = fleet_bound(total, shard + 1, nshards) - lo;
	return 0;
}

static char *
fleet_dup(const char *s)
{
	return s != NULL && *s != '\0' ? strdup(s) : NULL;
}

/* Machine i of the whole fleet into m.  -1: out of memory. */
static int
fleet_machine_set(struct fleet_machine *m, const struct config *cf, size_t i)
{
	const struct config_machine *cm;
	unsigned long long first;

	m->index = i;
	if (!cf->fleet) {
		m->serial = strdup(cf->serial);
		m->password = strdup(cf->password);
		if (cf->hostname != NULL && (m->hostname =
		    strdup(cf->hostname)) == NULL)
			return -1;
	} else if (cf->fleet_machines_file != NULL) {
		cm = &cf->fleet_machines[i];
		m->serial = strdup(cm->serial);
		m->password = strdup(cm->password);
		if (cm->hostname[0] != '\0' && (m->hostname =
		    fleet_dup(cm->hostname)) == NULL)
			return -1;
	} else {
		/* config_check() made it digits and kept the sum in range. */
		first = strtoull(cf->fleet_serial_first, NULL, 10);
		if (asprintf(&m->serial, "%llu",
		    first + (unsigned long long)i) == -1)
			m->serial = NULL;
		m->password = strdup(cf->password);
	}
	return m->serial != NULL && m->password != NULL ? 0 : -1;
}

int
fleet_build(struct fleet *fl, const struct config *cf, char *err,
    size_t errlen)
{
	unsigned nshards = cf->shard_count != 0 ? cf->shard_count : 1;
	size_t i, first, count;

	memset(fl, 0, sizeof(*fl));
	fl->total = config_fleet_size(cf);
	if (fl->total == 0 || (!cf->fleet && (cf->serial == NULL ||
	    cf->password == NULL))) {
		fleet_reason(err, errlen, "no Glowforge in the configuration");
		fl->total = 0;
		return -1;
	}
	if (fleet_slice(fl->total, cf->shard_index, nshards, &first,
	    &count) == -1) {
		fleet_reason(err, errlen, "shard %u/%u: the index must be "
		    "below the count", cf->shard_index, nshards);
		return -1;
	}
	if (count == 0) {
		fleet_reason(err, errlen, "shard %u/%u has no machines: the "
		    "fleet has %zu, so at most %zu shards", cf->shard_index,
		    nshards, fl->total, fl->total);
		return -1;
	}
	if ((fl->m = calloc(count, sizeof(*fl->m))) == NULL) {
		fleet_reason(err, errlen, "out of memory");
		return -1;
	}
	fl->n = count;
	for (i = 0; i < count; i++)
		if (fleet_machine_set(&fl->m[i], cf, first + i) == -1) {
			fleet_free(fl);
			fleet_reason(err, errlen, "out of memory");
			return -1;
		}
	fl->first = first;
	fl->shard = cf->shard_index;
	fl->nshards = nshards;
	fl->connect_rate = (cf->fleet_connect_rate > 0 ?
	    cf->fleet_connect_rate : CONFIG_CONNECT_RATE) / nshards;
	fl->keep_jobs = cf->keep_jobs >= 0 ? cf->keep_jobs : !cf->fleet;
	return 0;
}

void
fleet_free(struct fleet *fl)
{
	size_t i;

	for (i = 0; fl->m != NULL && i < fl->n; i++) {
		secret_free(fl->m[i].password);
		secret_free(fl->m[i].serial);	/* half a login */
		free(fl->m[i].hostname);
	}
	free(fl->m);
	explicit_bzero(fl, sizeof(*fl));
}
