/*
 * fleet: which Glowforges this process runs.  From a loaded config and its
 * shard (cf->shard_index of cf->shard_count, set by main from --shard I/N
 * or --shards N with $JOB_COMPLETION_INDEX), the shard's machines, each
 * with its identity and its index in the whole fleet.  [MACHINE] alone is
 * a fleet of one, so the daemon has a single code path.
 *
 * Pure: no I/O, no logging; errors come back as a one-line reason.
 *
 * Shard i of n runs the contiguous slice [floor(i*total/n),
 * floor((i+1)*total/n)): N processes or hosts split one fleet with no
 * coordinator, the slices disjoint and together the whole fleet.  A shard
 * with no machine (n > total) is an error, not an idle process: it is
 * always a mistake in the shard count, best caught by --check-config.
 */
#ifndef GFE_FLEET_H
#define GFE_FLEET_H

#include <stddef.h>

struct config;

struct fleet_machine {
	char	*serial;	/* decimal digits, without the "S" */
	char	*password;	/* 64 hex chars; secret: fleet_free() wipes */
	char	*hostname;	/* or NULL: the daemon's default */
	size_t	 index;		/* in the whole fleet, 0-based */
};

struct fleet {
	struct fleet_machine *m;	/* this shard's machines, by index */
	size_t	 n;			/* how many, >= 1 */
	size_t	 first;			/* m[0].index */
	size_t	 total;			/* machines in the whole fleet */
	unsigned shard;			/* 0-based, < nshards */
	unsigned nshards;
	double	 connect_rate;		/* sign-ins/s for this shard: the
					 * fleet-wide rate / nshards */
	int	 keep_jobs;		/* keep stepper files */
};

/* Shard `shard` of `nshards` of a fleet of `total`: *first and *count
 * (0 when nshards > total leaves it empty).  -1 when shard >= nshards or
 * nshards is 0. */
int	 fleet_slice(size_t total, unsigned shard, unsigned nshards,
	    size_t *first, size_t *count);
/* This shard's machines.  0, or -1 with *fl zeroed and a reason in err:
 * no Glowforge in the config, a shard out of range or empty, no memory.
 * *fl is always safe to fleet_free(). */
int	 fleet_build(struct fleet *fl, const struct config *cf, char *err,
	    size_t errlen);
/* Wipes the passwords, frees, zeroes *fl. */
void	 fleet_free(struct fleet *fl);

#endif
