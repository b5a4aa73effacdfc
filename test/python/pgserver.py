"""Real PostgreSQL 15 servers for the streamlog tests.

PgServer creates a cluster with initdb, runs it on a free loopback port and
offers the faults the tests need: fast/immediate stop, SIGKILL of the
postmaster, restart.  Server processes cannot run as root, so when the tests
run as root every server command runs as the ``postgres`` system user and the
server files live in a directory owned by that user.

    srv = PgServer(None, {"streamlog.retention_check_interval": 1000})
    srv.start()
    srv.sql("select 1")            # [(1,)]
    srv.kill9(); srv.start()       # crash recovery
    srv.cleanup()
"""

import atexit
import ctypes
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import weakref

import psycopg

PG_CONFIG = os.environ.get("PG_CONFIG", "/usr/bin/pg_config")
HOST = "127.0.0.1"
SUPERUSER = "postgres"
SERVER_OS_USER = "postgres"
IS_ROOT = os.geteuid() == 0
KEEP_FILES = os.environ.get("STREAMLOG_KEEP_SERVERS", "") not in ("", "0")

START_TIMEOUT = 120
STOP_TIMEOUT = 120

_bindir = None


def bindir():
    """Directory of initdb, pg_ctl and postgres (pg_config --bindir)."""
    global _bindir
    if _bindir is None:
        _bindir = subprocess.run(
            [PG_CONFIG, "--bindir"], check=True, capture_output=True, text=True
        ).stdout.strip()
    return _bindir


def _as_server_user(cmd):
    if IS_ROOT:
        return ["runuser", "-u", SERVER_OS_USER, "--"] + list(cmd)
    return list(cmd)


def _chown_to_server_user(path):
    if IS_ROOT:
        pw = pwd.getpwnam(SERVER_OS_USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)


# Ports are drawn below the kernel's ephemeral range (ip_local_port_range,
# 32768-60999 by default): a port taken from that range can be handed to an
# outgoing client connection at any moment, and two servers picked one after
# another could even be handed the same one.
_PORT_RANGE = (20000, 32000)
_ports_handed_out = set()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now and that
    this process has not handed out before."""
    for _ in range(1000):
        port = random.randint(*_PORT_RANGE)
        if port in _ports_handed_out or not port_is_free(port):
            continue
        _ports_handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {_PORT_RANGE}")


def port_is_free(port):
    """True if a listening socket could be bound to 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # like the postmaster: TIME_WAIT connections do not block a bind
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


_NOT_TOPIC_CHARS = re.compile(r"[^a-zA-Z0-9._-]")


# statement_timeout of a session whose statements must not wait for another
# one: such a wait would last until the test ends the other transaction,
# which it does only afterwards, so the timeout only turns a hang into a
# failure; it is generous, so that a slow machine never trips it.
NO_WAIT_GUARD = "SET statement_timeout = '60s'"


def wait_until(predicate, timeout, what, interval=0.05):
    """Poll predicate() until it returns a true value, which is returned;
    fail the test after timeout seconds."""
    import pytest

    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def unique_name(prefix="t"):
    """A fresh name valid as a Kafka topic name ([a-zA-Z0-9._-], <= 249)."""
    prefix = _NOT_TOPIC_CHARS.sub("_", str(prefix))[:236]
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _conf_value(value):
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


# Orphaned server processes are reparented to the nearest "subreaper".  Being
# one lets this process reap a postmaster it SIGKILLed; otherwise, under an
# init that does not reap, the zombie would keep postmaster.pid "alive".
_subreaper_done = False


def _become_subreaper():
    global _subreaper_done
    if _subreaper_done:
        return
    _subreaper_done = True
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _proc_state(pid):
    """Process state letter from /proc (R, S, Z, ...) or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _alive(pid):
    _reap(pid)
    state = _proc_state(pid)
    return state is not None and state not in ("Z", "X")


def _processes_in(directory):
    """PIDs of live processes whose working directory is `directory`.

    Every process of a PostgreSQL server has the data directory as its
    working directory, so this finds the postmaster and all its children,
    including backends orphaned by a SIGKILLed postmaster."""
    target = os.path.realpath(directory)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/cwd") == target:
                found.append(int(entry))
        except OSError:
            continue
    return found


def _tail(text, lines):
    return "\n".join(text.splitlines()[-lines:])


_all_servers = weakref.WeakSet()


@atexit.register
def _cleanup_all():
    for srv in list(_all_servers):
        try:
            srv.cleanup()
        except Exception:
            pass


class PgServer:
    """One PostgreSQL cluster with streamlog preloaded.

    base_dir: directory in which a private directory for this server is
    created (None: the system temp directory).  When running as root and the
    postgres user cannot use base_dir, the system temp directory is used.
    conf: postgresql.conf settings overriding the defaults; a value of None
    removes a default setting.  Settings are written at initdb time; use
    update_conf() plus restart()/reload() to change them later.
    create_extension: run CREATE EXTENSION IF NOT EXISTS streamlog (in
    database postgres) after the first successful start.
    """

    def __init__(self, base_dir=None, conf=None, create_extension=True, name="pg"):
        self.host = HOST
        # a network namespace (ip netns) the server runs in, or None; its
        # listeners are then on self.host inside it (jepsen_network.py)
        self.netns = None
        self.user = SUPERUSER
        self.port = free_port()
        # The Kafka listener gets a port of its own too: broker workers of
        # different servers would otherwise share 9092 through SO_REUSEPORT
        self.kafka_port = free_port()
        self.conf = dict(conf or {})
        self.create_extension = create_extension
        self.pid = None
        self._initialized = False
        self._ever_started = False
        self._extension_created = False
        self._extra_dirs = []
        self.base_dir = self._make_private_dir(base_dir, f"streamlog-{name}-")
        self.datadir = os.path.join(self.base_dir, "data")
        self.logfile = os.path.join(self.base_dir, "server.log")
        # Unix socket paths are limited to 107 bytes
        self.sockdir = os.path.join(self.base_dir, "sock")
        if len(self.sockdir) > 80:
            self.sockdir = self._make_private_dir(None, "slpg-")
            self._extra_dirs.append(self.sockdir)
        else:
            os.mkdir(self.sockdir, 0o700)
            _chown_to_server_user(self.sockdir)
        _all_servers.add(self)

    # -- files and configuration -------------------------------------------

    @staticmethod
    def _make_private_dir(base_dir, prefix):
        candidates = []
        for d in (base_dir, tempfile.gettempdir(), "/tmp"):
            if d is not None and str(d) not in candidates:
                candidates.append(str(d))
        for parent in candidates:
            try:
                path = tempfile.mkdtemp(prefix=prefix, dir=parent)
            except OSError:
                continue
            if not IS_ROOT:
                return path
            _chown_to_server_user(path)
            usable = subprocess.run(
                _as_server_user(["test", "-w", path, "-a", "-x", path]),
                cwd="/",
            ).returncode == 0
            if usable:
                return path
            shutil.rmtree(path, ignore_errors=True)
        raise RuntimeError(f"no directory usable by the server among {candidates}")

    def settings(self):
        """The settings written to the server's configuration."""
        merged = {
            "listen_addresses": self.host,
            "port": self.port,
            "unix_socket_directories": self.sockdir,
            "shared_preload_libraries": "streamlog",
            "streamlog.database": "postgres",
            "streamlog.port": self.kafka_port,
            "streamlog.listen_addresses": self.host,
            "logging_collector": False,
        }
        merged.update(self.conf)
        return {k: v for k, v in merged.items() if v is not None}

    def _write_conf(self):
        path = os.path.join(self.datadir, "pgserver.conf")
        with open(path, "w") as f:
            f.write("# written by test/python/pgserver.py\n")
            for key, value in self.settings().items():
                f.write(f"{key} = {_conf_value(value)}\n")
        _chown_to_server_user(path)

    def update_conf(self, conf):
        """Merge settings (None removes one); effective after restart/reload."""
        self.conf.update(conf)
        if self._initialized:
            self._write_conf()

    def _run(self, cmd, check=True):
        # the postmaster inherits the namespace pg_ctl starts in
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        res = subprocess.run(
            prefix + _as_server_user(cmd),
            cwd=self.base_dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        if check and res.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} failed with exit code {res.returncode}\n"
                f"{res.stdout}{res.stderr}\n--- server log (tail)\n{self.log_tail(40)}"
            )
        return res

    def initdb(self):
        self._run([
            os.path.join(bindir(), "initdb"), "-D", self.datadir,
            "-U", SUPERUSER, "-A", "trust", "--no-sync", "-E", "UTF8",
            "--locale=C", "--no-instructions",
        ])
        with open(os.path.join(self.datadir, "postgresql.conf"), "a") as f:
            f.write("\ninclude 'pgserver.conf'\n")
        self._write_conf()
        self._initialized = True

    # -- lifecycle ----------------------------------------------------------

    def _read_pid(self):
        try:
            with open(os.path.join(self.datadir, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (FileNotFoundError, ValueError):
            return None

    def is_running(self):
        pid = self._read_pid()
        return pid is not None and _alive(pid)

    def start(self):
        """Start the server (initdb first if needed); returns self."""
        _become_subreaper()
        if not self._initialized:
            self.initdb()
        if self.is_running():
            return self
        for attempt in range(3):
            log_offset = len(self.log_text())
            res = self._run([
                os.path.join(bindir(), "pg_ctl"), "-D", self.datadir,
                "-l", self.logfile, "-w", "-t", str(START_TIMEOUT), "start",
            ], check=False)
            if res.returncode == 0:
                break
            new_log = self.log_text()[log_offset:]
            if "Address already in use" in new_log and attempt < 2:
                if self._ever_started:
                    self._wait_port_free(30)
                else:
                    self.port = free_port()
                    self._write_conf()
                continue
            raise RuntimeError(
                f"server in {self.datadir} did not start (pg_ctl exit code "
                f"{res.returncode})\n{res.stdout}{res.stderr}\n"
                f"--- server log\n{_tail(new_log, 60)}"
            )
        self._ever_started = True
        self.pid = self._read_pid()
        self._wait_kafka_listening(START_TIMEOUT)
        if self.create_extension and not self._extension_created:
            self.sql("CREATE EXTENSION IF NOT EXISTS streamlog")
            self._extension_created = True
        return self

    def _wait_kafka_listening(self, timeout):
        """The broker workers start after the server accepts SQL connections:
        wait until the Kafka port accepts one too, so that a test can connect
        right after start() (after a crash and restart as well).  A server
        without a listener, or one that never listens (a test of a bad
        setting), is left to the test to judge."""
        settings = self.settings()
        if "streamlog" not in str(settings.get("shared_preload_libraries", "")) or \
                str(settings.get("streamlog.port", "")) in ("0", ""):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.is_running():
            try:
                socket.create_connection((self.host, self.kafka_port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)

    def stop(self, mode="fast"):
        """pg_ctl stop with mode 'smart', 'fast' or 'immediate'."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"bad stop mode {mode!r}")
        if not self.is_running():
            return
        pid = self._read_pid()
        self._run([
            os.path.join(bindir(), "pg_ctl"), "-D", self.datadir,
            "-m", mode, "-w", "-t", str(STOP_TIMEOUT), "stop",
        ])
        self._wait_processes_gone(pid, STOP_TIMEOUT)
        self.pid = None

    def kill9(self, timeout=60):
        """SIGKILL the postmaster, wait for its children and the port."""
        pid = self._read_pid()
        if pid is None or not _alive(pid):
            raise RuntimeError(f"no running postmaster in {self.datadir}")
        # remember the children: once orphaned they are reparented to this
        # process (see _become_subreaper) and must be reaped by pid
        children = _processes_in(self.datadir)
        os.kill(pid, signal.SIGKILL)
        self._wait_processes_gone(pid, timeout, children)
        self._wait_port_free(timeout)
        self.pid = None

    def restart(self, mode="fast"):
        self.stop(mode)
        return self.start()

    def reload(self):
        self._run([os.path.join(bindir(), "pg_ctl"), "-D", self.datadir, "reload"])

    def _wait_processes_gone(self, postmaster_pid, timeout, known=()):
        deadline = time.monotonic() + timeout
        known = set(known)
        if postmaster_pid is not None:
            known.add(postmaster_pid)
        while True:
            known.update(_processes_in(self.datadir))
            left = [p for p in known if _alive(p)]
            if not left:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"server processes {left} still running after {timeout}s")
            time.sleep(0.05)
        # A dead postmaster nobody reaps still "exists" for the lock file
        # check of the next start; its pid file is stale, remove it.
        if postmaster_pid is not None and _proc_state(postmaster_pid) == "Z":
            if self._read_pid() == postmaster_pid:
                os.unlink(os.path.join(self.datadir, "postmaster.pid"))

    def _wait_port_free(self, timeout):
        deadline = time.monotonic() + timeout
        while not port_is_free(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"port {self.port} still in use after {timeout}s")
            time.sleep(0.05)

    def cleanup(self):
        """Stop (immediate, or SIGKILL) and remove all files of the server."""
        _all_servers.discard(self)
        try:
            if self.is_running():
                try:
                    self.stop("immediate")
                except Exception:
                    self.kill9()
        finally:
            if not KEEP_FILES:
                for d in [self.base_dir] + self._extra_dirs:
                    shutil.rmtree(d, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # -- clients --------------------------------------------------------------

    @property
    def kafka_bootstrap(self):
        """bootstrap.servers for Kafka clients of this server."""
        return f"{self.host}:{self.kafka_port}"

    @property
    def dsn(self):
        return f"host={self.host} port={self.port} user={self.user} dbname=postgres"

    @property
    def url(self):
        return f"postgresql://{self.user}@{self.host}:{self.port}/postgres"

    def connect(self, dbname="postgres", autocommit=True, **kwargs):
        kwargs.setdefault("connect_timeout", 10)
        return psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname=dbname,
            autocommit=autocommit, **kwargs,
        )

    def sql(self, query, params=None, dbname="postgres"):
        """Run one statement in autocommit mode; rows as a list of tuples."""
        with self.connect(dbname=dbname) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description is not None else []

    def log_text(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=50):
        return _tail(self.log_text(), lines)

    def __repr__(self):
        return f"<PgServer port={self.port} datadir={self.datadir}>"
