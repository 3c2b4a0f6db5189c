/*
 * queue: see queue.h.  A singly linked list under one mutex; a condition
 * variable wakes blocked poppers, another wakes queue_wait_empty().  The
 * optional wake hook is called after the lock is released, because it may
 * call into another library (lws_cancel_service) that takes its own locks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "mono.h"
#include "queue.h"

struct queue_item {
	struct queue_item	*next;
	char			*data;
	size_t			 len;	/* bytes */
	enum queue_prio		 prio;
};

struct queue {
	pthread_mutex_t		 mtx;
	pthread_cond_t		 nonempty;
	pthread_cond_t		 empty;
	struct queue_item	*head, *tail;
	size_t			 count;		/* items queued */
	size_t			 max;		/* items, the bound */
	size_t			 bytes;		/* queued, sum of len */
	size_t			 max_bytes;	/* bytes, the bound; 0: none */
	size_t			 dropped;	/* items dropped so far */
	int			 closed;
	void			(*wake)(void *);
	void			*wake_arg;
};

struct queue *
queue_new(size_t max_items, size_t max_bytes, void (*wake)(void *),
    void *wake_arg)
{
	struct queue *q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	pthread_mutex_init(&q->mtx, NULL);
	mono_cond_init(&q->nonempty);
	mono_cond_init(&q->empty);
	q->max = max_items > 0 ? max_items : 1;
	q->max_bytes = max_bytes;
	q->wake = wake;
	q->wake_arg = wake_arg;
	return q;
}

void
queue_free(struct queue *q)
{
	struct queue_item *it, *next;

	if (q == NULL)
		return;
	for (it = q->head; it != NULL; it = next) {
		next = it->next;
		free(it->data);
		free(it);
	}
	pthread_cond_destroy(&q->nonempty);
	pthread_cond_destroy(&q->empty);
	pthread_mutex_destroy(&q->mtx);
	free(q);
}

/* Unlinks the oldest low-priority item; 0 if there was none.  Lock held. */
static int
queue_drop_oldest_low(struct queue *q)
{
	struct queue_item *it, *prev = NULL;

	for (it = q->head; it != NULL; prev = it, it = it->next) {
		if (it->prio != QUEUE_PRIO_LOW)
			continue;
		if (prev == NULL)
			q->head = it->next;
		else
			prev->next = it->next;
		if (q->tail == it)
			q->tail = prev;
		q->bytes -= it->len;
		free(it->data);
		free(it);
		q->count--;
		q->dropped++;
		return 1;
	}
	return 0;
}

/* Would one more item of len bytes pass a bound?  Lock held. */
static int
queue_full(const struct queue *q, size_t len)
{
	if (q->count >= q->max)
		return 1;
	/* An item alone over the byte bound still goes into an empty queue. */
	return q->max_bytes != 0 && q->count > 0 &&
	    q->bytes + len > q->max_bytes;
}

static void
queue_wake(struct queue *q)
{
	if (q->wake != NULL)
		q->wake(q->wake_arg);
}

int
queue_push(struct queue *q, char *data, size_t len, enum queue_prio prio)
{
	struct queue_item *it;
	int ret = 0;

	if ((it = malloc(sizeof(*it))) == NULL) {
		free(data);
		return -1;
	}
	it->next = NULL;
	it->data = data;
	it->len = len;
	it->prio = prio;

	pthread_mutex_lock(&q->mtx);
	if (q->closed) {
		pthread_mutex_unlock(&q->mtx);
		free(data);
		free(it);
		return -1;
	}
	while (queue_full(q, len)) {
		if (queue_drop_oldest_low(q)) {
			ret = 1;
			continue;
		}
		if (prio == QUEUE_PRIO_LOW) {
			/* Only events queued: this frame is the one to go. */
			q->dropped++;
			pthread_mutex_unlock(&q->mtx);
			free(data);
			free(it);
			return 1;
		}
		break;	/* an event past the bound is kept (queue.h) */
	}
	if (q->tail != NULL)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->count++;
	q->bytes += len;
	pthread_cond_signal(&q->nonempty);
	pthread_mutex_unlock(&q->mtx);
	queue_wake(q);
	return ret;
}

void
queue_unpop(struct queue *q, char *data, size_t len, enum queue_prio prio)
{
	struct queue_item *it;

	if ((it = malloc(sizeof(*it))) == NULL) {
		log_warnx("out of memory: a frame is lost");
		free(data);
		return;
	}
	it->data = data;
	it->len = len;
	it->prio = prio;
	pthread_mutex_lock(&q->mtx);
	it->next = q->head;
	q->head = it;
	if (q->tail == NULL)
		q->tail = it;
	q->count++;
	q->bytes += len;
	pthread_cond_signal(&q->nonempty);
	pthread_mutex_unlock(&q->mtx);
}

/* Lock held, queue not empty. */
static char *
queue_take_head(struct queue *q, size_t *len, enum queue_prio *prio)
{
	struct queue_item *it = q->head;
	char *data = it->data;

	q->head = it->next;
	if (q->head == NULL)
		q->tail = NULL;
	q->count--;
	q->bytes -= it->len;
	if (len != NULL)
		*len = it->len;
	if (prio != NULL)
		*prio = it->prio;
	free(it);
	if (q->count == 0)
		pthread_cond_broadcast(&q->empty);
	return data;
}

char *
queue_pop(struct queue *q, size_t *len, enum queue_prio *prio)
{
	char *data = NULL;

	pthread_mutex_lock(&q->mtx);
	if (q->head != NULL && !q->closed)
		data = queue_take_head(q, len, prio);
	pthread_mutex_unlock(&q->mtx);
	return data;
}

char *
queue_pop_wait(struct queue *q, size_t *len, int timeout_ms)
{
	struct timespec ts;
	char *data = NULL;
	int rc = 0;

	if (timeout_ms >= 0)
		mono_deadline(&ts, timeout_ms);
	pthread_mutex_lock(&q->mtx);
	while (q->head == NULL && !q->closed && rc != ETIMEDOUT) {
		if (timeout_ms < 0)
			pthread_cond_wait(&q->nonempty, &q->mtx);
		else
			rc = pthread_cond_timedwait(&q->nonempty, &q->mtx, &ts);
	}
	/* Closed: nothing more, however much is left (see queue.h). */
	if (q->head != NULL && !q->closed)
		data = queue_take_head(q, len, NULL);
	pthread_mutex_unlock(&q->mtx);
	return data;
}

void
queue_close(struct queue *q)
{
	pthread_mutex_lock(&q->mtx);
	q->closed = 1;
	pthread_cond_broadcast(&q->nonempty);
	pthread_cond_broadcast(&q->empty);
	pthread_mutex_unlock(&q->mtx);
	queue_wake(q);
}

size_t
queue_len(struct queue *q)
{
	size_t n;

	pthread_mutex_lock(&q->mtx);
	n = q->count;
	pthread_mutex_unlock(&q->mtx);
	return n;
}

size_t
queue_bytes(struct queue *q)
{
	size_t n;

	pthread_mutex_lock(&q->mtx);
	n = q->bytes;
	pthread_mutex_unlock(&q->mtx);
	return n;
}

size_t
queue_dropped(struct queue *q)
{
	size_t n;

	pthread_mutex_lock(&q->mtx);
	n = q->dropped;
	pthread_mutex_unlock(&q->mtx);
	return n;
}

int
queue_wait_empty(struct queue *q, int timeout_ms)
{
	struct timespec ts;
	int rc = 0, ret;

	mono_deadline(&ts, timeout_ms);
	pthread_mutex_lock(&q->mtx);
	while (q->count > 0 && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&q->empty, &q->mtx, &ts);
	ret = q->count == 0 ? 0 : -1;
	pthread_mutex_unlock(&q->mtx);
	return ret;
}
