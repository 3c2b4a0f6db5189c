/*
 * settings: see settings.h.  The table is generated from the CSV at build
 * time (settings_table.cmake checks every row there), so this file only
 * looks rows up and turns them into the report of PROTOCOL.md 6.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "settings.h"

/* The report carries every number as a JSON number: a double in cJSON,
 * which prints 15 significant digits when it deems that close enough.
 * Past 15 digits an integer would go out rounded, in exponent form. */
#define SETTINGS_EXACT_MAX	999999999999999.0

static int
settings_cmp(const void *key, const void *elem)
{
	const struct settings_row *row = elem;

	return strcmp(key, row->code);
}

const struct settings_row *
settings_find(const char *code)
{
	if (code == NULL)
		return NULL;
	return bsearch(code, settings_table, settings_table_len,
	    sizeof(settings_table[0]), settings_cmp);
}

/*
 * A decimal integer, as the CSV writes them: an optional '-' and digits,
 * nothing around them.  strtoll/strtoull alone would also take spaces, '+'
 * and, for strtoull, a negated value wrapped around.
 */
static int
settings_parse_int(const char *s, double *out)
{
	const char *p = s;
	char *end;
	double d;

	if (s == NULL)
		return -1;
	if (*p == '-')
		p++;
	if (*p < '0' || *p > '9')
		return -1;
	errno = 0;
	if (*s == '-')
		d = (double)strtoll(s, &end, 10);
	else
		d = (double)strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || fabs(d) > SETTINGS_EXACT_MAX)
		return -1;
	*out = d;
	return 0;
}

static int
settings_parse_float(const char *s, double *out)
{
	char *end;
	double d;

	/* strtod() would also skip leading blanks and take "inf" and "nan". */
	if (s == NULL || *s == '\0' || strchr("+-.0123456789", *s) == NULL)
		return -1;
	errno = 0;
	d = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !isfinite(d))
		return -1;
	*out = d;
	return 0;
}

/* The row's value from a string; NULL when it is not of the row's type. */
static cJSON *
settings_from_string(const struct settings_row *row, const char *s)
{
	double d;

	switch (row->type) {
	case SETTINGS_INT:
		if (settings_parse_int(s, &d) == -1)
			return NULL;
		return cJSON_CreateNumber(d);
	case SETTINGS_FLOAT:
		if (settings_parse_float(s, &d) == -1)
			return NULL;
		return cJSON_CreateNumber(d);
	case SETTINGS_STR:
		return cJSON_CreateString(s);
	}
	return NULL;
}

static cJSON *
settings_default(const struct settings_row *row)
{
	cJSON *v;

	/* An empty default is "none": 0 for numbers, "" for strings. */
	if (row->type != SETTINGS_STR && row->defval[0] == '\0')
		return cJSON_CreateNumber(0);
	if ((v = settings_from_string(row, row->defval)) != NULL)
		return v;
	/* Only a hand-made table gets here: the generator checks defaults. */
	log_warnx("%s: bad default '%s', reporting 0", row->code, row->defval);
	return cJSON_CreateNumber(0);
}

/* A number the emulator computes (SAid, MCsn, MCdt), in the row's type. */
static cJSON *
settings_from_number(const struct settings_row *row, int64_t n)
{
	char buf[32];

	if (row->type == SETTINGS_STR) {
		snprintf(buf, sizeof(buf), "%" PRId64, n);
		return cJSON_CreateString(buf);
	}
	return cJSON_CreateNumber((double)n);
}

/* The string the overrides hold for a row, or NULL: keep the default. */
static const char *
settings_str_override(const char *code, const struct settings_overrides *ov)
{
	if (strcmp(code, "MCov") == 0)
		return ov->fw_version;
	if (strcmp(code, "MCdv") == 0)
		return ov->app_version;
	if (strcmp(code, "HEfv") == 0)
		return ov->head_firmware;
	if (strcmp(code, "HEid") == 0)
		return ov->head_id;
	if (strcmp(code, "HEsn") == 0)
		return ov->head_serial;
	return NULL;
}

static cJSON *
settings_value(const struct settings_row *row,
    const struct settings_overrides *ov, int64_t now)
{
	const char *s;
	cJSON *v;

	if (strcmp(row->code, "SAid") == 0)
		return settings_from_number(row, ov->action_id);
	if (strcmp(row->code, "MCsn") == 0) {
		/* config_check() keeps serials to 15 digits: exact. */
		if (row->type == SETTINGS_STR) {
			char buf[32];

			snprintf(buf, sizeof(buf), "%" PRIu64, ov->serial);
			return cJSON_CreateString(buf);
		}
		return cJSON_CreateNumber((double)ov->serial);
	}
	if (strcmp(row->code, "MCdt") == 0)
		return settings_from_number(row, now);

	if ((s = settings_str_override(row->code, ov)) == NULL)
		return settings_default(row);
	if ((v = settings_from_string(row, s)) != NULL ||
	    row->type == SETTINGS_STR)
		return v;
	/* A typo in the config must not cost the whole report. */
	log_warnx("%s: '%s' is not %s, reporting the default '%s'", row->code,
	    s, row->type == SETTINGS_INT ? "an integer" : "a number",
	    row->defval);
	return settings_default(row);
}

cJSON *
settings_report(const struct settings_overrides *ov)
{
	struct settings_overrides none;
	cJSON *report, *v;
	int64_t now;
	size_t i;

	if (ov == NULL) {
		memset(&none, 0, sizeof(none));
		ov = &none;
	}
	now = ov->now != 0 ? ov->now : (int64_t)time(NULL);

	if ((report = cJSON_CreateObject()) == NULL)
		return NULL;
	for (i = 0; i < settings_table_len; i++) {
		if (!settings_table[i].reported)
			continue;
		if ((v = settings_value(&settings_table[i], ov, now)) == NULL)
			goto fail;
		if (!cJSON_AddItemToObject(report, settings_table[i].code, v)) {
			cJSON_Delete(v);
			goto fail;
		}
	}
	return report;

fail:
	cJSON_Delete(report);
	return NULL;
}

/* Rows whose value the overrides may change: printed per report. */
static int
settings_varies(const char *code)
{
	static const char *const codes[] = {
		"SAid", "MCsn", "MCdt", "MCov", "MCdv", "HEfv", "HEid", "HEsn",
	};
	size_t i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(code, codes[i]) == 0)
			return 1;
	return 0;
}

/* "CODE":value of one row as cJSON prints it (the braces of a one-member
 * object stripped); NULL on allocation failure. */
static char *
settings_member_text(const struct settings_row *row, cJSON *v)
{
	cJSON *o;
	char *s;
	size_t n;

	if (v == NULL || (o = cJSON_CreateObject()) == NULL) {
		cJSON_Delete(v);
		return NULL;
	}
	if (!cJSON_AddItemToObject(o, row->code, v)) {
		cJSON_Delete(v);
		cJSON_Delete(o);
		return NULL;
	}
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (s == NULL)
		return NULL;
	n = strlen(s);
	memmove(s, s + 1, n - 2);
	s[n - 2] = '\0';
	return s;
}

/* Each fixed row's member text, printed once; kept for the process's
 * life.  NULL where the row varies or is not reported. */
static char		**settings_fixed;
static int		  settings_fixed_ok;
static pthread_once_t	  settings_fixed_once = PTHREAD_ONCE_INIT;

static void
settings_fixed_init(void)
{
	size_t i;

	if ((settings_fixed = calloc(settings_table_len,
	    sizeof(*settings_fixed))) == NULL)
		return;
	for (i = 0; i < settings_table_len; i++) {
		if (!settings_table[i].reported ||
		    settings_varies(settings_table[i].code))
			continue;
		if ((settings_fixed[i] = settings_member_text(&settings_table[i],
		    settings_default(&settings_table[i]))) == NULL)
			goto fail;
	}
	settings_fixed_ok = 1;
	return;
fail:
	/* Never tried again (pthread_once): callers fall back on the tree. */
	log_warnx("settings: out of memory for the report's text");
	for (i = 0; i < settings_table_len; i++)
		free(settings_fixed[i]);
	free(settings_fixed);
	settings_fixed = NULL;
}

char *
settings_report_text(const struct settings_overrides *ov)
{
	struct settings_overrides none;
	const struct settings_row *row;
	char *buf = NULL, *m;
	size_t len = 0, i;
	int64_t now;
	FILE *fp;
	int first = 1, bad = 0;

	if (pthread_once(&settings_fixed_once, settings_fixed_init) != 0 ||
	    !settings_fixed_ok)
		return NULL;
	if (ov == NULL) {
		memset(&none, 0, sizeof(none));
		ov = &none;
	}
	now = ov->now != 0 ? ov->now : (int64_t)time(NULL);
	if ((fp = open_memstream(&buf, &len)) == NULL)
		return NULL;
	fputc('{', fp);
	for (i = 0; i < settings_table_len && !bad; i++) {
		row = &settings_table[i];
		if (!row->reported)
			continue;
		if (!first)
			fputc(',', fp);
		first = 0;
		if (settings_fixed[i] != NULL) {
			fputs(settings_fixed[i], fp);
			continue;
		}
		if ((m = settings_member_text(row, settings_value(row, ov,
		    now))) == NULL) {
			bad = 1;
			continue;
		}
		fputs(m, fp);
		free(m);
	}
	fputc('}', fp);
	/* A failed write can still close cleanly: never hand out a cut. */
	bad |= ferror(fp);
	if (fclose(fp) != 0 || bad) {
		free(buf);
		return NULL;
	}
	return buf;
}
