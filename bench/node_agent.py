"""Helpers of the node agent benchmark (bench/node-agent.sh): test data,
sampling the two agents, and the report.

  node_agent.py gen --root DIR --ns NS --pod NAME=UID ... --mib N --mix plain|mixed --out F.json
  node_agent.py drain --name N --pid P --kind ours|fluentbit --url URL --group G --expect K \
        --start EPOCH --timeout S --out F.json
  node_agent.py load --ns NS --pod NAME ... --status-dir DIR --expect K \
        --agent NAME,PID,KIND,URL,GROUP ... --drain S --out F.json
  node_agent.py report --work DIR --results bench/RESULTS.md ...

`gen` writes a node's container logs as the kubelet lays them out
(`containers/<pod>_<ns>_<container>-<64 hex>.log` symlinks into
`pods/<ns>_<pod>_<uid>/<container>/0.log`), CRI lines of about 200 bytes
with `seq=<n>`; `mixed` makes a quarter of the entries JSON objects and a
tenth of them four pieces (three `P`, one `F`). `drain` waits until an
agent has delivered K records (read from its own metrics) and records the
wall time since START, its CPU seconds (utime+stime) and peak RSS (VmHWM)
at that moment. `load` follows a rate run: it waits for the environment's
log writer to finish the pods, then up to S seconds for each agent to
deliver K records, sampling each agent's CPU and RSS.
"""

import argparse
import json
import os
import random
import re
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from results import write_section  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


# --- test data -----------------------------------------------------------

def container_id(uid, name):
    """64 hex digits, as the environment's log writer makes them."""
    h = 0xCBF29CE484222325
    out = ""
    for rnd in range(4):
        for b in (uid + name).encode() + bytes([rnd]):
            h ^= b
            h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        out += f"{h:016x}"
    return out


class Clock:
    """CRI timestamps, one microsecond apart, from now."""

    def __init__(self):
        self.us = int(time.time() * 1e6)
        self.sec = None
        self.prefix = ""

    def next(self):
        self.us += 1
        s, us = divmod(self.us, 1_000_000)
        if s != self.sec:
            self.sec = s
            self.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s))
        return f"{self.prefix}.{us:06d}000Z"


def pad(text, width):
    return text + "x" * max(0, width - len(text))


def write_file(path, pod, ns, size, mix, rng, clock):
    """Writes about `size` bytes of CRI lines; returns (bytes, lines, entries)."""
    tag = f"pod={pod} ns={ns} container=app"
    written = lines = entries = 0
    seq = 0
    with open(path, "w") as f:
        buf = []
        while written < size:
            seq += 1
            entries += 1
            r = rng.random() if mix == "mixed" else 1.0
            if r < 0.25:
                body = (
                    f'{{"level":"info","msg":"seq={seq} {tag}","user_id":{seq * 7919 % 100000},'
                    f'"path":"/api/v1/items/{seq}","latency_ms":{seq % 97},"pad":"'
                )
                line = f"{clock.next()} stdout F {pad(body, 162)}\"}}\n"
                parts = [line]
            elif r < 0.35:
                parts = [
                    f"{clock.next()} stdout P {pad(f'seq={seq} part={k} {tag} ', 160)}\n"
                    for k in range(3)
                ]
                parts.append(f"{clock.next()} stdout F {pad(f'seq={seq} part=3 end ', 160)}\n")
            else:
                parts = [f"{clock.next()} stdout F {pad(f'seq={seq} {tag} ', 160)}\n"]
            for p in parts:
                buf.append(p)
                written += len(p)
            lines += len(parts)
            if len(buf) >= 4096:
                f.write("".join(buf))
                buf.clear()
        f.write("".join(buf))
    return written, lines, entries


def gen(a):
    rng = random.Random(42)
    clock = Clock()
    totals = {"bytes": 0, "lines": 0, "records": 0, "files": 0}
    os.makedirs(os.path.join(a.root, "containers"), exist_ok=True)
    for spec in a.pod:
        pod, uid = spec.split("=", 1)
        d = os.path.join(a.root, "pods", f"{a.ns}_{pod}_{uid}", "app")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "0.log")
        b, n, e = write_file(path, pod, a.ns, a.mib << 20, a.mix, rng, clock)
        link = os.path.join(a.root, "containers", f"{pod}_{a.ns}_app-{container_id(uid, 'app')}.log")
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(path, link)
        totals["bytes"] += b
        totals["lines"] += n
        totals["records"] += e
        totals["files"] += 1
    totals["mix"] = a.mix
    json.dump(totals, open(a.out, "w"))
    print(json.dumps(totals))


# --- sampling -------------------------------------------------------------

def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.read().decode()
    except OSError:
        return None


PROM = re.compile(r'^(\w+)(?:\{([^}]*)\})? ([0-9.eE+-]+)$')


def ours_counters(url, group):
    """Delivered events of `group`, retries and drops, from our /metrics."""
    text = fetch(url)
    if text is None:
        return None
    out = {"delivered": 0, "retries": 0, "dropped": 0, "read": 0}
    for line in text.splitlines():
        m = PROM.match(line)
        if not m:
            continue
        name, labels, v = m.group(1), m.group(2) or "", float(m.group(3))
        if name == "outrigger_node_agent_events_delivered_total" and f'group="{group}"' in labels:
            out["delivered"] += v
        elif name == "outrigger_node_agent_retries_total":
            out["retries"] += v
        elif name == "outrigger_node_agent_events_dropped_total":
            out["dropped"] += v
        elif name == "outrigger_node_agent_lines_read_total":
            out["read"] += v
    return out


def fluentbit_counters(url, _group):
    """Records the (only) output processed, its retries and drops, from
    Fluent Bit's /api/v1/metrics."""
    text = fetch(url)
    if text is None:
        return None
    try:
        m = json.loads(text)
    except ValueError:
        return None
    out = {"delivered": 0, "retries": 0, "dropped": 0, "read": 0, "retries_failed": 0, "errors": 0}
    for o in m.get("output", {}).values():
        out["delivered"] += o.get("proc_records", 0)
        out["retries"] += o.get("retries", 0)
        out["retries_failed"] += o.get("retries_failed", 0)
        out["dropped"] += o.get("dropped_records", 0)
        out["errors"] += o.get("errors", 0)
    for i in m.get("input", {}).values():
        out["read"] += i.get("records", 0)
    return out


def otelcol_counters(url, _group):
    """Log records the exporter sent and the receiver accepted, from the
    OpenTelemetry Collector's own Prometheus metrics."""
    text = fetch(url)
    if text is None:
        return None
    out = {"delivered": 0, "retries": 0, "dropped": 0, "read": 0}
    for line in text.splitlines():
        m = PROM.match(line)
        if not m:
            continue
        name, v = m.group(1), float(m.group(3))
        if name.startswith("otelcol_exporter_sent_log_records"):
            out["delivered"] += v
        elif name.startswith("otelcol_exporter_send_failed_log_records"):
            out["dropped"] += v
        elif name.startswith("otelcol_receiver_accepted_log_records"):
            out["read"] += v
    return out


COUNTERS = {"ours": ours_counters, "fluentbit": fluentbit_counters, "otelcol": otelcol_counters}


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def drain(a):
    """One agent alone from its start: wall time, CPU and peak RSS when
    every record is delivered."""
    counters = COUNTERS[a.kind]
    deadline = time.time() + a.timeout
    last = None
    while True:
        if not alive(a.pid):
            sys.exit(f"{a.name}: the process exited (last counters {last})")
        c = counters(a.url, a.group)
        now = time.time()
        if c is not None:
            last = c
            if c["delivered"] >= a.expect:
                cpu = cpu_seconds(a.pid)
                hwm = status_kib(a.pid, "VmHWM")
                break
        if now > deadline:
            sys.exit(f"{a.name}: {last} after {a.timeout} s, expected {a.expect} records delivered")
        time.sleep(0.1)
    r = {"name": a.name, "wall_s": round(now - a.start, 2), "cpu_s": round(cpu, 2),
         "vmhwm_kib": hwm, "counters": last}
    json.dump(r, open(a.out, "w"))
    print(json.dumps(r))


def load(a):
    """A rate run: the writers, then each agent's drain, sampled."""
    agents = []
    for spec in a.agent:
        name, pid, kind, url, group = spec.split(",", 4)
        pid = int(pid)
        agents.append({"name": name, "pid": pid, "kind": kind, "url": url, "group": group,
                       "cpu0": cpu_seconds(pid), "rss_max_kib": 0, "done_at": None,
                       "last_value": None, "last_increase": None,
                       "base": (COUNTERS[kind](url, group) or {"delivered": 0})["delivered"]})
    start = time.time()
    statuses = [os.path.join(a.status_dir, f"{a.ns}_{p}_app.json") for p in a.pod]
    writers_done = None
    lines = 0
    while True:
        now = time.time()
        for g in agents:
            if alive(g["pid"]):
                g["rss_max_kib"] = max(g["rss_max_kib"], status_kib(g["pid"], "VmRSS"))
                c = COUNTERS[g["kind"]](g["url"], g["group"])
                if c is not None:
                    g["last"] = c
                    if g["last_value"] is None or c["delivered"] > g["last_value"]:
                        g["last_value"], g["last_increase"] = c["delivered"], now
                    if g["done_at"] is None and c["delivered"] - g["base"] >= a.expect:
                        g["done_at"] = now
                        g["cpu_s"] = cpu_seconds(g["pid"]) - g["cpu0"]
        if writers_done is None:
            st = []
            for s in statuses:
                try:
                    st.append(json.load(open(s)))
                except (OSError, ValueError):
                    st.append(None)
            if all(x and x.get("done") for x in st):
                writers_done = now
                lines = sum(x["lines"] for x in st)
                rotations = sum(x.get("rotations", 0) for x in st)
            elif now - start > a.write_timeout:
                sys.exit(f"the log writer did not finish within {a.write_timeout} s: {st}")
        else:
            pending = [g for g in agents if g["done_at"] is None and alive(g["pid"])]
            if not pending or now - writers_done > a.drain:
                break
        time.sleep(0.5)
    out = {"writers_s": round(writers_done - start, 1), "lines": lines, "rotations": rotations,
           "agents": {}}
    for g in agents:
        if g.get("cpu_s") is None:
            g["cpu_s"] = cpu_seconds(g["pid"]) - g["cpu0"] if alive(g["pid"]) else None
        out["agents"][g["name"]] = {
            "drained_after_writers_s": None if g["done_at"] is None else round(max(0.0, g["done_at"] - writers_done), 1),
            "last_delivery_after_writers_s": None if g["last_increase"] is None else round(g["last_increase"] - writers_done, 1),
            "cpu_s": None if g["cpu_s"] is None else round(g["cpu_s"], 2),
            "rss_max_kib": g["rss_max_kib"],
            "vmhwm_kib": status_kib(g["pid"], "VmHWM") if alive(g["pid"]) else None,
            "alive": alive(g["pid"]),
            "delivered": (g.get("last") or {}).get("delivered", 0) - g["base"],
            "counters": g.get("last"),
        }
    json.dump(out, open(a.out, "w"))
    print(json.dumps(out))


def splits(a):
    """Records of the mixed data's four-piece entries that are not whole
    (a record holding `part=` without both the first and the last piece)."""
    n = bad = 0
    with open(a.file, errors="replace") as f:
        for line in f:
            n += 1
            if "part=" in line and not ("part=0" in line and "part=3 end" in line):
                bad += 1
    r = {"records": n, "split": bad}
    json.dump(r, open(a.out, "w"))
    print(json.dumps(r))


# --- report ---------------------------------------------------------------

def ratio(ours, theirs):
    if not ours or not theirs:
        return ""
    return f"{ours / theirs:.2f}"


def report(a):
    w = a.work
    j = lambda name: json.load(open(os.path.join(w, name)))  # noqa: E731
    meta = j("meta.json")
    legs = meta.get("legs", ["throughput", "rates"])
    rows = []
    if "throughput" in legs:
        for mix in ("plain", "mixed"):
            data = j(f"data-{mix}.json")
            mib = data["bytes"] / 2**20
            o, f = j(f"tp-{mix}-ours.json"), j(f"tp-{mix}-fluentbit.json")
            po, pf = mib / o["cpu_s"], mib / f["cpu_s"]
            what = ("plain CRI lines" if mix == "plain"
                    else "mixed (a quarter JSON objects, a tenth in four P/F pieces)")
            rows.append(f"| **{what}**, {mib:.0f} MiB, {data['records']:,} entries: parse + enrich MiB/s per core | "
                        f"{po:.0f} | {pf:.0f} | {ratio(po, pf)} | >= 150 |")
            rows.append(f"| ... CPU seconds | {o['cpu_s']:.2f} | {f['cpu_s']:.2f} | {ratio(o['cpu_s'], f['cpu_s'])} | |")
            rows.append(f"| ... wall time, start to last record out | {o['wall_s']:.1f} s | {f['wall_s']:.1f} s | "
                        f"{ratio(o['wall_s'], f['wall_s'])} | |")
            ho, hf = o["vmhwm_kib"] / 1024, f["vmhwm_kib"] / 1024
            rows.append(f"| ... peak RSS (VmHWM) | {ho:.1f} MiB | {hf:.1f} MiB | {ratio(ho, hf)} | < 50 MiB |")
            if mix == "mixed" and os.path.exists(os.path.join(w, "tp-mixed-ours-splits.json")):
                so, sf = j("tp-mixed-ours-splits.json"), j("tp-mixed-fluentbit-splits.json")
                rows.append(f"| ... records out (entries: {data['records']:,}); P/F entries not whole | "
                            f"{so['records']:,}; {so['split']:,} | {sf['records']:,}; {sf['split']:,} | | |")
    if "rates" in legs:
        for rate in meta["rates"]:
            r = j(f"rate-{rate}.json")
            c = j(f"rate-{rate}-count.json")
            exp = r["lines"]
            cells = {}
            for name in ("ours", "fluentbit"):
                counts = list(c[name].values())
                events = sum(x["events"] for x in counts)
                distinct = sum(x["distinct"] for x in counts)
                g = r["agents"][name]
                cells[name] = {"lost": exp - distinct, "dup": events - distinct, "cpu": g["cpu_s"],
                               "rss": g["rss_max_kib"] / 1024, "drain": g["drained_after_writers_s"],
                               "last": g.get("last_delivery_after_writers_s")}
            o, f = cells["ours"], cells["fluentbit"]

            def d(x):
                if x["drain"] is not None:
                    return f"all, {x['drain']:.1f} s after"
                if x["last"] is None:
                    return "none"
                return f"the last {x['last']:.1f} s after"
            rows.append(f"| **{rate} MB/s into CloudWatch Logs** ({exp:,} lines of {meta['line_bytes']} bytes, "
                        f"{r['rotations']} rotations): lines lost | {o['lost']:,} | {f['lost']:,} | | 0 |")
            rows.append(f"| ... duplicates | {o['dup']:,} | {f['dup']:,} | | 0 |")
            rows.append(f"| ... delivered, after the writers finished | {d(o)} | {d(f)} | | |")
            rows.append(f"| ... CPU seconds, pods created to drained | {o['cpu']:.1f} | {f['cpu']:.1f} | "
                        f"{ratio(o['cpu'], f['cpu'])} | |")
            rows.append(f"| ... peak RSS (VmRSS every 0.5 s) | {o['rss']:.1f} MiB | {f['rss']:.1f} MiB | "
                        f"{ratio(o['rss'], f['rss'])} | < 50 MiB |")
    otel = ""
    if "throughput" in legs and os.path.exists(os.path.join(w, "tp-plain-otelcol.json")):
        orows = []
        for mix in ("plain", "mixed"):
            data = j(f"data-{mix}.json")
            mib = data["bytes"] / 2**20
            o, t = j(f"tp-{mix}-ours.json"), j(f"tp-{mix}-otelcol.json")
            po, pt = mib / o["cpu_s"], mib / t["cpu_s"]
            ho, ht = o["vmhwm_kib"] / 1024, t["vmhwm_kib"] / 1024
            orows.append(f"| **{mix}**: MiB/s per core | {po:.0f} | {pt:.0f} | {ratio(po, pt)} |")
            orows.append(f"| ... CPU seconds | {o['cpu_s']:.2f} | {t['cpu_s']:.2f} | {ratio(o['cpu_s'], t['cpu_s'])} |")
            orows.append(f"| ... wall time, start to last record out | {o['wall_s']:.1f} s | {t['wall_s']:.1f} s | "
                         f"{ratio(o['wall_s'], t['wall_s'])} |")
            orows.append(f"| ... peak RSS (VmHWM) | {ho:.1f} MiB | {ht:.1f} MiB | {ratio(ho, ht)} |")
        otel = f"""

The file-to-sink leg against the OpenTelemetry Collector ({meta.get("otelcol_build", "")}): the same files,
its `filelog` receiver on `pods/*/*/*.log` (as its Helm chart reads a node) from the start with the
`container` operator (CRI and Docker lines parsed, P/F pieces put back together, pod, namespace, container
and UID taken from the file's path: no API server, so no labels, where ours and Fluent Bit's `kubernetes`
filter add them) and the `file` exporter (OTLP JSON) on /dev/shm,
measured when its `otelcol_exporter_sent_log_records` says the last record is out.

| | outrigger node-agent | OpenTelemetry Collector | ratio (outrigger / Collector) |
|---|---|---|---|
{chr(10).join(orows)}"""
    rates = " and ".join(f"{r} MB/s" for r in meta["rates"])
    variant = f" ({meta['variant']})" if meta.get("variant") else ""
    section = f"""### node agent vs Fluent Bit: the quickstart's application logs, {meta["date"]}{variant}

| | outrigger node-agent | Fluent Bit {meta["fluentbit_version"]} | ratio (outrigger / Fluent Bit) | issue #13's goal |
|---|---|---|---|---|
{chr(10).join(rows)}

Command: `{meta["command"]}` (that is `bash bench/node-agent.sh` on the running local environment).
Machine: {meta["machine"]}, the whole local environment (API server, etcd, kwok, moto) on the same cores.
Outrigger: release build of {meta["outrigger_commit"]}, logs only (`--metrics-collection-interval 0s`).
Fluent Bit: {meta["fluentbit_build"]}.

How to read it: both run the Container Insights quickstart's application-log pipeline (Fluent Bit: its
`tail` with `multiline.parser docker, cri`, `DB`, `storage.type filesystem`, `Mem_Buf_Limit 50MB`,
`Refresh_Interval 10`, `Rotate_Wait 30`, `Read_from_Head` as `read.head`, the `kubernetes` filter with
`Merge_Log On` into `log_processed` and `Labels Off`, `Flush 5`, `cloudwatch_logs`; the filter asks the API
server, as kwok serves no kubelet `/pods`; ours as its DaemonSet runs it, pod labels included).
Throughput: {meta["pods"]} pods x {meta["mib_per_pod"]} MiB of CRI lines of about 200 bytes, generated in a
fresh log root laid out like a node's /var/log for pods bound to a kwok node; each agent alone, from its
start, reading from head, to a file on /dev/shm (ours `--sink file:`, a JSON event per line with the
record embedded; Fluent Bit's `file` output, `Format plain`, the record as JSON), measured when the
agent's own counter says the last record is out (ours `outrigger_node_agent_events_delivered_total`,
Fluent Bit's output `proc_records`); MiB/s per core is the files' bytes over the process's CPU seconds
(utime+stime) at that moment. Into CloudWatch Logs: {meta["rate_pods"]} pods on one node written at
{rates} for {meta["seconds"]} s each by the environment's log writer (kubelet rotation: 10 MiB, 5 files,
rename), both agents started just before the pods, side by side on the node's /var/log (each to its own
cluster's log group on moto; `read.head` Off: files present at start from their end, files found later
from their head; the environment's own agent for the node reads the same files); after the writers finish
each agent gets {meta["drain"]} s; then `testenv/aws/count_seq.py` reads every event back: lost = lines
written - distinct sequence numbers delivered, duplicates = events - distinct. Fluent Bit reaches moto
through a TLS terminator (its `tls Off` is not honoured, below).{otel}"""
    if a.results:
        write_section(a.results, "node-agent", section)
    print(section)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--root", required=True)
    g.add_argument("--ns", required=True)
    g.add_argument("--pod", action="append", required=True)
    g.add_argument("--mib", type=int, default=128)
    g.add_argument("--mix", choices=["plain", "mixed"], default="plain")
    g.add_argument("--out", required=True)
    d = sub.add_parser("drain")
    d.add_argument("--name", required=True)
    d.add_argument("--pid", type=int, required=True)
    d.add_argument("--kind", choices=list(COUNTERS), required=True)
    d.add_argument("--url", required=True)
    d.add_argument("--group", default="")
    d.add_argument("--expect", type=int, required=True)
    d.add_argument("--start", type=float, required=True)
    d.add_argument("--timeout", type=float, default=900)
    d.add_argument("--out", required=True)
    l = sub.add_parser("load")  # noqa: E741
    l.add_argument("--ns", required=True)
    l.add_argument("--pod", action="append", required=True)
    l.add_argument("--status-dir", required=True)
    l.add_argument("--expect", type=int, required=True)
    l.add_argument("--agent", action="append", required=True)
    l.add_argument("--drain", type=float, default=60)
    l.add_argument("--write-timeout", type=float, default=300)
    l.add_argument("--out", required=True)
    sp = sub.add_parser("splits")
    sp.add_argument("--file", required=True)
    sp.add_argument("--out", required=True)
    r = sub.add_parser("report")
    r.add_argument("--work", required=True)
    r.add_argument("--results")
    a = p.parse_args()
    {"gen": gen, "drain": drain, "load": load, "splits": splits, "report": report}[a.cmd](a)


if __name__ == "__main__":
    main()
