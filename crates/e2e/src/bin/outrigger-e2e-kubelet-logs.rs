//! The kubelet's part for container logs, in the local environment: kwok
//! runs no containers, so this process writes their log files.
//!
//! For each pod bound to a node and annotated
//! `testenv.outrigger.dev/log-lines-per-second`, each container gets
//! `<root>/<node>/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log` and the
//! symlink `<root>/<node>/var/log/containers/<pod>_<ns>_<container>-<id>.log`,
//! as the kubelet makes them; lines are CRI (`<time> stdout F <text>`), the
//! text `seq=<n> pod=<pod> ns=<ns> container=<c>` padded with `x` to the
//! line size, `n` counting from 1 per container. Annotations (prefix
//! `testenv.outrigger.dev/`):
//!
//! - `log-lines-per-second` (required), `log-line-bytes` (default 100),
//!   `log-lines-total` (stop after that many; default: until the pod goes);
//! - `log-max-size` (bytes, default 10 MiB, the kubelet's
//!   containerLogMaxSize), `log-max-files` (default 5): rotation when the
//!   file passes the size, the oldest rotated file deleted past the count;
//! - `log-rotation`: `rename` (the kubelet's: `0.log` -> `0.log.<time>`, a
//!   new `0.log`) or `copytruncate` (copied to `0.log.<time>`, then
//!   truncated in place).
//!
//! Every second, and when it stops, each container's progress is written
//! to `<root>/_status/<ns>_<pod>_<container>.json`:
//! `{"lines": n, "done": bool, "rotations": r}`. Each node's
//! `var/log/{messages,secure,dmesg}` get a few host lines at start, and
//! `messages` a line every 10 s after that (a node's syslog is never quiet,
//! so its log group appears even for an agent that starts at the files'
//! ends), for the nodes given and any node directory that appears; so does
//! each node's systemd journal (`var/log/journal/<machine ID>/system.journal`,
//! an entry of `kubelet.service` and one of `containerd.service`, written by
//! systemd-journal-remote: [`outrigger_e2e::journal`]).

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, watcher},
};
use tokio_util::sync::CancellationToken;

const PREFIX: &str = "testenv.outrigger.dev/";

#[derive(Parser, Debug)]
struct Args {
    #[arg(long)]
    kubeconfig: PathBuf,
    /// A directory per node under it.
    #[arg(long)]
    root: PathBuf,
    /// Nodes whose host logs are seeded at start (node directories that
    /// appear under the root later get theirs then).
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
struct Spec {
    rate: f64,
    line_bytes: usize,
    total: Option<u64>,
    max_size: u64,
    max_files: usize,
    copytruncate: bool,
}

fn spec(pod: &Pod) -> Option<Spec> {
    let a = pod.metadata.annotations.as_ref()?;
    let get = |k: &str| a.get(&format!("{PREFIX}{k}"));
    let rate: f64 = get("log-lines-per-second")?.parse().ok()?;
    Some(Spec {
        rate,
        line_bytes: get("log-line-bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(100),
        total: get("log-lines-total").and_then(|v| v.parse().ok()),
        max_size: get("log-max-size")
            .and_then(|v| v.parse().ok())
            .unwrap_or(10 << 20),
        max_files: get("log-max-files")
            .and_then(|v| v.parse().ok())
            .unwrap_or(5),
        copytruncate: get("log-rotation").is_some_and(|v| v == "copytruncate"),
    })
}

/// 64 hex digits from the pod's UID and the container's name (kwok runs
/// no runtime, so there is no container ID to take).
fn container_id(uid: &str, name: &str) -> String {
    let mut out = String::new();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for round in 0..4u8 {
        for b in uid.bytes().chain(name.bytes()).chain([round]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

fn rfc3339(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

struct Writer {
    dir: PathBuf,
    file: std::fs::File,
    size: u64,
    lines: u64,
    rotations: u64,
    status: PathBuf,
    prefix: String,
}

impl Writer {
    fn open(dir: &Path, link: &Path, status: PathBuf, prefix: String) -> std::io::Result<Writer> {
        std::fs::create_dir_all(dir)?;
        if let Some(p) = link.parent() {
            std::fs::create_dir_all(p)?;
        }
        let path = dir.join("0.log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let size = file.metadata()?.len();
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(&path, link)?;
        // Continue the count of a file already written (a restart).
        let lines = std::fs::read_to_string(&status)
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v["lines"].as_u64())
            .unwrap_or(0);
        Ok(Writer {
            dir: dir.to_path_buf(),
            file,
            size,
            lines,
            rotations: 0,
            status,
            prefix,
        })
    }

    fn write(&mut self, n: u64, s: &Spec) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(n as usize * (s.line_bytes + 40));
        let now = rfc3339(std::time::SystemTime::now());
        for _ in 0..n {
            self.lines += 1;
            let start = out.len();
            write!(out, "{now} stdout F seq={} {} ", self.lines, self.prefix)?;
            while out.len() - start + 1 < s.line_bytes {
                out.push(b'x');
            }
            out.push(b'\n');
            if self.size + out.len() as u64 >= s.max_size {
                self.file.write_all(&out)?;
                self.size += out.len() as u64;
                out.clear();
                self.rotate(s)?;
            }
        }
        self.file.write_all(&out)?;
        self.size += out.len() as u64;
        Ok(())
    }

    fn rotate(&mut self, s: &Spec) -> std::io::Result<()> {
        let stamp = {
            let t = rfc3339(std::time::SystemTime::now());
            // 20261130-100000.123456789, unique enough.
            t.replace(['-', ':'], "")
                .replace('T', "-")
                .trim_end_matches('Z')
                .to_string()
        };
        let live = self.dir.join("0.log");
        let rotated = self.dir.join(format!("0.log.{stamp}"));
        if s.copytruncate {
            std::fs::copy(&live, &rotated)?;
            self.file.set_len(0)?;
        } else {
            std::fs::rename(&live, &rotated)?;
            self.file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&live)?;
        }
        self.size = 0;
        self.rotations += 1;
        let mut old: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("0.log."))
            })
            .collect();
        old.sort();
        while old.len() + 1 > s.max_files.max(1) {
            let p = old.remove(0);
            let _ = std::fs::remove_file(p);
        }
        Ok(())
    }

    fn report(&self, done: bool) {
        let v = serde_json::json!({"lines": self.lines, "done": done, "rotations": self.rotations});
        let tmp = self.status.with_extension("tmp");
        if std::fs::write(&tmp, v.to_string()).is_ok() {
            let _ = std::fs::rename(&tmp, &self.status);
        }
    }
}

async fn write_pod(root: PathBuf, pod: Pod, s: Spec, stop: CancellationToken) {
    let (Some(node), Some(ns), Some(name), Some(uid)) = (
        pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        pod.metadata.namespace.clone(),
        pod.metadata.name.clone(),
        pod.metadata.uid.clone(),
    ) else {
        return;
    };
    let log = root.join(&node).join("var/log");
    let status_dir = root.join("_status");
    let _ = std::fs::create_dir_all(&status_dir);
    let mut writers = vec![];
    for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
        let dir = log.join(format!("pods/{ns}_{name}_{uid}/{}", c.name));
        let link = log.join(format!(
            "containers/{name}_{ns}_{}-{}.log",
            c.name,
            container_id(&uid, &c.name)
        ));
        let status = status_dir.join(format!("{ns}_{name}_{}.json", c.name));
        match Writer::open(
            &dir,
            &link,
            status,
            format!("pod={name} ns={ns} container={}", c.name),
        ) {
            Ok(w) => writers.push(w),
            Err(e) => eprintln!("{ns}/{name}/{}: {e}", c.name),
        }
    }
    let started = Instant::now();
    let base: Vec<u64> = writers.iter().map(|w| w.lines).collect();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut last_report = Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let due_total = (started.elapsed().as_secs_f64() * s.rate) as u64;
        let mut all_done = true;
        for (w, b) in writers.iter_mut().zip(&base) {
            let mut due = (b + due_total).saturating_sub(w.lines);
            if let Some(t) = s.total {
                due = due.min(t.saturating_sub(w.lines));
            }
            if due > 0
                && let Err(e) = w.write(due, &s)
            {
                eprintln!("{ns}/{name}: {e}");
            }
            if s.total.is_none_or(|t| w.lines < t) {
                all_done = false;
            }
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            for w in &writers {
                w.report(false);
            }
            last_report = Instant::now();
        }
        if all_done {
            break;
        }
    }
    for w in &writers {
        w.report(true);
    }
}

fn seed_host_logs(root: &Path, node: &str) {
    let log = root.join(node).join("var/log");
    let _ = std::fs::create_dir_all(&log);
    let lines = [
        ("messages", format!("Nov 30 10:00:00 {node} systemd[1]: Started kubelet: The Kubernetes Node Agent.\nNov 30 10:00:01 {node} kubelet[2101]: I1130 10:00:01 server.go:1262] \"Started kubelet\"\n")),
        ("secure", format!("Nov 30 10:00:02 {node} sshd[3200]: Server listening on 0.0.0.0 port 22.\n")),
        ("dmesg", "[    0.000000] Linux version 6.1.0 (builder@eks) #1 SMP\n[    0.000000] Command line: console=ttyS0\n".to_string()),
    ];
    for (f, text) in lines {
        let p = log.join(f);
        if !p.exists() {
            let _ = std::fs::write(p, text);
        }
    }
}

/// A syslog line in every node's `messages` every 10 s.
async fn host_log_ticks(root: PathBuf, nodes: Vec<String>) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        n += 1;
        let mut all = nodes.clone();
        if let Ok(d) = std::fs::read_dir(&root) {
            all.extend(
                d.filter_map(Result::ok)
                    .filter(|e| e.path().join("var/log").is_dir())
                    .map(|e| e.file_name().to_string_lossy().to_string()),
            );
        }
        all.sort();
        all.dedup();
        for node in all.iter().filter(|n| !n.starts_with('_')) {
            seed_host_logs(&root, node);
            let line = format!(
                "Nov 30 10:00:00 {node} kubelet[2101]: I1130 10:00:00 kubelet.go:2345] \"SyncLoop (housekeeping)\" tick={n}\n"
            );
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .append(true)
                .open(root.join(node).join("var/log/messages"))
            {
                let _ = f.write_all(line.as_bytes());
            }
            let kubelet =
                format!("I1130 10:00:00 kubelet.go:2345] \"SyncLoop (housekeeping)\" tick={n}");
            let containerd =
                format!("time=\"2026-11-30T10:00:00Z\" level=info msg=\"housekeeping\" tick={n}");
            let dir = outrigger_e2e::journal::directory(&root.join(node).join("var/log"), node);
            if let Err(e) = outrigger_e2e::journal::append(
                &dir,
                "system.journal",
                node,
                &[
                    outrigger_e2e::journal::Entry {
                        unit: "kubelet.service",
                        message: &kubelet,
                    },
                    outrigger_e2e::journal::Entry {
                        unit: "containerd.service",
                        message: &containerd,
                    },
                ],
            ) {
                eprintln!("journal of {node}: {e}");
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    outrigger_runtime::install_crypto_provider();
    for n in &args.nodes {
        seed_host_logs(&args.root, n);
    }
    tokio::spawn(host_log_ticks(args.root.clone(), args.nodes.clone()));
    let kc = kube::config::Kubeconfig::read_from(&args.kubeconfig)?;
    let client =
        Client::try_from(kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?)?;
    let pods: Api<Pod> = Api::all(client);
    let mut running: HashMap<String, (Spec, CancellationToken)> = HashMap::new();
    let stream = watcher(pods, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    eprintln!("writing container logs under {}", args.root.display());
    while let Some(ev) = stream.next().await {
        let pods: Vec<(Pod, bool)> = match ev {
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => vec![(p, false)],
            Ok(watcher::Event::Delete(p)) => vec![(p, true)],
            Ok(_) => vec![],
            Err(e) => {
                eprintln!("watch: {e}");
                vec![]
            }
        };
        for (pod, deleted) in pods {
            let Some(uid) = pod.metadata.uid.clone() else {
                continue;
            };
            let gone = deleted || pod.metadata.deletion_timestamp.is_some();
            let want = spec(&pod).filter(|_| {
                !gone
                    && pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.node_name.as_ref())
                        .is_some()
                    && pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            });
            match (want, running.get(&uid)) {
                (Some(s), Some((old, _))) if &s == old => {}
                (Some(s), _) => {
                    if let Some((_, t)) = running.remove(&uid) {
                        t.cancel();
                    }
                    let stop = CancellationToken::new();
                    tokio::spawn(write_pod(
                        args.root.clone(),
                        pod.clone(),
                        s.clone(),
                        stop.clone(),
                    ));
                    running.insert(uid, (s, stop));
                }
                (None, Some(_)) if gone => {
                    if let Some((_, t)) = running.remove(&uid) {
                        t.cancel();
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}
