/*
 * fuzz: what the fuzz targets share with libFuzzer and with replay_main.c.
 */
#ifndef GFE_FUZZ_H
#define GFE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Called once per input; libFuzzer wants 0 back (-1: keep it out of the
 * corpus).  Defined by each fuzz_<target>.c. */
int	 LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * A property the code under test broke.  Not assert(): the fuzz build is
 * RelWithDebInfo, whose NDEBUG would compile the checks away, and abort()
 * is what both libFuzzer and the replay test report as a crash.
 */
#define FUZZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		abort();						\
	}								\
} while (0)

#endif
