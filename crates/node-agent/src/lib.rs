//! `outrigger node-agent`: Container Insights' log agent, one per node (a
//! DaemonSet in `amazon-cloudwatch`, configured like the quickstart's
//! Fluent Bit: the `fluent-bit-cluster-info` ConfigMap's keys as
//! environment variables).
//!
//! Container logs (`/var/log/containers/*.log`, CRI or Docker JSON, long
//! lines pieced together, multiline entries joined) enriched with their
//! pod's metadata go to `/aws/containerinsights/<cluster>/application`
//! (aws-node and kube-proxy to `/dataplane`), host logs (`messages`,
//! `secure`, `dmesg`) to `/host`, on Fluent Bit's stream names; to
//! CloudWatch Logs or to local files.
//!
//! Nothing is lost and nothing repeats: a line is acknowledged only once
//! its batch is delivered ([`ledger`]), the checkpoint ([`checkpoint`])
//! records each file's delivered lines and the batch in flight, which is
//! read back after a crash; files are held open until delivered, so a
//! rotated or deleted file is read to its end ([`agent`]).

pub mod agent;
pub mod checkpoint;
pub mod held;
pub mod journal;
pub mod ledger;
pub mod metrics;
pub mod perf;
pub mod pods;
pub mod sink;
pub mod tail;

use std::{path::PathBuf, time::Duration};

use outrigger_logs_core::StartRule;
use outrigger_runtime::{Runtime, parse_duration};

/// `On`/`Off` as Fluent Bit's configuration writes them (and
/// `true`/`false`).
fn on_off(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(format!("{s:?}: expected On or Off")),
    }
}

/// Flags; each also read from the quickstart's environment variable.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The cluster's name (the quickstart's `cluster.name`).
    #[arg(long, env = "CLUSTER_NAME")]
    pub cluster_name: String,

    /// This node's name (the quickstart sets HOST_NAME from spec.nodeName).
    #[arg(long, env = "HOST_NAME")]
    pub host_name: String,

    /// Read files present at the first start from their beginning
    /// (`read.head`); otherwise from their end.
    #[arg(long, env = "READ_FROM_HEAD", default_value = "Off", value_parser = on_off, action = clap::ArgAction::Set)]
    pub read_from_head: bool,

    /// Where the node's logs are (`containers/`, `pods/`, `messages`...).
    #[arg(long, default_value = "/var/log")]
    pub log_root: PathBuf,

    /// Where the checkpoint is kept (a hostPath, so it outlives the pod).
    #[arg(long, default_value = "/var/lib/outrigger/node-agent")]
    pub state_dir: PathBuf,

    /// `cloudwatch` (through the AWS SDK: region and credentials from the
    /// environment) or `file:<dir>` (a file per log group).
    #[arg(long, default_value = "cloudwatch")]
    pub sink: String,

    /// Retention of log groups the agent creates.
    #[arg(long)]
    pub retention_in_days: Option<i32>,

    /// Longest an event waits for its batch.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub flush: Duration,

    /// How often the log directories are listed.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub refresh_interval: Duration,

    /// How long a file that moved away is still read.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub rotate_wait: Duration,

    /// What starts a new entry: `not-indented` (a line not starting with a
    /// space or tab, the quickstart's rule), `none` (every line is an
    /// entry), or a regular expression for the first line.
    #[arg(long, default_value = "not-indented")]
    pub multiline_start: String,

    /// Events held in memory, at most (MiB), a request in flight counted
    /// with its copies (twice to CloudWatch: its events, then its body;
    /// three times to a file); files wait on disk beyond it.
    #[arg(long, default_value_t = 5)]
    pub mem_buf_limit_mib: usize,

    /// Add the pod's labels to the `kubernetes` object.
    #[arg(long, default_value = "On", value_parser = on_off, action = clap::ArgAction::Set)]
    pub labels: bool,

    /// How often the performance metrics are collected and sent (the
    /// CloudWatch agent's `metrics_collection_interval`); `0s` turns them
    /// off.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub metrics_collection_interval: Duration,

    /// CA bundle for the kubelet's serving certificate (default: the
    /// service account's CA).
    #[arg(long)]
    pub kubelet_certificate_authority: Option<PathBuf>,

    /// Do not verify the kubelet's serving certificate.
    #[arg(long)]
    pub kubelet_insecure_tls: bool,

    /// The kubelet's port (unless the Node's status gives one).
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,

    /// Namespace of the Lease that elects the agent writing the
    /// cluster-wide events.
    #[arg(long, env = "POD_NAMESPACE", default_value = "amazon-cloudwatch")]
    pub lease_namespace: String,

    /// Time to deliver what is read when told to stop.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub grace: Duration,

    /// The on-disk buffer (MiB): undelivered bytes of log files the kubelet
    /// deleted and the agent still holds (open, and linked in
    /// `--buffer-dir`), at most; past it the oldest
    /// are given up (`outrigger_node_agent_bytes_lost_total{reason="buffer_full"}`).
    #[arg(long, default_value_t = 1024)]
    pub buffer_max_mib: u64,

    /// Where the files being read are hard-linked, so that one the kubelet
    /// deletes outlives a restart of the agent too (on the same mount as
    /// the logs; default `<log-root>/.outrigger-buffer`; `-`: no links, a
    /// deleted file is held by its open descriptor only).
    #[arg(long)]
    pub buffer_dir: Option<PathBuf>,

    /// The systemd journal read for the dataplane group (default
    /// `<log-root>/journal`, as the quickstart's `Path /var/log/journal`;
    /// `-`: not read). Not read either when the directory does not exist
    /// at start.
    #[arg(long)]
    pub journal_directory: Option<PathBuf>,

    /// The units whose journal entries are read (the quickstart's
    /// `Systemd_Filter _SYSTEMD_UNIT=…`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "docker.service,containerd.service,kubelet.service"
    )]
    pub journal_units: Vec<String>,

    /// The journalctl binary that reads the journal.
    #[arg(long, default_value = "journalctl")]
    pub journalctl: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid flags: {0}")]
    Flags(String),
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
}

impl Args {
    pub fn start_rule(&self) -> Result<Option<StartRule>, Error> {
        match self.multiline_start.as_str() {
            "none" => Ok(None),
            "not-indented" => Ok(Some(StartRule::NotIndented)),
            r => regex::Regex::new(r)
                .map(|r| Some(StartRule::Regex(r)))
                .map_err(|e| Error::Flags(format!("--multiline-start: {e}"))),
        }
    }

    pub fn config(&self) -> Result<agent::Config, Error> {
        if self.cluster_name.is_empty() || self.host_name.is_empty() {
            return Err(Error::Flags(
                "--cluster-name and --host-name (CLUSTER_NAME, HOST_NAME) must not be empty".into(),
            ));
        }
        Ok(agent::Config {
            cluster: self.cluster_name.clone(),
            host: self.host_name.clone(),
            log_root: self.log_root.clone(),
            read_from_head: self.read_from_head,
            multiline: self.start_rule()?,
            flush: self.flush,
            refresh: self.refresh_interval,
            rotate_wait: self.rotate_wait,
            mem_buf_limit: self.mem_buf_limit_mib << 20,
            metadata_wait: Duration::from_secs(10),
            grace: self.grace,
            buffer_max: self.buffer_max_mib << 20,
            buffer_dir: match &self.buffer_dir {
                Some(d) if d.as_os_str() == "-" => None,
                Some(d) => Some(d.clone()),
                None => Some(self.log_root.join(".outrigger-buffer")),
            },
            journal: self.journal(),
            aws_fields: None,
        })
    }

    /// The journal's configuration, if it is read.
    fn journal(&self) -> Option<agent::JournalConfig> {
        let directory = match &self.journal_directory {
            Some(d) if d.as_os_str() == "-" => return None,
            Some(d) => d.clone(),
            None => self.log_root.join("journal"),
        };
        if !directory.is_dir() {
            tracing::info!(directory = %directory.display(), "no journal directory: the journal is not read");
            return None;
        }
        Some(agent::JournalConfig {
            directory,
            units: self.journal_units.clone(),
            journalctl: self.journalctl.clone(),
        })
    }
}

/// Runs the agent until the runtime's shutdown.
pub async fn run(rt: Runtime, args: Args) -> Result<(), Error> {
    let cfg = args.config()?;
    let m = metrics::Metrics::default();
    rt.admin.with_registry(|r| {
        m.register(r);
        r.register_collector(Box::new(outrigger_aws::AllCalls));
    });
    let sink = match args.sink.strip_prefix("file:") {
        Some(dir) => sink::Sink::File { dir: dir.into() },
        None if args.sink == "cloudwatch" => sink::Sink::CloudWatch {
            logs: outrigger_aws_logs::Logs::new().await,
            retention_days: args.retention_in_days,
        },
        None => {
            return Err(Error::Flags(format!(
                "--sink {:?}: expected cloudwatch or file:<dir>",
                args.sink
            )));
        }
    };
    let ready = rt.admin.ready.check("pods-synced", "pods not listed yet");
    let pods = pods::Pods::watch(
        rt.client.clone(),
        &cfg.host,
        args.labels,
        rt.shutdown.clone(),
    );
    pods.ready().await;
    ready.ok();
    if !args.metrics_collection_interval.is_zero()
        && let Some(pods_store) = pods.store()
    {
        start_perf(&rt, &args, &cfg, pods_store, sink.clone(), m.clone()).await?;
    }
    let mut cfg = cfg;
    cfg.aws_fields = aws_fields(&rt.client, &cfg.host, &rt.shutdown).await;
    let store = checkpoint::Store::new(&args.state_dir)?;
    tracing::info!(cluster = %cfg.cluster, host = %cfg.host, sink = %sink.describe(), log_root = %cfg.log_root.display(), "node agent starting");
    let agent = agent::Agent::new(cfg, sink, pods, m, store)?;
    agent.run(rt.shutdown.clone()).await?;
    Ok(())
}

/// The quickstart's `aws` filter's fields for host and dataplane records,
/// from the node's Node (listed by name: the agent may list Nodes, not get
/// them); tried for 30 s, then the records go without them, as Fluent Bit's
/// do when the instance metadata cannot be read.
async fn aws_fields(
    client: &kube::Client,
    host: &str,
    stop: &tokio_util::sync::CancellationToken,
) -> Option<String> {
    use k8s_openapi::api::core::v1::Node;
    let nodes: kube::Api<Node> = kube::Api::all(client.clone());
    let lp = kube::api::ListParams::default().fields(&format!("metadata.name={host}"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match nodes.list(&lp).await {
            Ok(list) => match list.items.first() {
                Some(n) => return perf::node_aws_fields(n),
                None => {
                    tracing::warn!(node = %host, "no Node of this name: host and dataplane records go without az and ec2_instance_id")
                }
            },
            Err(e) => tracing::warn!(node = %host, error = %e, "listing the node failed"),
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(node = %host, "host and dataplane records go without az and ec2_instance_id");
            return None;
        }
        tokio::select! {
            _ = stop.cancelled() => return None,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// The performance half: the node's events every interval, and the
/// cluster's from the agent holding the Lease.
async fn start_perf(
    rt: &Runtime,
    args: &Args,
    cfg: &agent::Config,
    pods: kube::runtime::reflector::Store<k8s_openapi::api::core::v1::Pod>,
    sink: sink::Sink,
    m: metrics::Metrics,
) -> Result<(), Error> {
    let tls = outrigger_runtime::tls::kubelet_client_config(
        args.kubelet_certificate_authority.as_deref(),
        args.kubelet_insecure_tls,
        None,
    )
    .map_err(|e| Error::Flags(format!("kubelet TLS: {e}")))?;
    let bearer_token =
        std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/token")
            .ok()
            .map(|t| t.trim().to_string());
    let pcfg = perf::PerfConfig {
        cluster: cfg.cluster.clone(),
        host: cfg.host.clone(),
        interval: args.metrics_collection_interval,
        kubelet_port: args.kubelet_port,
        use_node_status_port: true,
        bearer_token,
        timeout: Duration::from_secs(10),
        lease_namespace: args.lease_namespace.clone(),
    };
    let elector = outrigger_runtime::leader::Elector::start(
        rt.client.clone(),
        outrigger_runtime::leader::LeaderConfig {
            lease_name: "outrigger-node-agent-cluster-metrics".into(),
            namespace: pcfg.lease_namespace.clone(),
            identity: cfg.host.clone(),
            lease_duration: Duration::from_secs(15),
            renew_grace: Duration::from_secs(5),
        },
    )
    .await
    .map_err(|e| Error::Flags(format!("cluster metrics lease: {e}")))?;
    let leading = elector.subscribe();
    let agent = perf::PerfAgent::new(
        rt.client.clone(),
        pcfg,
        tls,
        pods,
        sink,
        m,
        rt.shutdown.clone(),
    );
    let (client, stop) = (rt.client.clone(), rt.shutdown.clone());
    tokio::spawn(async move {
        agent.run(client, leading, stop.clone()).await;
        elector.release().await;
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn on_off_flags_take_fluent_bits_values() {
        let c = Cli::try_parse_from([
            "node-agent",
            "--cluster-name=demo",
            "--host-name=n1",
            "--read-from-head",
            "On",
            "--labels",
            "off",
        ])
        .expect("parses");
        assert!(c.args.read_from_head);
        assert!(!c.args.labels);
        let c = Cli::try_parse_from(["node-agent", "--cluster-name=demo", "--host-name=n1"])
            .expect("parses");
        assert!(!c.args.read_from_head, "Off by default, as the quickstart");
        assert!(c.args.labels);
        assert!(
            Cli::try_parse_from([
                "node-agent",
                "--cluster-name=demo",
                "--host-name=n1",
                "--read-from-head",
                "maybe"
            ])
            .is_err()
        );
    }
}
