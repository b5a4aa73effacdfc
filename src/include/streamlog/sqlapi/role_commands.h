/*
 * What DROP ROLE, DROP OWNED and REASSIGN OWNED do to streamlog's
 * privileges and topic owners (role_commands.c).
 */
#ifndef SL_ROLE_COMMANDS_H
#define SL_ROLE_COMMANDS_H

/* Install the utility hook (from _PG_init) */
extern void SlRoleCommandsInit(void);

#endif							/* SL_ROLE_COMMANDS_H */
