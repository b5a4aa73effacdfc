"""A physical streaming standby of a PgServer, for the high-availability
tests (README, "High availability with a standby").

The standby is cloned with pg_basebackup -R (standby.signal and
primary_conninfo written by the tool) and gets its own ports; its
cluster_name is the application name under which the primary lists it in
pg_stat_replication, the name synchronous_standby_names refers to.

    primary = make_server()
    standby = StandbyServer(primary, base_dir, application_name="standby1")
    standby.start()                       # read-only, replaying
    make_synchronous(primary, "standby1") # commits wait for its flush
    primary.kill9(); standby.promote()    # now a primary of its own

While in recovery the standby runs no Kafka listener (streamlog's
background workers start once recovery ends), so start() does not wait
for one; promote() does.
"""

import os

from pgserver import PgServer, bindir, wait_until


class StandbyServer(PgServer):
    """A hot standby of `primary`, streaming from it (see the module
    docstring); application_name names it to the primary."""

    def __init__(self, primary, base_dir=None, conf=None, name="standby",
                 application_name="standby1"):
        merged = {"cluster_name": application_name}
        merged.update(conf or {})
        super().__init__(base_dir, conf=merged, create_extension=False, name=name)
        self.primary = primary
        self.application_name = application_name

    def initdb(self):
        """Clone the primary instead of running initdb."""
        p = self.primary
        self._run([
            os.path.join(bindir(), "pg_basebackup"),
            "-h", p.host, "-p", str(p.port), "-U", p.user,
            "-D", self.datadir, "-R", "-X", "stream", "-c", "fast", "--no-sync",
        ])
        # pgserver.conf came with the copy: the standby's own ports and
        # settings replace the primary's
        self._write_conf()
        self._initialized = True

    def in_recovery(self):
        return self.sql("SELECT pg_is_in_recovery()")[0][0]

    def _wait_kafka_listening(self, timeout):
        if os.path.exists(os.path.join(self.datadir, "standby.signal")):
            return
        super()._wait_kafka_listening(timeout)

    def promote(self, timeout=120):
        """pg_ctl promote, then wait until the server accepts writes and
        its Kafka listener is up."""
        self._run([os.path.join(bindir(), "pg_ctl"), "-D", self.datadir,
                   "-w", "-t", str(timeout), "promote"])
        wait_until(lambda: not self.in_recovery(), timeout, "the end of recovery")
        self._wait_kafka_listening(timeout)
        return self

    def replay_caught_up(self, primary_lsn):
        """True once this standby has replayed WAL up to primary_lsn."""
        return self.sql("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                        (primary_lsn,))[0][0]


def make_synchronous(primary, application_name, timeout=60):
    """Make `application_name` the primary's synchronous standby and wait
    until pg_stat_replication says it is one."""
    primary.update_conf({"synchronous_standby_names": application_name})
    primary.reload()
    wait_until(lambda: primary.sql(
        "SELECT sync_state FROM pg_stat_replication WHERE application_name = %s",
        (application_name,)) == [("sync",)], timeout,
        f"{application_name} to be a synchronous standby")


def current_lsn(server):
    return server.sql("SELECT pg_current_wal_lsn()::text")[0][0]


def wait_replayed(primary, standby, timeout=60):
    """Wait until the standby has replayed everything the primary wrote so
    far."""
    lsn = current_lsn(primary)
    wait_until(lambda: standby.replay_caught_up(lsn), timeout,
               f"the standby to replay up to {lsn}")
