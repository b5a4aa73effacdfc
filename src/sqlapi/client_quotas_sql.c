/*
 * streamlog.alter_client_quota(entity jsonb, quota_key text, value float8,
 * validate_only bool): the SQL door to the client quotas that Kafka's
 * AlterClientQuotas writes too.  As there, the caller needs ALTER_CONFIGS
 * on the cluster; the checks of the quota itself are storage's, the same
 * for both doors.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "streamlog/storage/acl.h"
#include "streamlog/storage/client_quotas.h"

PG_FUNCTION_INFO_V1(streamlog_alter_client_quota);

Datum
streamlog_alter_client_quota(PG_FUNCTION_ARGS)
{
	char	   *entity = NULL;
	char	   *key = NULL;

	SlAclCheck(SL_RESOURCE_CLUSTER, SL_CLUSTER_RESOURCE_NAME, SL_ACL_ALTER_CONFIGS);
	if (!PG_ARGISNULL(0))
		entity = JsonbToCString(NULL, &PG_GETARG_JSONB_P(0)->root, VARSIZE(PG_GETARG_JSONB_P(0)));
	if (!PG_ARGISNULL(1))
		key = text_to_cstring(PG_GETARG_TEXT_PP(1));
	SlClientQuotaApply(entity, key, PG_ARGISNULL(2) ? 0 : PG_GETARG_FLOAT8(2), PG_ARGISNULL(2),
					   !PG_ARGISNULL(3) && PG_GETARG_BOOL(3));
	PG_RETURN_VOID();
}
