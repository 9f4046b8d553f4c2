/* SPDX-License-Identifier: MIT */
/*
 * test_crash - peers killed at the library's crash points (built with
 * SHMK_CRASH_POINTS; SHMK_CRASH=NAME[:N] picks the point).
 *
 *   ec_wake: a notifier dies after it cleared the waiter bit and before
 *   its FUTEX_WAKE.  Later notifiers find no sleeper to wake, so the
 *   sleepers must find out by themselves: every sleep ends after
 *   SHMK__LOST_WAKE_NS (10 ms).  Checked for an event, a buffer's version
 *   and a ring's reader, each asleep when its notifier dies.
 *
 *   topic_intent: a topic publisher dies after it wrote the intent of its
 *   loan of message j and before its claim, so another publisher claims
 *   j.  The dead intent must not pass for the live one: when a third
 *   process takes over the dead one's participant slot, the live loan of
 *   j stays open, and its message is delivered once committed.
 */
#include "check.h"

#define LOST_WAKE_MS 10	 /* SHMK__LOST_WAKE_NS */
#define NAP_MS	     100 /* the sleeper is asleep by then */
#define SLACK_MS     300

static const char *g_name;

enum obj { EVENT, BUFFER, RING };

/* Opens the object and notifies once, dying at the crash point. */
static int notifier(void *arg)
{
	enum obj what = (enum obj)(intptr_t)arg;
	struct shmk_opts o = {.wait_ms = 5000};

	CHECK_OK(setenv("SHMK_CRASH", "ec_wake", 1));
	sleep_ms(NAP_MS);
	if (what == EVENT) {
		struct shmk_event *e;

		CHECK_OK(shmk_event_open(g_name, &o, &e));
		CHECK_OK(shmk_event_set(e));
	} else if (what == BUFFER) {
		struct shmk_buffer *b;

		CHECK_OK(shmk_buffer_open(g_name, &o, &b));
		CHECK_OK(shmk_buffer_write(b, 0, "x", 1, 1000));
	} else {
		struct shmk_ring *r;

		CHECK_OK(shmk_ring_open(g_name, &o, &r));
		CHECK_OK(shmk_ring_write(r, "x", 1, 1000));
	}
	return 0; /* the crash point was not reached */
}

static void lost_wake(enum obj what, const char *label)
{
	struct shmk_event *e = NULL;
	struct shmk_buffer *b = NULL;
	struct shmk_ring *r = NULL;
	uint64_t t0, took, version = 0;
	pid_t pid;
	char c = 0;

	if (what == EVENT)
		CHECK_OK(shmk_event_create(g_name, 0, 0, NULL, &e));
	else if (what == BUFFER)
		CHECK_OK(shmk_buffer_create(g_name, 64, NULL, &b));
	else
		CHECK_OK(shmk_ring_create(g_name, 4, 16, NULL, &r));
	t0 = check_now_ms();
	pid = spawn(notifier, (void *)(intptr_t)what);
	/* Asleep long before the notifier comes; a lost wake-up would
	 * keep us here for the whole 5 s. */
	if (what == EVENT)
		CHECK_OK(shmk_event_wait(e, 5000));
	else if (what == BUFFER)
		CHECK_OK(shmk_buffer_wait(b, &version, 5000));
	else
		CHECK_EQ(shmk_ring_read(r, &c, 1, 5000), 1);
	took = check_now_ms() - t0;
	/* It died where it was meant to, after clearing the bit. */
	CHECK_EQ(wait_child(pid, 5000), 128 + SIGKILL);
	printf("  %s: notifier killed mid-wake-up; the sleeper woke "
	       "%llu ms after the notifier started (%d ms of it a nap)\n",
	       label, (unsigned long long)took, NAP_MS);
	CHECK(took <= NAP_MS + LOST_WAKE_MS + SLACK_MS);
	if (what == EVENT)
		shmk_event_close(e);
	else if (what == BUFFER)
		CHECK_EQ(version, 1);
	if (b)
		shmk_buffer_close(b);
	if (r) {
		CHECK_EQ(c, 'x');
		shmk_ring_close(r);
	}
	CHECK_OK(shmk_unlink(g_name));
}

static int topic_dier(void *arg)
{
	struct shmk_opts o = {.wait_ms = 5000};
	struct shmk_topic *t;

	(void)arg;
	CHECK_OK(setenv("SHMK_CRASH", "topic_intent", 1));
	CHECK_OK(shmk_topic_open(g_name, &o, &t));
	CHECK_OK(shmk_topic_publish(t, "dead", 4, 1000));
	return 0; /* the crash point was not reached */
}

static void topic_lost_claim(void)
{
	struct shmk_topic *t, *s, *b, *c;
	struct shmk_topic_stats st;
	struct shmk_msg m;
	char buf[16];
	pid_t pid;

	CHECK_OK(shmk_topic_create(g_name, 4096, 64, NULL, &t));
	CHECK_OK(shmk_topic_open(g_name, NULL, &s));
	CHECK_OK(shmk_topic_subscribe(s, 0));
	CHECK_OK(shmk_topic_open(g_name, NULL, &b));
	pid = spawn(topic_dier, NULL);
	CHECK_EQ(wait_child(pid, 10000), 128 + SIGKILL);
	/* b claims the message the dead one meant to; c takes the dead
	 * one's slot (the first free one). */
	CHECK_OK(shmk_topic_loan(b, 5, &m, 0));
	CHECK_OK(shmk_topic_open(g_name, NULL, &c));
	CHECK_RC(shmk_topic_receive(s, buf, sizeof(buf), 0), -EAGAIN);
	memcpy(m.data, "alive", 5);
	CHECK_OK(shmk_topic_commit(b, &m));
	CHECK_EQ(shmk_topic_receive(s, buf, sizeof(buf), 1000), 5);
	CHECK(!memcmp(buf, "alive", 5));
	CHECK_OK(shmk_topic_stats(s, &st));
	CHECK_EQ(st.recovered, 0);
	CHECK_EQ(st.published, 1);
	CHECK_OK(shmk_topic_close(c));
	CHECK_OK(shmk_topic_close(b));
	CHECK_OK(shmk_topic_close(s));
	CHECK_OK(shmk_topic_close(t));
	printf("  topic: a publisher killed between its intent and its claim "
	       "does not pass for the live claimer: ok\n");
}

int main(void)
{
	check_init();
	g_name = tname("crash");
	lost_wake(EVENT, "event");
	lost_wake(BUFFER, "buffer version");
	lost_wake(RING, "ring reader");
	topic_lost_claim();
	printf("test_crash: ok\n");
	return 0;
}
