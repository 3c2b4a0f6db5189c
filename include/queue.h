/*
 * queue: a bounded, thread-safe FIFO of byte strings (frames).
 *
 * Ownership: queue_push() takes the malloc'ed buffer it is given, whatever it
 * returns; queue_pop*() hands the buffer back to the caller, who free()s it.
 * Nothing else ever frees a queued buffer except the queue itself, when it
 * must drop one (bound reached) or is destroyed.
 *
 * The bound is in items and, when max_bytes is not 0, in bytes too: a burst
 * of 1 MB frames must not take 1,000 MB.  When full, the queue drops the
 * oldest droppable items (QUEUE_PRIO_LOW: progress and log frames, received
 * lines) to make room; it never drops a QUEUE_PRIO_HIGH item (events), it
 * grows past the bound for them instead, because losing a terminal event
 * leaves the service waiting forever.
 */
#ifndef GFE_QUEUE_H
#define GFE_QUEUE_H

#include <stddef.h>

enum queue_prio {
	QUEUE_PRIO_LOW,		/* progress and log frames: may be dropped */
	QUEUE_PRIO_HIGH,	/* events: kept whatever the bound */
};

struct queue;

/* max_bytes: 0 for no byte bound.  wake, when not NULL, is called (without
 * the queue lock held) after every push: the WebSocket loop uses it to call
 * lws_cancel_service(). */
struct queue	*queue_new(size_t max_items, size_t max_bytes,
		    void (*wake)(void *), void *wake_arg);
void		 queue_free(struct queue *q);

/* 0 if queued without loss, 1 if an older low-priority item was dropped to
 * make room (or this one was, when nothing else could go), -1 once closed. */
int		 queue_push(struct queue *q, char *data, size_t len,
		    enum queue_prio prio);
/* Puts an item back at the head: a frame popped but not sent. */
void		 queue_unpop(struct queue *q, char *data, size_t len,
		    enum queue_prio prio);
/* Non-blocking: NULL when empty. */
char		*queue_pop(struct queue *q, size_t *len, enum queue_prio *prio);
/* Blocks until an item arrives, timeout_ms passes (-1: forever) or the queue
 * is closed; NULL in the last two cases. */
char		*queue_pop_wait(struct queue *q, size_t *len, int timeout_ms);
/* Wakes every waiter; later pushes fail and pops return NULL: a backlog is
 * not worked through at shutdown, queue_free() frees it. */
void		 queue_close(struct queue *q);
size_t		 queue_len(struct queue *q);
/* Bytes queued (the sum of the items' len). */
size_t		 queue_bytes(struct queue *q);
/* Items dropped since creation. */
size_t		 queue_dropped(struct queue *q);
/* Blocks until the queue is empty or timeout_ms passes; 0 if empty. */
int		 queue_wait_empty(struct queue *q, int timeout_ms);

#endif
