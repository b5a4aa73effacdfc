"""What the benchmark drivers (bench.py, kafka/kbench.py, groups/gbench.py)
have in common: the Driver base class (the psycopg connection, queries,
settling between measurements, WAL and topic sizes, the server log, the
machine facts at the head of the results), the clients' "result k=v" lines,
number formatting, ratios against targets, and text tables."""

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import time

import psycopg


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(cmd):
    """A command's output, or "?" when it cannot tell: a missing tool must
    not cost a benchmark run its results."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return "?"


def machine_facts(data_dir):
    """The machine and checkout a run measured: CPU model, RAM, the data
    directory's file system, the git revision and whether the extension's
    sources differ from it, the load average at the start."""
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    fs = "?"
    if data_dir:
        df = sh(["df", "-PT", data_dir]).splitlines()
        if len(df) == 2:
            p = df[1].split()
            fs = f"{p[1]} on {p[0]}"
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dirty = sh(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no", "--",
                "src", "bgworkers", "sql", "Makefile"])
    return {"cpu": cpu,
            "mem_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
            "fs": fs,
            "rev": sh(["git", "-C", repo, "rev-parse", "--short", "HEAD"]),
            "dirty": bool(dirty),
            "load": os.getloadavg()}


def parse_kv(line):
    """The k=v words after the first word of a client's output line, numbers
    as floats."""
    out = {}
    for kv in line.split()[1:]:
        k, _, v = kv.partition("=")
        try:
            out[k] = float(v) if re.fullmatch(r"-?[0-9.]+", v) else v
        except ValueError:
            out[k] = v
    return out


def parse_result(text):
    """The last 'result k=v ...' line of a client's output, as a dict, or None."""
    for line in reversed(text.splitlines()):
        if line.startswith("result "):
            return parse_kv(line)
    return None


def driver_arguments(doc, data_dir_help, server_log_help, data_dir_required=True):
    """The options every driver takes (what its runner passes); the
    driver adds its own."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="reduced sizes, for a smoke test")
    ap.add_argument("--data-dir", required=data_dir_required, help=data_dir_help)
    ap.add_argument("--server-log", help=server_log_help)
    ap.add_argument("--output", help="also write the results table to this file")
    return ap


class Driver:
    """One benchmark run on the server of PGHOST, PGPORT, PGUSER and
    PGDATABASE: what every driver's measurements stand on."""

    # Server log lines worth reporting, and lines among them that are not
    # (see server_log_news); each driver names what concerns it.
    LOG_KEEP = ("ERROR", "FATAL", "PANIC", "WARNING", "terminated by signal", "exited with exit code")
    # the driver's own VACUUM cancels autovacuum workers: not the server's fault
    LOG_SKIP = ("listening on", "canceling autovacuum task", "automatic vacuum of table",
                "automatic analyze of table")

    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.pause = 0.5 if self.quick else 3.0
        self.conn = psycopg.connect(autocommit=True)
        self.out = []
        self.notes = []
        # only what the server logs during this run is news
        self.log_pos = 0
        if args.server_log:
            try:
                self.log_pos = os.path.getsize(args.server_log)
            except OSError:
                pass

    # -- queries -----------------------------------------------------------

    def q(self, sql, params=None):
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None

    def q1(self, sql, params=None):
        return self.q(sql, params)[0][0]

    def emit(self, text=""):
        self.out.append(text)

    def settle(self):
        """Leave no background work to the next measurement: vacuum what the
        last one wrote (so autovacuum has nothing to start), flush it, wait."""
        self.q("VACUUM")
        self.q("CHECKPOINT")
        time.sleep(self.pause)

    def wal_lsn(self):
        return self.q1("SELECT pg_current_wal_insert_lsn()")

    def wal_since(self, lsn):
        return float(self.q1("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", (lsn,)))

    def topic_bytes(self, topic):
        return float(self.q1(
            "SELECT coalesce(sum(bytes), 0) FROM streamlog.partitions WHERE topic = %s", (topic,)))

    def timed_copy(self, sql, chunk, chunks, tail=b""):
        """COPY FROM STDIN `chunks` times chunk, then tail, in one
        transaction; returns (rows, seconds including COMMIT, seconds spent
        in COMMIT)."""
        with self.conn.cursor() as cur:
            t0 = time.perf_counter()
            cur.execute("BEGIN")
            with cur.copy(sql) as cp:
                for _ in range(chunks):
                    cp.write(chunk)
                if tail:
                    cp.write(tail)
            rows = cur.rowcount
            t1 = time.perf_counter()
            cur.execute("COMMIT")
            t2 = time.perf_counter()
        return rows, t2 - t0, t2 - t1

    def pg_settings(self, *names):
        """{name: setting with its unit} of the server's settings"""
        return dict(self.q("SELECT name, setting || coalesce(unit, '') FROM pg_settings "
                           "WHERE name = ANY(%s)", (list(names),)))

    def shared_buffers_mb(self):
        return int(self.q1("SELECT setting::bigint * 8192 FROM pg_settings "
                           "WHERE name = 'shared_buffers'")) // 2**20

    def broker_pids(self):
        pids = [r[0] for r in self.q(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'streamlog broker' ORDER BY pid")]
        if not pids:
            raise RuntimeError("no streamlog broker worker is running (see the server log)")
        return pids

    # -- the server log ------------------------------------------------------

    def server_log_news(self):
        """Lines the server logged since the last call that say something
        went wrong (LOG_KEEP, less LOG_SKIP)."""
        if not self.args.server_log:
            return []
        try:
            with open(self.args.server_log, errors="replace") as f:
                f.seek(self.log_pos)
                text = f.read()
                self.log_pos = f.tell()
        except OSError:
            return []
        return [ln.strip() for ln in text.splitlines()
                if any(k in ln for k in self.LOG_KEEP) and not any(s in ln for s in self.LOG_SKIP)]

    def note_log(self, what):
        news = self.server_log_news()
        if news:
            self.notes.append(f"{what}: the server logged {len(news)} line(s), first: "
                              + " | ".join(news[:3]))

    # -- results -------------------------------------------------------------

    def emit_head(self, title, load_at_start=True):
        """The lines every driver's results start with: title, date, machine,
        data dir, server.  Returns the machine facts, for the driver's own
        lines that follow."""
        facts = machine_facts(self.args.data_dir)
        machine = (f"  machine     nproc={os.cpu_count()} ({facts['cpu']}), RAM {facts['mem_gb']:.0f} GiB, "
                   f"{platform.system()} {platform.release()}")
        if load_at_start:
            load = facts["load"]
            machine += f"; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        self.emit(title + (" (--quick: reduced sizes)" if self.quick else ""))
        self.emit(f"  date        {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M:%S %Z')}")
        self.emit(machine)
        self.emit(f"  data dir    {facts['fs']}")
        self.emit(f"  server      {self.q1('SELECT version()')}")
        return facts

    def publish(self, text, say_where=True):
        """Print the results and write them to --output."""
        print(text, end="")
        if self.args.output:
            with open(self.args.output, "w") as f:
                f.write(text)
            if say_where:
                log(f"results written to {self.args.output}")


# -- formatting ----------------------------------------------------------------

def fmt_int(x):
    return f"{x:,.0f}"


def fmt_mb(x):
    return f"{x:,.1f}"


def fmt_ratio(x, target=None):
    """x.xx, or x.xxx when two decimals would hide which side of target it is"""
    if target is not None and round(x, 2) == round(target, 2) and x != target:
        return f"{x:.3f}x"
    return f"{x:.2f}x"


def verdict(ok):
    return "met" if ok else "MISSED"


def table(headers, rows, align=None):
    """Render rows as a fixed-width text table; align is a string of l/r per column."""
    cols = len(headers)
    align = align or ("l" + "r" * (cols - 1))
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(cols)]

    def line(r):
        out = []
        for i, c in enumerate(r):
            out.append(c.ljust(widths[i]) if align[i] == "l" else c.rjust(widths[i]))
        return "  " + "  ".join(out).rstrip()

    sep = "  " + "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), sep] + [line(r) for r in cells[1:]])
