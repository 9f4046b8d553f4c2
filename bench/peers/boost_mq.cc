// SPDX-License-Identifier: MIT
/*
 * boost_mq.cc - a `shmk bench` peer: a Boost.Interprocess message_queue.
 *
 * setup() creates the queue (depth messages of msg_size bytes, in a
 * shared-memory object named after the channel), both children open it,
 * teardown() removes it.  send() and receive() block on a full and an
 * empty queue: nothing is dropped.
 *
 * The queue's mutex and condition variables are process-shared POSIX ones
 * but not robust: a process killed while holding the mutex leaves the
 * other one waiting (the harness's deadline ends that run).
 */
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>

#include <boost/interprocess/ipc/message_queue.hpp>

#include "../shmk_bench/transport.h"

namespace bip = boost::interprocess;

namespace
{

void say(struct bt_chan *c, const char *what, const std::exception &e)
{
	std::snprintf(c->why, sizeof(c->why), "%s: %s", what, e.what());
}

// Boost's errors carry a native error code where there is one.
int code(const bip::interprocess_exception &e)
{
	int n = e.get_native_error();

	return n > 0 ? -n : -EIO;
}

int mq_setup(struct bt_chan *c)
{
	try {
		bip::message_queue::remove(c->name);
		bip::message_queue q(bip::create_only, c->name, c->depth,
				     c->msg_size);
	} catch (const bip::interprocess_exception &e) {
		say(c, "message_queue create", e);
		bip::message_queue::remove(c->name);
		return code(e);
	} catch (const std::bad_alloc &e) {
		say(c, "message_queue create", e);
		bip::message_queue::remove(c->name);
		return -EMSGSIZE;
	} catch (const std::exception &e) {
		say(c, "message_queue create", e);
		bip::message_queue::remove(c->name);
		return -EIO;
	}
	return 0;
}

int mq_open(struct bt_chan *c, enum bt_role role)
{
	(void)role;
	try {
		c->local = new bip::message_queue(bip::open_only, c->name);
	} catch (const bip::interprocess_exception &e) {
		say(c, "message_queue open", e);
		return code(e);
	} catch (const std::exception &e) {
		say(c, "message_queue open", e);
		return -ENOMEM;
	}
	return 0;
}

int mq_send(struct bt_chan *c, const void *msg, size_t len)
{
	auto *q = static_cast<bip::message_queue *>(c->local);

	try {
		q->send(msg, len, 0);
	} catch (const bip::interprocess_exception &e) {
		say(c, "message_queue send", e);
		return len > q->get_max_msg_size() ? -EMSGSIZE : code(e);
	}
	return 0;
}

long mq_recv(struct bt_chan *c, void *buf, size_t cap)
{
	auto *q = static_cast<bip::message_queue *>(c->local);
	bip::message_queue::size_type n = 0;
	unsigned prio;

	// receive() refuses a buffer smaller than the largest message.
	if (cap < q->get_max_msg_size())
		return -EMSGSIZE;
	try {
		q->receive(buf, cap, n, prio);
	} catch (const bip::interprocess_exception &e) {
		say(c, "message_queue receive", e);
		return code(e);
	}
	return static_cast<long>(n);
}

void mq_close(struct bt_chan *c, enum bt_role role)
{
	(void)role;
	delete static_cast<bip::message_queue *>(c->local);
	c->local = nullptr;
}

void mq_teardown(struct bt_chan *c)
{
	bip::message_queue::remove(c->name);
}

struct bt_transport make_transport()
{
	struct bt_transport t = {};

	t.abi = BT_ABI;
	t.name = "boost_mq";
	t.label = "Boost.Interprocess message_queue";
	t.setup = mq_setup;
	t.open = mq_open;
	t.send = mq_send;
	t.recv = mq_recv;
	t.close = mq_close;
	t.teardown = mq_teardown;
	return t;
}

const struct bt_transport mq_transport = make_transport();

} // namespace

BT_PLUGIN(mq_transport)
