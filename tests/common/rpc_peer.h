/* SPDX-License-Identifier: MIT */
/*
 * rpc_peer.h - an rpc server's socket as a hostile client reaches it,
 * without shmk_rpc_connect: the abstract address named after the server
 * object's nonce (docs/format.md).  For the tests that speak the
 * handshake by hand (test_chaos, test_rpc_hostile).
 *
 * It includes src/internal.h: shmk__region_peek() reads the header
 * (struct shmk__hdr) without attaching, for its nonce.
 */
#ifndef SHMK_RPC_PEER_H
#define SHMK_RPC_PEER_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "check.h"
#include "internal.h"

/* A socket connected to the server of name, or -errno. */
static inline int rpc_raw_connect(const char *name)
{
	struct shmk__hdr h;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, s, n;

	CHECK_OK(shmk__region_peek(name, &fd, &st, &h));
	close(fd);
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	CHECK(s >= 0);
	n = snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "shmk-rpc.%016llx",
		     (unsigned long long)h.nonce);
	if (connect(s, (struct sockaddr *)&a,
		    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
				(size_t)n)) < 0) {
		n = -errno;
		close(s);
		return n;
	}
	return s;
}

#endif
