/* SPDX-License-Identifier: MIT */
/*
 * signals.h - send, recv, pub, sub and watch end cleanly on SIGINT,
 * SIGTERM and SIGHUP; watch also gives the terminal back on SIGTSTP.
 */
#ifndef SHMK_TOOL_SIGNALS_H
#define SHMK_TOOL_SIGNALS_H

#include <signal.h>

struct shmk_ring;
struct shmk_topic;

extern volatile sig_atomic_t g_signal; /* the stopping signal, or 0 */
extern volatile sig_atomic_t g_tstp;   /* watch: SIGTSTP arrived */

/* The handle a stopping signal wakes (NULL, NULL: none). */
void wake_on_signal(struct shmk_ring *r, struct shmk_topic *t);
/* Installs the handler, without SA_RESTART (a blocking read(2) returns
 * EINTR); for SIGTSTP too if tstp. */
void catch_signals(int tstp);

#endif
