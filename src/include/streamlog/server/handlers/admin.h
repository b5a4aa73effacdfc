/*
 * Helpers shared by the admin handlers (topics, configs, records).
 */
#ifndef SL_HANDLERS_ADMIN_H
#define SL_HANDLERS_ADMIN_H

#include "streamlog/server/handlers.h"
#include "streamlog/server/topic_admin.h"

/* Config resource types (DescribeConfigs, AlterConfigs, ...) */
#define SL_CONFIG_RESOURCE_TOPIC 2
#define SL_CONFIG_RESOURCE_BROKER 4
#define SL_CONFIG_RESOURCE_BROKER_LOGGER 8

/* Config sources (DescribeConfigs v1+) */
#define SL_CONFIG_SOURCE_DYNAMIC_TOPIC 1
#define SL_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER 3
#define SL_CONFIG_SOURCE_STATIC_BROKER 4
#define SL_CONFIG_SOURCE_DEFAULT 5

/* NUL-terminated copy of a wire string; NULL for null */
extern char *SlAdminCString(SlStr s);

/*
 * A jsonb object of n config names to values, all strings; a NULL value
 * becomes JSON null (which SlTopicAlterConfig takes as "back to default").
 */
extern Jsonb *SlAdminConfigObject(int n, char **names, char **values);

#endif							/* SL_HANDLERS_ADMIN_H */
