/* SPDX-License-Identifier: MIT */
/*
 * test_chaos - a hostile peer scribbles on live objects while honest
 * processes use them.
 *
 * The chaos process maps the victims straight from their files, read and
 * write: a ring, a buffer, an array, an event, two topics (lossless and
 * lossy), an rpc object, and the rings of that rpc object's channels
 * (their names are gone once a client said hello, so it finds them
 * through /proc/<pid>/fd of the honest processes).  It overwrites control
 * words, positions, node sequences and lengths, a topic's head, tail,
 * floor, descriptors (seq, link, start, len), loan intents and sizes,
 * subscription cursors and log bytes, frame headers, header fields
 * (sizes, geometry, state, counters), participant slots, lock words and
 * futex words with random, maximal, negative, zero and off-by-one values,
 * again and again; now and then it puts a value back a little later, or
 * flips a word between two values in a tight loop.  Every second or so
 * it replaces the ring, buffer, array, event and topics by fresh ones;
 * the rpc server restarts its victim endpoint every few seconds.
 *
 * The honest processes (ring writers and readers, two lockers, an rpc
 * server and its clients, a topic publisher and two subscribers) use
 * every victim with short timeouts and, in the same process, a control
 * object of the same kind that nobody scribbles on.  Asserted:
 *  - every process exits 0 before its deadline: no signal, no sanitizer
 *    report, no hang;
 *  - every call on a victim returns success or an error listed for its
 *    kind in an ok_*[] list (harness.c and each kind's file; anything
 *    else fails the process that got it);
 *  - every message a topic hands out in place lies in the log of the
 *    handle's own mapping and is at most its max_msg (every byte of it is
 *    then read);
 *  - every call on a control object succeeds, and all that went through
 *    one arrived once, in order and intact;
 *  - damage was seen: -EBADMSG and -EPROTO were returned (on each kind,
 *    each topic policy), and subscribers read messages from victim
 *    topics;
 *  - no descriptor leaked in the honest processes.
 *
 * Usage: test_chaos [seed=N] [seconds=S].  The seed (printed) fixes every
 * random choice of every process; how they interleave is the scheduler's.
 *
 * One executable from these files: this one starts the processes, waits
 * for them and reports; harness.c holds what they share (harness.h);
 * chaos.c is the chaos process; ring.c, lock.c (buffer and array),
 * event.c, rpc.c and topic.c each hold one kind of victim: its honest
 * users, their final check and the fields the chaos picks on it;
 * rpc_handshake.c the fixed tests run before the chaos starts.
 */
#include <sys/mman.h>

#include "harness.h"

/* ------------------------------------------------------------------ */
/* The run                                                             */
/* ------------------------------------------------------------------ */

static void report(void)
{
	uint64_t damage = 0, per[NK] = {0};
	int k, e;

	printf("chaos: %llu pokes, %llu restores, %llu hammers, %llu epochs, "
	       "%llu channel rings mapped\n",
	       (unsigned long long)book->pokes,
	       (unsigned long long)book->restores,
	       (unsigned long long)book->hammers,
	       (unsigned long long)book->epochs,
	       (unsigned long long)book->chans);
	printf("control: %llu ring messages, %llu lock rounds, %llu + %llu "
	       "rpc calls, %llu topic messages to each of %d subscribers "
	       "(lossy: %llu + %llu taken, %llu + %llu lost)\n",
	       (unsigned long long)book->delivered,
	       (unsigned long long)book->rounds[0],
	       (unsigned long long)book->calls[0],
	       (unsigned long long)book->calls[1],
	       (unsigned long long)book->tcommitted, NTSUBS,
	       (unsigned long long)book->ltgot[0],
	       (unsigned long long)book->ltgot[1],
	       (unsigned long long)book->ltlost[0],
	       (unsigned long long)book->ltlost[1]);
	for (k = 0; k < NK; k++) {
		printf("victim %-9s (longest %4llu ms)", kname[k],
		       (unsigned long long)book->max_ms[k]);
		for (e = 0; e < NCODE; e++) {
			uint64_t n = atomic_load(&book->res[k][e]);

			if (!n)
				continue;
			printf(" %s %llu", e ? shmk_strerror(-e) : "ok",
			       (unsigned long long)n);
			if (e == EBADMSG || e == EPROTO) {
				damage += n;
				per[k] += n;
			}
		}
		printf("\n");
	}
	printf("victim topic messages taken: %llu lossless, %llu lossy\n",
	       (unsigned long long)book->vtaken[0],
	       (unsigned long long)book->vtaken[1]);
	printf("victim payloads that came back wrong (a forged length, or a "
	       "forged sequence that let a writer into a node being read: "
	       "nothing checks payloads): %llu; rings of a forged but valid "
	       "geometry: %llu\n",
	       (unsigned long long)book->garbled,
	       (unsigned long long)book->forged_geometry);
	/* The run cannot pass without having hurt anything. */
	CHECK(book->pokes > 1000);
	/* No call on a victim hangs: the longest timeout given is 300 ms
	 * (a connect; 1 s more for the server's hello); the rest is for a
	 * machine loaded by other tests. */
	for (k = 0; k < NK; k++)
		CHECK(book->max_ms[k] < 60000);
	CHECK(damage > 0);
	CHECK(per[K_RING] > 0);
	CHECK(per[K_BUFFER] + per[K_ARRAY] > 0);
	CHECK(per[K_RPC] + per[K_CONNECT] > 0);
	CHECK(per[K_OPEN] > 0);
	CHECK(per[K_TOPIC] > 0);
	CHECK(per[K_LTOPIC] > 0);
	CHECK(book->vtaken[0] > 0 && book->vtaken[1] > 0);
	CHECK(book->chans > 0);
}

int main(int argc, char **argv)
{
	uint64_t seed = 0;
	int seconds = 15, i, n = 0, failed = 0;
	pid_t pids[16];
	const char *role[16];
	uint64_t deadline;

	check_init();
	seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	for (i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "seed=", 5))
			seed = strtoull(argv[i] + 5, NULL, 0);
		else if (!strncmp(argv[i], "seconds=", 8))
			seconds = atoi(argv[i] + 8);
		else
			seed = strtoull(argv[i], NULL, 0);
	}
	CHECK(seconds > 0);
	printf("test_chaos: seed %llu, %d s (rerun: test_chaos seed=%llu)\n",
	       (unsigned long long)seed, seconds, (unsigned long long)seed);
	book = mmap(NULL, sizeof(*book), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(book != MAP_FAILED);
	book->seed = seed;
	n_vring = strdup(tname("v.ring"));
	n_vbuf = strdup(tname("v.buf"));
	n_varr = strdup(tname("v.arr"));
	n_vev = strdup(tname("v.ev"));
	n_vrpc = strdup(tname("v.rpc"));
	n_cring = strdup(tname("c.ring"));
	n_cbuf = strdup(tname("c.buf"));
	n_carr = strdup(tname("c.arr"));
	n_cping = strdup(tname("c.ping"));
	n_cpong = strdup(tname("c.pong"));
	n_crpc = strdup(tname("c.rpc"));
	n_vtopic = strdup(tname("v.topic"));
	n_vltopic = strdup(tname("v.ltopic"));
	n_ctopic = strdup(tname("c.topic"));
	n_cltopic = strdup(tname("c.ltopic"));
	n_fixed = strdup(tname("x.rpc"));
	test_scribbled_server();
	test_forged_refusal();
	test_hostile_handshake();

	/* The controls exist throughout (the parent is their creator). */
	{
		struct shmk_ring *cr;
		struct shmk_buffer *cb;
		struct shmk_array *ca;
		struct shmk_event *ping, *pong;
		struct shmk_topic *ct, *clt;
		struct shmk_opts lossy = {.flags = SHMK_F_LOSSY};
		uint64_t t0;
		int rc;

		CHECK_OK(shmk_ring_create(n_cring, 16, NODE, NULL, &cr));
		CHECK_OK(shmk_buffer_create(n_cbuf, BUF_SIZE, NULL, &cb));
		CHECK_OK(shmk_array_create(n_carr, sizeof(struct rec), NLOCKERS,
					   NULL, &ca));
		CHECK_OK(shmk_event_create(n_cping, 0, 0, NULL, &ping));
		CHECK_OK(shmk_event_create(n_cpong, 0, 0, NULL, &pong));
		CHECK_OK(shmk_topic_create(n_ctopic, CTOPIC_CAP,
					   TOPIC_MSG + WIRE, NULL, &ct));
		CHECK_OK(shmk_topic_create(n_cltopic, CLTOPIC_CAP,
					   TOPIC_MSG + WIRE, &lossy, &clt));

		pids[n] = spawn(rpc_server, NULL);
		book->rpc_pids[0] = pids[n];
		role[n++] = "rpc server";
		for (i = 0; i < NCLIENTS; i++) {
			pids[n] = spawn(rpc_client, (void *)(uintptr_t)i);
			book->rpc_pids[1 + i] = pids[n];
			role[n++] = "rpc client";
		}
		/* The victims exist before anyone looks for them. */
		pids[n] = spawn(chaos, NULL);
		role[n++] = "chaos";
		for (t0 = check_now_ms(); check_now_ms() - t0 < 10000;) {
			struct shmk_stat st;

			rc = shmk_stat(n_vev, &st);
			if (rc == 0)
				break;
			sleep_ms(5);
		}
		for (i = 0; i < NWRITERS; i++) {
			pids[n] = spawn(ring_writer, (void *)(uintptr_t)i);
			role[n++] = "ring writer";
		}
		for (i = 0; i < NREADERS; i++) {
			pids[n] = spawn(ring_reader, (void *)(uintptr_t)i);
			role[n++] = "ring reader";
		}
		for (i = 0; i < NLOCKERS; i++) {
			pids[n] = spawn(locker, (void *)(uintptr_t)i);
			role[n++] = "locker";
		}
		for (i = 0; i < NTSUBS; i++) {
			pids[n] = spawn(topic_sub, (void *)(uintptr_t)i);
			role[n++] = "topic subscriber";
		}
		pids[n] = spawn(topic_pub, NULL);
		role[n++] = "topic publisher";

		sleep_ms((unsigned)seconds * 1000);
		atomic_store(&book->stop_chaos, 1);
		sleep_ms(200);
		atomic_store(&book->stop, 1);

		/* Everyone ends by itself, and cleanly. */
		deadline = check_now_ms() + 150000;
		for (i = 0; i < n; i++) {
			uint64_t now = check_now_ms();
			int st = wait_child(
				pids[i],
				now < deadline ? (int)(deadline - now) : 1);

			if (st != 0) {
				fprintf(stderr, "%s (pid %d) %s %d\n", role[i],
					(int)pids[i],
					st < 0	   ? "hung; killed"
					: st > 128 ? "killed by signal"
						   : "exited with",
					st > 128 ? st - 128 : st);
				failed = 1;
			}
		}
		report();
		CHECK(!failed);
		/* Nothing was left behind but the controls: no victim, no
		 * rpc object, no channel ring (names of scribbled-on files
		 * included). */
		CHECK_EQ(count_ours(), 7);
		ring_final();
		lockers_final();
		rpc_final();
		topic_final();
		CHECK_OK(shmk_ring_close(cr));
		CHECK_OK(shmk_buffer_close(cb));
		CHECK_OK(shmk_array_close(ca));
		CHECK_OK(shmk_event_close(ping));
		CHECK_OK(shmk_event_close(pong));
		CHECK_OK(shmk_topic_close(ct));
		CHECK_OK(shmk_topic_close(clt));
	}
	printf("test_chaos: ok (seed %llu)\n", (unsigned long long)seed);
	return 0;
}
