/* SPDX-License-Identifier: MIT */
/*
 * event.c - test_chaos's events.  Between two strokes of their ping-pong
 * on the control events (lock.c), the lockers set, reset and wait on the
 * victim event.  The chaos scribbles on its state, its count of sets and
 * its eventcount.
 */
#include "harness.h"

/* One call on the victim event. */
void victim_event(struct shmk_event *ve)
{
	switch (rnd() % 4) {
	case 0:
		VICTIM(K_EVENT, ok_none, shmk_event_set(ve));
		break;
	case 1:
		VICTIM(K_EVENT, ok_none, shmk_event_reset(ve));
		break;
	default:
		VICTIM(K_EVENT, ok_wait, shmk_event_wait(ve, (int)(rnd() % 3)));
	}
}

/* A field of an event: its state, its count of sets, its eventcount. */
/* A field of an event: its state, its count of sets, its eventcount. */
void pick_event(struct field *f)
{
	switch (rnd() % 3) {
	case 0:
		f->off = O_CTL; /* state */
		f->width = 4;
		hint(f, 0);
		hint(f, 1);
		hint(f, 2);
		break;
	case 1:
		f->off = O_CTL + 4; /* sets */
		f->width = 4;
		break;
	default:
		f->off = O_CTL + 0x40;
		f->width = 4;
	}
}
