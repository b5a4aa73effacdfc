/*
 * Producer ids for InitProducerId: drawn from a sequence in the catalog, so
 * that an id is never given twice, not even across restarts or a crash (an
 * id in shared memory would start over, and a restarted server would hand
 * a new producer the id of one whose sequences it still remembers).
 */
#include "postgres.h"

#include "executor/spi.h"

#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/storage.h"

int64
SlProducerIdAllocate(void)
{
	int64		id;

	SPI_connect();
	SlCatalogQuery("SELECT nextval('streamlog.producer_id_seq')", 0, NULL, NULL, NULL);
	id = SlCatalogInt64(0, 1, -1);
	SPI_finish();
	return id;
}
