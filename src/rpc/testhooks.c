/* SPDX-License-Identifier: MIT */
/*
 * rpc/testhooks.c - rpc's hooks for the tests and the fuzz targets (declared
 * in ../internal.h): a client's ring to its server, a waiting caller's
 * look interval, and the lab endpoint that runs a channel over two given
 * rings without threads or sockets.
 * Built into shmk_testing only, never into the installed libshmk.
 *
 * Layer: above everything in src/rpc/; it may call any of it.
 */
#define _GNU_SOURCE
#include <stddef.h>

#include "../internal.h"
#include "rpc.h"

struct shmk_ring *shmk__rpc_out_ring(struct shmk_rpc *ep)
{
	return ep && ep->chans ? ep->chans->out : NULL;
}

int shmk__rpc_lab(const char *name, int server, struct shmk_ring *in,
		  struct shmk_ring *out, const struct shmk_rpc_opts *o,
		  struct shmk_rpc **epp)
{
	uint64_t geom[SHMK__GEOM_N] = {shmk_ring_nodes(in),
				       shmk_ring_node_size(in),
				       o && o->max_msg ? o->max_msg : 4096};
	struct shmk_rpc *ep = NULL;
	struct chan *ch = NULL;
	int rc = -EINVAL;

	if (in && out && shmk_ring_node_size(out) == geom[1])
		rc = shmk__rpc_ep_new(name, o, epp, &ep);
	if (!rc) {
		rc = shmk__region_create(&ep->r, NULL, &shmk__rpc_kind, geom,
					 NULL, NULL);
		if (rc < 0)
			shmk__rpc_ep_free(ep);
	}
	if (!rc && !(ch = shmk__rpc_chan_new(ep))) {
		shmk__rpc_ep_free(ep);
		rc = -ENOMEM;
	}
	if (rc < 0 || !ch) {
		shmk_ring_close(in);
		shmk_ring_close(out);
		return rc < 0 ? rc : -ENOMEM;
	}
	ch->in = in;
	ch->out = out;
	ch->num = 1;
	atomic_store(&ch->refs, 1); /* the list's */
	shmk__rpc_ep_geometry(ep);
	ep->server = server;
	ep->chans = ch;
	ep->nchans = server ? 1 : 0;
	ep->next_chan = 1;
	*epp = ep;
	return 0;
}

void shmk__rpc_set_look(struct shmk_rpc *ep, uint64_t ns)
{
	ep->look_ns = ns;
}

int shmk__rpc_poll(struct shmk_rpc *ep)
{
	struct inreq *in;
	int n;

	if (!ep || !ep->chans)
		return 0;
	n = shmk__rpc_help_read(ep->chans);
	while ((in = shmk__rpc_dequeue(ep)) != NULL)
		shmk__rpc_run_work(ep, in);
	return n;
}
