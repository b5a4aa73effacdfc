/*
 * What each Kafka connection is doing, see connections.h.
 *
 * A slot belongs to the process whose pid it holds (claimed with a
 * compare-and-swap from 0), which alone writes it, between two increments
 * of its change count; a reader copies it until it saw an even count, the
 * same before and after.  A process gives back its slots when it exits,
 * whatever way it exits short of a crash (which restarts shared memory).
 */
#include "postgres.h"

#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metrics/connections.h"
#include "streamlog/metrics/counters.h"

typedef struct ConnSlot
{
	pg_atomic_uint32 owner;		/* pid of the process serving it, 0 free */
	pg_atomic_uint32 changecount;	/* odd while its owner writes it */
	SlConnActivity activity;
} ConnSlot;

typedef struct ConnActivityShared
{
	int			slots;
	ConnSlot	slot[FLEXIBLE_ARRAY_MEMBER];
} ConnActivityShared;

static ConnActivityShared *conn_shared = NULL;
static bool exit_callback_registered = false;
/* where to look for a free slot first: after the last one taken */
static int	next_free_hint = 0;

Size
SlConnActivityShmemSize(void)
{
	return add_size(offsetof(ConnActivityShared, slot),
					mul_size(sl_metrics_max_connections, sizeof(ConnSlot)));
}

void
SlConnActivityShmemInit(void)
{
	bool		found;

	conn_shared = ShmemInitStruct("streamlog connection activity",
								  SlConnActivityShmemSize(), &found);
	if (found)
		return;
	conn_shared->slots = sl_metrics_max_connections;
	for (int i = 0; i < conn_shared->slots; i++)
	{
		pg_atomic_init_u32(&conn_shared->slot[i].owner, 0);
		pg_atomic_init_u32(&conn_shared->slot[i].changecount, 0);
		memset(&conn_shared->slot[i].activity, 0, sizeof(SlConnActivity));
	}
}

static inline bool
slot_valid(int slot)
{
	return conn_shared != NULL && slot >= 0 && slot < conn_shared->slots &&
		pg_atomic_read_u32(&conn_shared->slot[slot].owner) == (uint32) MyProcPid;
}

/* The writer's side of the change count */
static inline SlConnActivity *
begin_change(int slot)
{
	ConnSlot   *s = &conn_shared->slot[slot];

	pg_atomic_fetch_add_u32(&s->changecount, 1);
	pg_write_barrier();
	return &s->activity;
}

static inline void
end_change(int slot)
{
	pg_write_barrier();
	pg_atomic_fetch_add_u32(&conn_shared->slot[slot].changecount, 1);
}

/* Give back the slots of this process: on exit */
static void
release_my_slots(int code, Datum arg)
{
	if (conn_shared == NULL)
		return;
	for (int i = 0; i < conn_shared->slots; i++)
		if (pg_atomic_read_u32(&conn_shared->slot[i].owner) == (uint32) MyProcPid)
			SlConnActivityClose(i);
}

int
SlConnActivityOpen(int listener, const char *listener_name, const char *address)
{
	int			n;

	if (conn_shared == NULL)
		return -1;
	n = conn_shared->slots;
	if (!exit_callback_registered)
	{
		before_shmem_exit(release_my_slots, 0);
		exit_callback_registered = true;
	}
	for (int k = 0; k < n; k++)
	{
		int			i = (next_free_hint + k) % n;
		ConnSlot   *s = &conn_shared->slot[i];
		uint32		expected = 0;
		SlConnActivity *a;

		if (pg_atomic_read_u32(&s->owner) != 0 ||
			!pg_atomic_compare_exchange_u32(&s->owner, &expected, (uint32) MyProcPid))
			continue;
		next_free_hint = (i + 1) % n;
		a = begin_change(i);
		memset(a, 0, sizeof(*a));
		a->pid = MyProcPid;
		a->listener = listener;
		strlcpy(a->listener_name, listener_name ? listener_name : "", sizeof(a->listener_name));
		strlcpy(a->address, address ? address : "", sizeof(a->address));
		a->connected_since = GetCurrentTimestamp();
		a->api_key = -1;
		a->api_version = -1;
		end_change(i);
		return i;
	}
	SlMetricsAdd(SL_METRIC_CONNECTION_SLOTS_FULL, 1);
	return -1;
}

void
SlConnActivityClose(int slot)
{
	SlConnActivity *a;

	if (!slot_valid(slot))
		return;
	a = begin_change(slot);
	a->pid = 0;
	end_change(slot);
	pg_atomic_write_u32(&conn_shared->slot[slot].owner, 0);
}

void
SlConnActivitySetClientId(int slot, const char *client_id)
{
	SlConnActivity *a;

	if (!slot_valid(slot))
		return;
	client_id = client_id ? client_id : "";
	/* the same on nearly every request: do not make readers retry for it */
	if (strncmp(conn_shared->slot[slot].activity.client_id, client_id,
				SL_CONN_CLIENT_ID_LEN - 1) == 0)
		return;
	a = begin_change(slot);
	strlcpy(a->client_id, client_id, sizeof(a->client_id));
	end_change(slot);
}

void
SlConnActivitySetSoftware(int slot, const char *name, const char *version)
{
	SlConnActivity *a;

	if (!slot_valid(slot))
		return;
	a = begin_change(slot);
	strlcpy(a->software_name, name ? name : "", sizeof(a->software_name));
	strlcpy(a->software_version, version ? version : "", sizeof(a->software_version));
	end_change(slot);
}

void
SlConnActivitySetPrincipal(int slot, const char *principal)
{
	SlConnActivity *a;

	if (!slot_valid(slot))
		return;
	a = begin_change(slot);
	strlcpy(a->principal, principal ? principal : "", sizeof(a->principal));
	end_change(slot);
}

void
SlConnActivityRequestStart(int slot, int16 api_key, int16 api_version, TimestampTz since)
{
	SlConnActivity *a;

	if (!slot_valid(slot))
		return;
	a = begin_change(slot);
	a->api_key = api_key;
	a->api_version = api_version;
	a->request_since = since;
	end_change(slot);
}

void
SlConnActivityRequestEnd(int slot)
{
	SlConnActivity *a;

	if (!slot_valid(slot))
		return;
	a = begin_change(slot);
	a->api_key = -1;
	a->api_version = -1;
	end_change(slot);
}

SlConnActivity *
SlConnActivitySnapshot(int *count)
{
	SlConnActivity *rows;
	int			n = 0;

	*count = 0;
	if (conn_shared == NULL)
		return NULL;
	rows = palloc(sizeof(SlConnActivity) * Max(conn_shared->slots, 1));
	for (int i = 0; i < conn_shared->slots; i++)
	{
		ConnSlot   *s = &conn_shared->slot[i];
		int			tries;

		if (pg_atomic_read_u32(&s->owner) == 0)
			continue;
		/*
		 * A writer changes a slot for a few instructions: retry until
		 * stable.  Bounded, so that no reader can hang on a slot whatever
		 * happened to its writer: such a slot is left out this time.
		 */
		for (tries = 0;; tries++)
		{
			uint32		before = pg_atomic_read_u32(&s->changecount);
			uint32		after;

			pg_read_barrier();
			memcpy(&rows[n], &s->activity, sizeof(SlConnActivity));
			pg_read_barrier();
			after = pg_atomic_read_u32(&s->changecount);
			if (before == after && (before & 1) == 0)
				break;
			if (tries == 10000)
			{
				rows[n].pid = 0;
				break;
			}
			CHECK_FOR_INTERRUPTS();
			pg_spin_delay();
		}
		if (rows[n].pid != 0)
		{
			/* strings copied whole: terminate them anyway */
			rows[n].listener_name[SL_CONN_NAME_LEN - 1] = '\0';
			rows[n].address[SL_CONN_ADDRESS_LEN - 1] = '\0';
			rows[n].client_id[SL_CONN_CLIENT_ID_LEN - 1] = '\0';
			rows[n].software_name[SL_CONN_NAME_LEN - 1] = '\0';
			rows[n].software_version[SL_CONN_NAME_LEN - 1] = '\0';
			rows[n].principal[SL_CONN_PRINCIPAL_LEN - 1] = '\0';
			n++;
		}
	}
	*count = n;
	return rows;
}
