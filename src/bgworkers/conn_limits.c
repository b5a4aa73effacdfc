/*
 * Connections per client address, see conn_limits.h.
 *
 * One shared hash table keyed by the address (IPv6, IPv4 mapped), with a
 * count per broker worker: a worker that restarts (it exited on an error)
 * zeroes its own counts, since its connections went with it, and leaves
 * the others' alone.  Kafka counts per broker; here every worker shares the
 * port, so the count is the sum over them, as a client sees one broker.
 * The table has a slot for every connection the workers may serve, so an
 * address that is not full never finds it full; should it be (max
 * connections raised by a reload), the connection is refused, not let in
 * uncounted.
 */
#include "postgres.h"

#include <netinet/in.h>

#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"

#include "streamlog/bgworkers/conn_limits.h"
#include "streamlog/guc.h"
#include "streamlog/server/listeners.h"
#include "streamlog/shmem.h"

typedef struct AddressKey
{
	uint8		addr[16];
} AddressKey;

typedef struct AddressEntry
{
	AddressKey	key;
	int32		count[SL_MAX_BROKERS];	/* per broker worker */
} AddressEntry;

/* Connections per listener (index in SlListenerAt), per broker worker */
typedef int32 ListenerCounts[SL_MAX_BROKERS];

static ListenerCounts *listener_counts = NULL;
static HTAB *addresses = NULL;
static long addresses_max = 0;	/* the size it was made with */
static LWLock *addresses_lock = NULL;
static int	my_index = -1;

static long
table_size(void)
{
	return Max(1024L, (long) sl_max_connections * sl_broker_workers);
}

Size
SlConnLimitsShmemSize(void)
{
	return add_size(hash_estimate_size(table_size(), sizeof(AddressEntry)),
					MAXALIGN(sizeof(ListenerCounts) * SL_MAX_LISTENERS));
}

void
SlConnLimitsShmemInit(void)
{
	HASHCTL		info;
	long		size = table_size();
	bool		found;

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(AddressKey);
	info.entrysize = sizeof(AddressEntry);
	addresses = ShmemInitHash("streamlog connections per address", size, size, &info,
							  HASH_ELEM | HASH_BLOBS);
	addresses_max = size;
	addresses_lock = &(GetNamedLWLockTranche("streamlog connections"))->lock;
	listener_counts = ShmemInitStruct("streamlog connections per listener",
									  sizeof(ListenerCounts) * SL_MAX_LISTENERS, &found);
	if (!found)
		memset(listener_counts, 0, sizeof(ListenerCounts) * SL_MAX_LISTENERS);
}

/* addr as the table's key: IPv6, IPv4 mapped; false for other families */
static bool
address_key(const struct sockaddr_storage *addr, AddressKey *key)
{
	memset(key, 0, sizeof(*key));
	if (addr->ss_family == AF_INET)
	{
		key->addr[10] = key->addr[11] = 0xff;
		memcpy(key->addr + 12, &((const struct sockaddr_in *) addr)->sin_addr, 4);
		return true;
	}
	if (addr->ss_family == AF_INET6)
	{
		memcpy(key->addr, &((const struct sockaddr_in6 *) addr)->sin6_addr, 16);
		return true;
	}
	return false;
}

static int
total(const AddressEntry *entry)
{
	int			sum = 0;

	for (int i = 0; i < SL_MAX_BROKERS; i++)
		sum += entry->count[i];
	return sum;
}

void
SlConnLimitsStart(int worker_index)
{
	HASH_SEQ_STATUS seq;
	AddressEntry *entry;

	my_index = worker_index;
	LWLockAcquire(addresses_lock, LW_EXCLUSIVE);
	for (int l = 0; l < SL_MAX_LISTENERS; l++)
		listener_counts[l][my_index] = 0;
	hash_seq_init(&seq, addresses);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		entry->count[my_index] = 0;
		/* removing the entry just returned is allowed during a scan */
		if (total(entry) == 0)
			hash_search(addresses, &entry->key, HASH_REMOVE, NULL);
	}
	LWLockRelease(addresses_lock);
}

bool
SlConnLimitsAdmit(const struct sockaddr_storage *addr, int *count, int *limit)
{
	AddressKey	key;
	AddressEntry *entry;
	bool		found;

	if (!address_key(addr, &key))
		return true;			/* not an IP connection: not counted */
	*limit = SlMaxConnectionsForAddress(key.addr);
	LWLockAcquire(addresses_lock, LW_EXCLUSIVE);
	entry = hash_search(addresses, &key, HASH_FIND, &found);
	/* a shared hash table would grow into the rest of shared memory */
	if (entry == NULL && hash_get_num_entries(addresses) < addresses_max)
		entry = hash_search(addresses, &key, HASH_ENTER_NULL, &found);
	if (entry == NULL)
	{
		LWLockRelease(addresses_lock);
		*count = 0;
		*limit = -1;
		return false;
	}
	if (!found)
		memset(entry->count, 0, sizeof(entry->count));
	*count = total(entry);
	if (*count >= *limit)
	{
		if (*count == 0)
			hash_search(addresses, &key, HASH_REMOVE, NULL);
		LWLockRelease(addresses_lock);
		return false;
	}
	entry->count[my_index]++;
	LWLockRelease(addresses_lock);
	return true;
}

void
SlConnLimitsRelease(const struct sockaddr_storage *addr)
{
	AddressKey	key;
	AddressEntry *entry;

	if (!address_key(addr, &key))
		return;
	LWLockAcquire(addresses_lock, LW_EXCLUSIVE);
	entry = hash_search(addresses, &key, HASH_FIND, NULL);
	if (entry != NULL && entry->count[my_index] > 0)
	{
		entry->count[my_index]--;
		if (total(entry) == 0)
			hash_search(addresses, &key, HASH_REMOVE, NULL);
	}
	LWLockRelease(addresses_lock);
}

bool
SlConnLimitsAdmitListener(int listener, int limit, int *count)
{
	bool		admitted;

	Assert(listener >= 0 && listener < SL_MAX_LISTENERS);
	LWLockAcquire(addresses_lock, LW_EXCLUSIVE);
	*count = 0;
	for (int i = 0; i < SL_MAX_BROKERS; i++)
		*count += listener_counts[listener][i];
	admitted = *count < limit;
	if (admitted)
		listener_counts[listener][my_index]++;
	LWLockRelease(addresses_lock);
	return admitted;
}

void
SlConnLimitsReleaseListener(int listener)
{
	Assert(listener >= 0 && listener < SL_MAX_LISTENERS);
	LWLockAcquire(addresses_lock, LW_EXCLUSIVE);
	if (listener_counts[listener][my_index] > 0)
		listener_counts[listener][my_index]--;
	LWLockRelease(addresses_lock);
}
