/*
 * Handing accepted connections between broker workers, see conn_handoff.h.
 *
 * Each worker binds a datagram socket at pg_stat_tmp/streamlog_broker_<n>
 * in the data directory (the workers' working directory), which no other
 * user can reach: not in Linux's abstract namespace, where any local user
 * could take a worker's name before it starts and be handed clients'
 * connections.  A socket file left by a crash is removed before the bind;
 * pg_stat_tmp is left out of base backups.  The receiver still takes a
 * descriptor only from a process of its own user (SO_PASSCRED: the kernel
 * says who sent it), and only a stream socket.  Elsewhere than Linux there
 * is no hand-off.
 */
#include "postgres.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "miscadmin.h"
#include "pgstat.h"

#include "streamlog/bgworkers/conn_handoff.h"

#ifdef __linux__

static pgsocket handoff_sock = PGINVALID_SOCKET;

/* The address of worker index, relative to the data directory; its length */
static socklen_t
handoff_address(int index, struct sockaddr_un *addr)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	snprintf(addr->sun_path, sizeof(addr->sun_path), "%s/streamlog_broker_%d",
			 PG_STAT_TMP_DIR, index);
	return (socklen_t) sizeof(*addr);
}

pgsocket
SlConnHandoffOpen(int worker_index)
{
	struct sockaddr_un addr;
	socklen_t	len = handoff_address(worker_index, &addr);
	int			one = 1;
	pgsocket	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (s == PGINVALID_SOCKET)
		return PGINVALID_SOCKET;
	/* left by an earlier run of this worker, which stopped without removing it */
	unlink(addr.sun_path);
	if (setsockopt(s, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 ||
		bind(s, (struct sockaddr *) &addr, len) < 0)
	{
		ereport(LOG,
				(errcode_for_socket_access(),
				 errmsg("streamlog broker %d cannot take connections from the other workers: %m",
						worker_index)));
		close(s);
		return PGINVALID_SOCKET;
	}
	handoff_sock = s;
	return s;
}

bool
SlConnHandoffSend(int target, pgsocket s, int listener_index)
{
	struct sockaddr_un addr;
	socklen_t	addrlen = handoff_address(target, &addr);
	int32		payload = listener_index;
	struct iovec iov = {&payload, sizeof(payload)};
	union
	{
		char		buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	}			control;
	struct msghdr msg;
	struct cmsghdr *cmsg;

	if (handoff_sock == PGINVALID_SOCKET)
		return false;
	memset(&msg, 0, sizeof(msg));
	memset(&control, 0, sizeof(control));
	msg.msg_name = &addr;
	msg.msg_namelen = addrlen;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof(control.buf);
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &s, sizeof(int));
	/* a full queue or a worker gone: the connection stays here */
	return sendmsg(handoff_sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t) sizeof(payload);
}

/* Is s a stream socket (a connection, not anything else one could pass)? */
static bool
is_stream_socket(int s)
{
	int			type;
	socklen_t	len = sizeof(type);

	return getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

pgsocket
SlConnHandoffReceive(int *listener_index)
{
	for (;;)
	{
		int32		payload = -1;
		struct iovec iov = {&payload, sizeof(payload)};
		union
		{
			char		buf[CMSG_SPACE(sizeof(int) * 4) + CMSG_SPACE(sizeof(struct ucred))];
			struct cmsghdr align;
		}			control;
		struct msghdr msg;
		ssize_t		n;
		pgsocket	fd = PGINVALID_SOCKET;
		bool		trusted = false;

		if (handoff_sock == PGINVALID_SOCKET)
			return PGINVALID_SOCKET;
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		n = recvmsg(handoff_sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0)
			return PGINVALID_SOCKET;	/* nothing waiting (or an error: later) */
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c))
		{
			if (c->cmsg_level != SOL_SOCKET)
				continue;
			if (c->cmsg_type == SCM_CREDENTIALS &&
				c->cmsg_len >= CMSG_LEN(sizeof(struct ucred)))
			{
				struct ucred cred;

				memcpy(&cred, CMSG_DATA(c), sizeof(cred));
				trusted = cred.uid == geteuid();
			}
			else if (c->cmsg_type == SCM_RIGHTS)
			{
				int			count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

				/* one descriptor is sent: keep the first, close any other */
				for (int i = 0; i < count; i++)
				{
					int			d;

					memcpy(&d, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
					if (fd == PGINVALID_SOCKET)
						fd = d;
					else
						close(d);
				}
			}
		}
		if (fd == PGINVALID_SOCKET)
			continue;
		if (!trusted || n != (ssize_t) sizeof(payload) || (msg.msg_flags & MSG_CTRUNC) ||
			!is_stream_socket(fd))
		{
			ereport(LOG,
					(errmsg("streamlog broker ignored a connection handed to it by a process not of the server")));
			close(fd);
			continue;
		}
		*listener_index = payload;
		return fd;
	}
}

#else							/* !__linux__ */

pgsocket
SlConnHandoffOpen(int worker_index)
{
	return PGINVALID_SOCKET;
}

bool
SlConnHandoffSend(int target, pgsocket s, int listener_index)
{
	return false;
}

pgsocket
SlConnHandoffReceive(int *listener_index)
{
	return PGINVALID_SOCKET;
}

#endif							/* __linux__ */
