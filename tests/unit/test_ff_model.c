/*
 * Unit tests for ff_model.c: the per-model table, the initial state, the
 * heaters' approach, a print's lifecycle driven by explicit times, the file
 * list's bound, and the refusals.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ff_model.h"

static struct ff_model *
new_model(enum ff_kind kind, int64_t now)
{
	struct ff_params p = {
		.kind = kind,
		.name = "Test",
		.serial = "SN1",
		.check_code = "cc",
	};
	struct ff_model *m = ff_model_new(&p, now);

	assert_non_null(m);
	return m;
}

static const struct kind_case {
	const char	*s;
	int		 ok;
	enum ff_kind	 kind;
} kind_cases[] = {
	{ "finder", 0, FF_FINDER },
	{ "adventurer3", 0, FF_ADVENTURER3 },
	{ "adventurer4", 0, FF_ADVENTURER4 },
	{ "adventurer5m", 0, FF_ADVENTURER5M },
	{ "adventurer5m-pro", 0, FF_ADVENTURER5M_PRO },
	{ "Adventurer5M-Pro", 0, FF_ADVENTURER5M_PRO },
	{ "adventurer5", -1, FF_FINDER },
	{ "", -1, FF_FINDER },
	{ "finder ", -1, FF_FINDER },
};

static void
test_kinds(void **state)
{
	enum ff_kind k;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(kind_cases) / sizeof(kind_cases[0]); i++) {
		const struct kind_case *c = &kind_cases[i];

		k = FF_FINDER;
		if (ff_model_kind_parse(c->s, &k) != c->ok)
			fail_msg("\"%s\": want %d", c->s, c->ok);
		if (c->ok == 0)
			assert_int_equal(k, c->kind);
	}
	assert_int_equal(ff_model_kind_parse(NULL, &k), -1);
	/* Every row of the table parses back to itself. */
	for (i = 0; i < FF_KIND_COUNT; i++) {
		const struct ff_info *fi = ff_model_kind_info(i);

		assert_non_null(fi);
		assert_int_equal(fi->kind, i);
		assert_int_equal(ff_model_kind_parse(ff_model_kind_name(i), &k),
		    0);
		assert_int_equal(k, i);
	}
	assert_null(ff_model_kind_info(FF_KIND_COUNT));
	assert_string_equal(ff_model_kind_name(FF_KIND_COUNT), "unknown");
}

static const struct init_case {
	enum ff_kind	 kind;
	double		 nozzle, bed;	/* °C */
	double		 x, y, z;	/* mm */
	int		 led;
	uint64_t	 m27_done, m27_total;
	int		 disco_modern, http_api;
} init_cases[] = {
	{ FF_FINDER, 24, 0, 86.9984, 70.5016, 140, 0, 5525653, 5525652, 0, 0 },
	{ FF_ADVENTURER3, 27, 20, 0, 0, 0, 1, 0, 100, 0, 0 },
	{ FF_ADVENTURER4, 25, 25, 0, 0, 0, 1, 0, 100, 0, 0 },
	{ FF_ADVENTURER5M, 25, 25, 0, 0, 0, 1, 0, 100, 1, 1 },
	{ FF_ADVENTURER5M_PRO, 25, 25, 0, 0, 0, 1, 0, 100, 1, 1 },
};

static void
test_initial_state(void **state)
{
	struct ff_status st;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(init_cases) / sizeof(init_cases[0]); i++) {
		const struct init_case *c = &init_cases[i];
		struct ff_model *m = new_model(c->kind, 1000);

		ff_model_status(m, 1000, &st);
		assert_int_equal(st.machine, FF_MACHINE_READY);
		assert_int_equal(st.move, FF_MOVE_READY);
		assert_int_equal(st.job, FF_JOB_NONE);
		assert_true(st.nozzle == c->nozzle);
		assert_true(st.bed == c->bed);
		assert_true(st.nozzle_target == 0 && st.bed_target == 0);
		assert_true(st.pos[0] == c->x && st.pos[1] == c->y &&
		    st.pos[2] == c->z && st.pos[3] == 0);
		assert_int_equal(st.led, c->led);
		assert_int_equal(st.m27_done, c->m27_done);
		assert_int_equal(st.m27_total, c->m27_total);
		assert_string_equal(st.file, "");
		assert_int_equal(ff_model_info(m)->disco_modern,
		    c->disco_modern);
		assert_int_equal(ff_model_info(m)->http_api, c->http_api);
		/* Every model has its demo file on the card. */
		assert_int_equal(ff_model_file_count(m), 1);
		assert_int_equal(ff_model_tcp_port(m), 8899);
		assert_int_equal(ff_model_http_port(m), 8898);
		assert_string_equal(ff_model_ip(m), "");
		ff_model_free(m);
	}
}

static void
test_params(void **state)
{
	struct ff_params p = { .kind = FF_ADVENTURER5M, .tcp_port = 9000,
	    .http_port = 9001, .ip = "10.0.0.2" };
	struct ff_model *m;
	char name[] = "Mutable";

	(void)state;
	m = ff_model_new(&p, 0);
	assert_non_null(m);
	assert_string_equal(ff_model_name(m), "Adventurer 5M");
	assert_string_equal(ff_model_serial(m), "");
	assert_string_equal(ff_model_check_code(m), "");
	assert_string_equal(ff_model_ip(m), "10.0.0.2");
	assert_int_equal(ff_model_tcp_port(m), 9000);
	assert_int_equal(ff_model_http_port(m), 9001);
	ff_model_free(m);

	/* Strings are copied. */
	p.name = name;
	m = ff_model_new(&p, 0);
	assert_non_null(m);
	name[0] = 'X';
	assert_string_equal(ff_model_name(m), "Mutable");
	ff_model_free(m);

	p.kind = (enum ff_kind)FF_KIND_COUNT;
	assert_null(ff_model_new(&p, 0));
	ff_model_free(NULL);
}

/* The closed form: ambient + (target - ambient)(1 - e^(-t/tau)). */
static double
approach(double from, double to, double tau_ms, double t_ms)
{
	return to + (from - to) * exp(-t_ms / tau_ms);
}

static const struct heat_case {
	int64_t	 t;		/* ms since M104 S200 / M140 S60 */
	double	 nozzle, bed;	/* °C; < 0: the closed form */
} heat_cases[] = {
	{ 0, 25, 25 },
	{ 1000, -1, -1 },
	{ 15000, -1, -1 },
	{ 60000, -1, -1 },
	{ 200000, 200, -1 },
	{ 600000, 200, 60 },	/* settled: exactly the target */
};

static void
test_heating(void **state)
{
	struct ff_model *m = new_model(FF_ADVENTURER5M, 0);
	struct ff_status st;
	double prev_n = 0, prev_b = 0, want;
	size_t i;

	(void)state;
	ff_model_set_target(m, FF_HEATER_NOZZLE, 200, 0);
	ff_model_set_target(m, FF_HEATER_BED, 60, 0);
	for (i = 0; i < sizeof(heat_cases) / sizeof(heat_cases[0]); i++) {
		const struct heat_case *c = &heat_cases[i];

		ff_model_status(m, c->t, &st);
		want = c->nozzle >= 0 ? c->nozzle :
		    approach(25, 200, FF_NOZZLE_TAU_MS, c->t);
		if (fabs(st.nozzle - want) > 1e-9)
			fail_msg("nozzle at %lld: %f, want %f",
			    (long long)c->t, st.nozzle, want);
		want = c->bed >= 0 ? c->bed :
		    approach(25, 60, FF_BED_TAU_MS, c->t);
		if (fabs(st.bed - want) > 1e-9)
			fail_msg("bed at %lld: %f, want %f", (long long)c->t,
			    st.bed, want);
		assert_true(st.nozzle >= prev_n && st.bed >= prev_b);
		prev_n = st.nozzle;
		prev_b = st.bed;
		assert_true(st.nozzle_target == 200 && st.bed_target == 60);
	}
	/* Off: back to ambient, exactly, in time. */
	ff_model_set_target(m, FF_HEATER_NOZZLE, 0, 600000);
	ff_model_status(m, 615000, &st);
	assert_true(fabs(st.nozzle - approach(200, 25, FF_NOZZLE_TAU_MS,
	    15000)) < 1e-9);
	ff_model_status(m, 1200000, &st);
	assert_true(st.nozzle == 25);
	/* Clamped to the model's limits. */
	ff_model_set_target(m, FF_HEATER_NOZZLE, 1000, 1200000);
	ff_model_set_target(m, FF_HEATER_BED, -5, 1200000);
	ff_model_status(m, 1200000, &st);
	assert_true(st.nozzle_target == 280 && st.bed_target == 0);
	ff_model_set_target(m, FF_HEATER_NOZZLE, NAN, 1200000);
	ff_model_status(m, 1200000, &st);
	assert_true(st.nozzle_target == 0);
	ff_model_free(m);
}

/* Asking every 100 ms or once gives the same temperature. */
static void
test_heating_lazy(void **state)
{
	struct ff_model *a = new_model(FF_FINDER, 0);
	struct ff_model *b = new_model(FF_FINDER, 0);
	struct ff_status sa, sb;
	int64_t t;

	(void)state;
	ff_model_set_target(a, FF_HEATER_NOZZLE, 210, 0);
	ff_model_set_target(b, FF_HEATER_NOZZLE, 210, 0);
	for (t = 0; t <= 30000; t += 100)
		ff_model_advance(a, t);
	ff_model_status(a, 30000, &sa);
	ff_model_status(b, 30000, &sb);
	assert_true(fabs(sa.nozzle - sb.nozzle) < 1e-9);
	/* Time going backwards changes nothing. */
	ff_model_status(a, 10, &sb);
	assert_true(sa.nozzle == sb.nozzle && sb.t == 30000);
	/* The Finder has no bed to heat. */
	ff_model_set_target(a, FF_HEATER_BED, 60, 30000);
	ff_model_status(a, 90000, &sa);
	assert_true(sa.bed == 0 && sa.bed_target == 0);
	ff_model_free(a);
	ff_model_free(b);
}

/*
 * A 1,000,000-byte job: 500 s of printing, 100 layers.  Printed for 100 s,
 * paused 50 s, resumed: it ends at 550 s.
 */
static const struct job_case {
	int64_t		 t;		/* ms */
	enum ff_job	 job;
	enum ff_machine	 machine;
	enum ff_move	 move;
	uint64_t	 pct;
	unsigned	 layer;
	int64_t		 elapsed;	/* ms */
	const char	*file;
} job_cases[] = {
	{ 0, FF_JOB_PRINTING, FF_MACHINE_BUILDING, FF_MOVE_MOVING, 0, 1, 0,
	  "job.gcode" },
	{ 4999, FF_JOB_PRINTING, FF_MACHINE_BUILDING, FF_MOVE_MOVING, 0, 1,
	  4999, "job.gcode" },
	{ 5000, FF_JOB_PRINTING, FF_MACHINE_BUILDING, FF_MOVE_MOVING, 1, 2,
	  5000, "job.gcode" },
	{ 100000, FF_JOB_PAUSED, FF_MACHINE_PAUSED, FF_MOVE_PAUSED, 20, 21,
	  100000, "job.gcode" },			/* paused here */
	{ 140000, FF_JOB_PAUSED, FF_MACHINE_PAUSED, FF_MOVE_PAUSED, 20, 21,
	  100000, "job.gcode" },
	{ 150000, FF_JOB_PRINTING, FF_MACHINE_BUILDING, FF_MOVE_MOVING, 20,
	  21, 100000, "job.gcode" },			/* resumed here */
	{ 300000, FF_JOB_PRINTING, FF_MACHINE_BUILDING, FF_MOVE_MOVING, 50,
	  51, 250000, "job.gcode" },
	{ 549999, FF_JOB_PRINTING, FF_MACHINE_BUILDING, FF_MOVE_MOVING, 99,
	  100, 499999, "job.gcode" },
	{ 550000, FF_JOB_DONE, FF_MACHINE_READY, FF_MOVE_READY, 100, 100,
	  500000, "job.gcode" },
	{ 900000, FF_JOB_DONE, FF_MACHINE_READY, FF_MOVE_READY, 100, 100,
	  500000, "job.gcode" },
};

static void
test_print_lifecycle(void **state)
{
	struct ff_model *m = new_model(FF_ADVENTURER5M_PRO, 0);
	struct ff_status st;
	size_t i;

	(void)state;
	assert_int_equal(ff_model_file_add(m, "job.gcode", 1000000), 0);
	assert_int_equal(ff_model_print_file(m, "job.gcode", 0), 0);
	for (i = 0; i < sizeof(job_cases) / sizeof(job_cases[0]); i++) {
		const struct job_case *c = &job_cases[i];

		if (c->t == 100000)
			assert_int_equal(ff_model_pause(m, c->t), 0);
		if (c->t == 150000)
			assert_int_equal(ff_model_resume(m, c->t), 0);
		ff_model_status(m, c->t, &st);
		if (st.job != c->job || st.machine != c->machine ||
		    st.move != c->move || st.m27_done != c->pct ||
		    st.layer != c->layer || st.elapsed_ms != c->elapsed)
			fail_msg("at %lld: job %d machine %d move %d %llu%% "
			    "layer %u elapsed %lld", (long long)c->t, st.job,
			    st.machine, st.move,
			    (unsigned long long)st.m27_done, st.layer,
			    (long long)st.elapsed_ms);
		assert_int_equal(st.m27_total, 100);
		assert_int_equal(st.layers, 100);
		assert_int_equal(st.remaining_ms, 500000 - c->elapsed);
		assert_true(fabs(st.progress - c->elapsed / 500000.0) < 1e-12);
		assert_string_equal(st.file, c->file);
		/* Z follows the layer, A the filament. */
		if (st.job != FF_JOB_DONE)
			assert_true(fabs(st.pos[2] - c->layer * FF_LAYER_MM) <
			    1e-9);
		assert_true(fabs(st.pos[3] - 1000000.0 * c->elapsed / 500000 *
		    FF_FILAMENT_MM_PER_BYTE) < 1e-6);
	}
	/* The print set its temperatures; its end switched them off. */
	assert_true(st.nozzle_target == 0 && st.bed_target == 0);
	assert_int_equal(st.total_print_ms, 500000);
	assert_true(fabs(st.total_filament_mm - 3000) < 1e-9);
	/* Cleared: ready, M27 back to 0/100. */
	assert_int_equal(ff_model_clear_platform(m, 900000), 0);
	ff_model_status(m, 900000, &st);
	assert_int_equal(st.job, FF_JOB_NONE);
	assert_int_equal(st.m27_done, 0);
	assert_string_equal(st.file, "");
	ff_model_free(m);
}

/* The job's end is placed at its exact instant, whenever asked. */
static void
test_print_end_exact(void **state)
{
	struct ff_model *a = new_model(FF_ADVENTURER4, 0);
	struct ff_model *b = new_model(FF_ADVENTURER4, 0);
	struct ff_status sa, sb;

	(void)state;
	/* 1 MiB demo file: 524288 ms. */
	assert_int_equal(ff_model_print_file(a, "20mm_cube.gx", 0), 0);
	assert_int_equal(ff_model_print_file(b, "20mm_cube.gx", 0), 0);
	ff_model_status(a, 200000, &sa);
	assert_true(sa.nozzle_target == 210 && sa.bed_target == 60);
	ff_model_advance(b, 524288);
	ff_model_status(b, 524288, &sb);
	assert_int_equal(sb.job, FF_JOB_DONE);
	ff_model_status(a, 700000, &sa);
	ff_model_status(b, 700000, &sb);
	assert_int_equal(sa.job, FF_JOB_DONE);
	assert_true(fabs(sa.nozzle - sb.nozzle) < 1e-9);
	assert_true(fabs(sa.bed - sb.bed) < 1e-9);
	/* It has cooled since 524.288 s, not since 700 s. */
	assert_true(sa.nozzle < 100);
	ff_model_free(a);
	ff_model_free(b);
}

/* The Finder counts bytes, and a finished job one past its end. */
static void
test_finder_bytes(void **state)
{
	struct ff_model *m = new_model(FF_FINDER, 0);
	struct ff_status st;

	(void)state;
	assert_int_equal(ff_model_file_add(m, "a.g", 200000), 0);
	assert_int_equal(ff_model_select(m, "a.g", 0), 0);
	assert_int_equal(ff_model_start(m, 0), 0);
	/* 200000 bytes at FF_PRINT_BYTES_PER_S: 100 s. */
	ff_model_status(m, 25000, &st);
	assert_int_equal(st.m27_done, 50000);
	assert_int_equal(st.m27_total, 200000);
	ff_model_status(m, 100000, &st);
	assert_int_equal(st.job, FF_JOB_DONE);
	assert_int_equal(st.m27_done, 200001);
	assert_int_equal(st.m27_total, 200000);
	/* Cancelled: the count where it stopped. */
	assert_int_equal(ff_model_print_file(m, "a.g", 100000), 0);
	assert_int_equal(ff_model_cancel(m, 130000), 0);
	ff_model_status(m, 130000, &st);
	assert_int_equal(st.job, FF_JOB_NONE);
	assert_int_equal(st.m27_done, 60000);
	assert_int_equal(st.m27_total, 200000);
	assert_true(st.nozzle_target == 0);
	ff_model_free(m);
}

static void
test_short_job_floor(void **state)
{
	struct ff_model *m = new_model(FF_ADVENTURER5M, 0);
	struct ff_status st;

	(void)state;
	assert_int_equal(ff_model_file_add(m, "tiny.gcode", 10), 0);
	assert_int_equal(ff_model_print_file(m, "tiny.gcode", 0), 0);
	ff_model_status(m, FF_PRINT_MIN_MS - 1, &st);
	assert_int_equal(st.job, FF_JOB_PRINTING);
	assert_int_equal(st.layers, 1);
	ff_model_status(m, FF_PRINT_MIN_MS, &st);
	assert_int_equal(st.job, FF_JOB_DONE);
	ff_model_free(m);
}

static void
test_refusals(void **state)
{
	struct ff_model *m = new_model(FF_ADVENTURER5M, 0);
	double v[4] = { 10, 10, 10, 0 };

	(void)state;
	/* Nothing to pause, resume or cancel. */
	assert_int_equal(ff_model_pause(m, 0), -1);
	assert_int_equal(ff_model_resume(m, 0), -1);
	assert_int_equal(ff_model_cancel(m, 0), -1);
	assert_int_equal(ff_model_start(m, 0), -1);	/* none selected */
	assert_int_equal(ff_model_print_file(m, "nope.gcode", 0), -1);
	assert_int_equal(ff_model_select(m, "nope.gcode", 0), -1);
	assert_int_equal(ff_model_print_file(m, NULL, 0), -1);

	/* Homing: no print, no move, for FF_HOME_MS. */
	assert_int_equal(ff_model_home(m, 0), 0);
	assert_int_equal(ff_model_print_file(m, "20mm_cube.gcode", 1), -1);
	assert_int_equal(ff_model_move(m, v, 7, 0, 1), -1);
	assert_int_equal(ff_model_home(m, 1), -1);
	assert_int_equal(ff_model_print_file(m, "20mm_cube.gcode",
	    FF_HOME_MS), 0);

	/* Printing: no second print, no move, no home, no select. */
	assert_int_equal(ff_model_print_file(m, "20mm_cube.gcode",
	    FF_HOME_MS), -1);
	assert_int_equal(ff_model_move(m, v, 7, 0, FF_HOME_MS), -1);
	assert_int_equal(ff_model_home(m, FF_HOME_MS), -1);
	assert_int_equal(ff_model_select(m, "20mm_cube.gcode", FF_HOME_MS),
	    -1);
	assert_int_equal(ff_model_resume(m, FF_HOME_MS), -1);
	assert_int_equal(ff_model_clear_platform(m, FF_HOME_MS), -1);
	assert_int_equal(ff_model_pause(m, FF_HOME_MS), 0);
	assert_int_equal(ff_model_pause(m, FF_HOME_MS), -1);
	assert_int_equal(ff_model_cancel(m, FF_HOME_MS), 0);
	assert_int_equal(ff_model_move(m, v, 7, 0, FF_HOME_MS), 0);
	ff_model_free(m);
}

static void
test_estop(void **state)
{
	struct ff_model *m = new_model(FF_ADVENTURER5M, 0);
	struct ff_status st;

	(void)state;
	assert_int_equal(ff_model_print_file(m, "20mm_cube.gcode", 0), 0);
	ff_model_estop(m, 1000);
	ff_model_status(m, 1000, &st);
	assert_int_equal(st.job, FF_JOB_NONE);
	assert_int_equal(st.machine, FF_MACHINE_READY);
	assert_true(st.nozzle_target == 0 && st.bed_target == 0);
	/* Homing interrupted too. */
	assert_int_equal(ff_model_home(m, 2000), 0);
	ff_model_estop(m, 2500);
	ff_model_status(m, 2500, &st);
	assert_int_equal(st.machine, FF_MACHINE_READY);
	ff_model_free(m);
}

static void
test_moves(void **state)
{
	struct ff_model *m = new_model(FF_ADVENTURER5M, 0);
	struct ff_status st;
	double v[4] = { 30, 40, 0, 5 };

	(void)state;
	/* 50 mm at 600 mm/min: 5 s of MOVING. */
	assert_int_equal(ff_model_move(m, v, 0x3 | 0x8, 600, 0), 0);
	ff_model_status(m, 4999, &st);
	assert_int_equal(st.move, FF_MOVE_MOVING);
	assert_int_equal(st.machine, FF_MACHINE_READY);
	assert_true(st.pos[0] == 30 && st.pos[1] == 40 && st.pos[3] == 5);
	ff_model_status(m, 5000, &st);
	assert_int_equal(st.move, FF_MOVE_READY);
	/* Relative, and the feed is remembered. */
	ff_model_set_relative(m, 1);
	v[0] = -500;		/* clamped at -110 */
	assert_int_equal(ff_model_move(m, v, 0x1, 0, 5000), 0);
	ff_model_status(m, 5000, &st);
	assert_true(st.pos[0] == -110 && st.pos[1] == 40);
	/* 140 mm at 600 mm/min: 14 s. */
	ff_model_status(m, 5000 + 13999, &st);
	assert_int_equal(st.move, FF_MOVE_MOVING);
	ff_model_status(m, 5000 + 14000, &st);
	assert_int_equal(st.move, FF_MOVE_READY);
	/* Home: the table's position. */
	assert_int_equal(ff_model_home(m, 20000), 0);
	ff_model_status(m, 20000, &st);
	assert_int_equal(st.machine, FF_MACHINE_BUSY);
	assert_true(st.pos[0] == 0 && st.pos[1] == 0 && st.pos[2] == 0);
	ff_model_free(m);
}

static void
test_files(void **state)
{
	static const char *const bad[] = {
		"", ".", "..", "a/b.gx", "a\\b.gx", "tab\there", "nl\n",
		"del\x7f",
	};
	struct ff_model *m = new_model(FF_ADVENTURER5M, 0);
	char name[FF_NAME_MAX + 2];
	uint64_t size;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ff_model_file_add(m, bad[i], 1) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	assert_int_equal(ff_model_file_add(m, NULL, 1), -1);
	memset(name, 'n', FF_NAME_MAX + 1);
	name[FF_NAME_MAX + 1] = '\0';
	assert_int_equal(ff_model_file_add(m, name, 1), -1);
	name[FF_NAME_MAX] = '\0';
	assert_int_equal(ff_model_file_add(m, name, 1), 0);
	assert_int_equal(ff_model_file_add(m, "Würfel gross.3mf", 7), 0);

	/* Fill up to FF_FILES_MAX; the next is refused. */
	for (i = ff_model_file_count(m); i < FF_FILES_MAX; i++) {
		snprintf(name, sizeof(name), "f%03zu.gcode", i);
		assert_int_equal(ff_model_file_add(m, name, i), 0);
	}
	assert_int_equal(ff_model_file_count(m), FF_FILES_MAX);
	assert_int_equal(ff_model_file_add(m, "one-too-many.gcode", 1), -1);
	assert_int_equal(ff_model_file_count(m), FF_FILES_MAX);
	/* A name already there still takes a new size. */
	assert_int_equal(ff_model_file_add(m, "f100.gcode", 4242), 0);
	assert_int_equal(ff_model_file_find(m, "f100.gcode", &size), 0);
	assert_int_equal(size, 4242);
	assert_int_equal(ff_model_file_find(m, "one-too-many.gcode", NULL),
	    -1);
	/* Order of arrival. */
	assert_string_equal(ff_model_file_name(m, 0, &size),
	    "20mm_cube.gcode");
	assert_int_equal(size, 1048576);
	assert_string_equal(ff_model_file_name(m, 2, NULL),
	    "Würfel gross.3mf");
	assert_null(ff_model_file_name(m, FF_FILES_MAX, NULL));
	ff_model_free(m);
}

static void
test_settings(void **state)
{
	struct ff_model *m = new_model(FF_ADVENTURER5M_PRO, 0);
	struct ff_status st;

	(void)state;
	ff_model_set_led(m, 0, 0);
	ff_model_set_fan(m, FF_FAN_COOLING, 150);
	ff_model_set_fan(m, FF_FAN_CHAMBER, 40);
	ff_model_set_fan(m, FF_FAN_INTERNAL, 1);
	ff_model_set_fan(m, FF_FAN_EXTERNAL, 0);
	ff_model_set_speed(m, 120);
	ff_model_set_zcomp(m, 0.025);
	ff_model_status(m, 0, &st);
	assert_int_equal(st.led, 0);
	assert_int_equal(st.cooling_fan, 100);
	assert_int_equal(st.chamber_fan, 40);
	assert_int_equal(st.internal_fan, 1);
	assert_int_equal(st.external_fan, 0);
	assert_int_equal(st.speed_pct, 120);
	assert_true(st.z_comp == 0.025);
	assert_string_equal(ff_model_machine_name(FF_MACHINE_BUILDING),
	    "BUILDING_FROM_SD");
	assert_string_equal(ff_model_machine_name(FF_MACHINE_BUSY), "BUSY");
	assert_string_equal(ff_model_move_name(FF_MOVE_PAUSED), "PAUSED");
	ff_model_free(m);
}

static const struct name_case {
	const char	*name;
	int		 rc;
} name_cases[] = {
	{ "Workshop A3", 0 },
	{ "x", 0 },
	{ "0123456789012345678901234567890123456789012345678901234567890123",
	  0 },		/* FF_PRINTER_NAME_MAX bytes */
	{ "01234567890123456789012345678901234567890123456789012345678901234",
	  -1 },
	{ "", -1 },
	{ "tab\there", -1 },
	{ "new\nline", -1 },
	{ "W\xc3\xbcrfel", -1 },	/* ASCII only: it goes into M115 */
	{ NULL, -1 },
};

/* M610 / reName_cmd; a refused name leaves the old one. */
static void
test_rename(void **state)
{
	struct ff_model *m = new_model(FF_ADVENTURER3, 0);
	char want[128];
	size_t i;

	(void)state;
	snprintf(want, sizeof(want), "%s", ff_model_name(m));
	for (i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
		const struct name_case *nc = &name_cases[i];

		if (ff_model_set_name(m, nc->name) != nc->rc)
			fail_msg("name %zu: rc is not %d", i, nc->rc);
		if (nc->rc == 0)
			snprintf(want, sizeof(want), "%s", nc->name);
		assert_string_equal(ff_model_name(m), want);
	}
	ff_model_free(m);
}

/* M17/M18, M405/M406, M611, the camera and shutdown timer. */
static void
test_switches(void **state)
{
	struct ff_model *m = new_model(FF_FINDER, 0);
	struct ff_status st;

	(void)state;
	assert_int_equal(ff_model_set_tools(m, 3), -1);
	assert_int_equal(ff_model_set_tools(m, 0), -1);
	assert_int_equal(ff_model_set_tools(m, 2), 0);
	ff_model_set_runout(m, 0);
	ff_model_set_camera(m, 1);
	ff_model_set_shutdown(m, 1, 100000);
	assert_int_equal(ff_model_set_steppers(m, 0, 0), 0);
	ff_model_status(m, 0, &st);
	assert_int_equal(st.tool_count, 2);
	assert_int_equal(st.runout, 0);
	assert_int_equal(st.camera, 1);
	assert_int_equal(st.auto_shutdown, 1);
	assert_int_equal(st.shutdown_min, 24 * 60);
	assert_int_equal(st.steppers, 0);
	/* Steppers stay on while a job runs. */
	assert_int_equal(ff_model_print_file(m, "20mm_cube.g", 0), 0);
	assert_int_equal(ff_model_set_steppers(m, 1, 0), 0);
	assert_int_equal(ff_model_set_steppers(m, 0, 1000), -1);
	ff_model_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_initial_state),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_heating),
		cmocka_unit_test(test_heating_lazy),
		cmocka_unit_test(test_print_lifecycle),
		cmocka_unit_test(test_print_end_exact),
		cmocka_unit_test(test_finder_bytes),
		cmocka_unit_test(test_short_job_floor),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_estop),
		cmocka_unit_test(test_moves),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_settings),
		cmocka_unit_test(test_rename),
		cmocka_unit_test(test_switches),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
