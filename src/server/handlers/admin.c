/*
 * Helpers shared by the admin handlers, see admin.h.
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "streamlog/server/handlers/admin.h"

char *
SlAdminCString(SlStr s)
{
	if (SlStrIsNull(s))
		return NULL;
	return pnstrdup(s.data, s.len);
}

Jsonb *
SlAdminConfigObject(int n, char **names, char **values)
{
	JsonbParseState *state = NULL;
	JsonbValue *result;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < n; i++)
	{
		JsonbValue	key;
		JsonbValue	val;

		key.type = jbvString;
		key.val.string.val = names[i];
		key.val.string.len = strlen(names[i]);
		pushJsonbValue(&state, WJB_KEY, &key);
		if (values[i] == NULL)
			val.type = jbvNull;
		else
		{
			val.type = jbvString;
			val.val.string.val = values[i];
			val.val.string.len = strlen(values[i]);
		}
		pushJsonbValue(&state, WJB_VALUE, &val);
	}
	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(result);
}
