/*
 * sim_fleet: the machines gf-cloud-sim accepts, and the tokens it issued
 * them.  A fleet of one is what --serial/--password make; --machines N
 * --serial-first S a range sharing one password; --machines-file a CSV of
 * serial,password[,hostname] lines.
 *
 * Lookups are hash chains threaded through the machines themselves: by
 * serial ("S<digits>" or digits), and by token (each machine's auth token
 * and its live ws tokens), so a sign-in or an upgrade costs O(1) whatever
 * the fleet's size, and a machine's second sign-in replaces its own tokens
 * only.  Single-threaded, no allocation after creation but the tables.
 */
#ifndef GFE_SIM_FLEET_H
#define GFE_SIM_FLEET_H

#include <stddef.h>
#include <stdint.h>

#define SIM_FLEET_SERIAL_MAX	20	/* digits */
#define SIM_FLEET_TOKEN_LEN	64	/* hex chars of an issued token */
#define SIM_FLEET_HOST_MAX	63	/* a CSV line's hostname */
#define SIM_FLEET_PASSWORD_MAX	256
#define SIM_FLEET_MACHINES_MAX	200000

enum sim_tok_kind { SIM_TOK_AUTH, SIM_TOK_WS };

struct sim_machine;

/* One issued token, linked in the fleet's token table while it is set. */
struct sim_tok {
	struct sim_tok		*next;	/* hash chain */
	struct sim_machine	*m;
	enum sim_tok_kind	 kind;
	int			 live;	/* ws: unused; auth: not retired */
	int			 linked;
	int64_t			 issued;	/* ms */
	char			 tok[SIM_FLEET_TOKEN_LEN + 1];
};

struct sim_machine {
	size_t			 idx;		/* 0 .. n-1 */
	char			 serial[SIM_FLEET_SERIAL_MAX + 1]; /* digits */
	char			*password;
	char			 hostname[SIM_FLEET_HOST_MAX + 1]; /* or "" */
	struct sim_machine	*next_serial;	/* hash chain */
	struct sim_tok		 auth;
	struct sim_tok		*ws;		/* nws slots */
	size_t			 nws;
	unsigned		 signins;	/* answered 200 */
};

struct sim_fleet;

/* One machine.  NULL on a bad argument (err says which). */
struct sim_fleet *sim_fleet_single(const char *serial, const char *password,
		    char *err, size_t errlen);
/* n machines, serials first .. first+n-1, one password. */
struct sim_fleet *sim_fleet_range(const char *first, size_t n,
		    const char *password, char *err, size_t errlen);
/* CSV text: "serial,password[,hostname]" per line; blank lines and lines
 * starting with '#' skipped.  On error NULL, "name:line: why" in err. */
struct sim_fleet *sim_fleet_parse_csv(const char *text, size_t len,
		    const char *name, char *err, size_t errlen);
struct sim_fleet *sim_fleet_load_csv(const char *path, char *err,
		    size_t errlen);
void		 sim_fleet_free(struct sim_fleet *f);

size_t		 sim_fleet_count(const struct sim_fleet *f);
struct sim_machine *sim_fleet_machine(struct sim_fleet *f, size_t idx);
/* serial: digits, or "S" + digits; NULL when not in the fleet. */
struct sim_machine *sim_fleet_by_serial(struct sim_fleet *f,
		    const char *serial);
/* The token's record (live or used), or NULL. */
struct sim_tok	*sim_fleet_by_token(struct sim_fleet *f, const char *tok);
/* Sets t to tok (64 chars) and links it; a token t held is unlinked
 * first. */
void		 sim_fleet_token_set(struct sim_fleet *f, struct sim_tok *t,
		    const char *tok, int64_t now_ms);
/* A ws slot of m for a new token: a free, used or expired one, else the
 * oldest. */
struct sim_tok	*sim_fleet_ws_slot(struct sim_machine *m, int64_t now_ms,
		    int64_t ttl_ms);
/* Constant-time comparison of two NUL-terminated strings (1: equal). */
int		 sim_fleet_same(const char *a, const char *b);

#endif
