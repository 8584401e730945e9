//! Container Insights' log agent in the local environment: `make up` runs
//! `outrigger node-agent` for each of the node group's three nodes (a
//! process per node, on the node's directory), the environment writes the
//! log files of annotated pods as the kubelet would, and moto serves
//! CloudWatch Logs. Checked with the AWS CLI and boto3.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, Result, bail};
use outrigger_e2e::{TestEnv, TestNamespace, env, eventually, moto::LogsFaults};
use serde_json::Value;

/// One heavy test at a time: they share the three agents and moto.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const APPLICATION: &str = "/aws/containerinsights/demo/application";

/// The node group's first three nodes, an agent on each: the environment
/// runs them for the nodes of `make up`, and the autoscaler tests replace
/// nodes, so the agents are brought to the current ones first.
fn agent_nodes(env: &TestEnv) -> Result<Vec<String>> {
    node_agents_up(env)?;
    current_agent_nodes(env)
}

/// `components.sh node-agents`: an agent on each of the node group's first
/// three nodes, (re)started where needed.
fn node_agents_up(env: &TestEnv) -> Result<()> {
    let script = env.repo.join("testenv/scripts/components.sh");
    env.run("bash", &[script.to_str().context("path")?, "node-agents"])?;
    Ok(())
}

/// The node group's first three nodes by name (as components.sh picks them).
fn current_agent_nodes(env: &TestEnv) -> Result<Vec<String>> {
    let out = env.run(
        "kubectl",
        &[
            "get",
            "nodes",
            "-l",
            "eks.amazonaws.com/nodegroup=ng-1",
            "--sort-by=.metadata.name",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}",
        ],
    )?;
    let nodes: Vec<String> = out.lines().take(3).map(str::to_string).collect();
    if nodes.len() < 3 {
        bail!("expected three node-group nodes, found {nodes:?}");
    }
    Ok(nodes)
}

/// A pod bound to `node` whose log the environment writes.
fn logging_pod(name: &str, ns: &str, node: &str, annotations: &[(&str, String)]) -> String {
    let ann: String = annotations
        .iter()
        .map(|(k, v)| format!("    testenv.outrigger.dev/{k}: \"{v}\"\n"))
        .collect();
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
  labels: {{app: logtest, tier: e2e}}
  annotations:
{ann}spec:
  nodeName: {node}
  tolerations: [{{operator: Exists}}]
  containers:
  - name: app
    image: public.ecr.aws/docker/library/busybox:1.36
"
    )
}

/// The writer's progress for a pod's container (`{"lines", "done"}`).
fn written(env: &TestEnv, ns: &str, pod: &str) -> Result<Value> {
    let p = env.state.join(format!("nodes/_status/{ns}_{pod}_app.json"));
    let text = std::fs::read_to_string(&p).with_context(|| format!("{}", p.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn stream_prefix(node: &str, ns: &str, pod: &str) -> String {
    format!("{node}-application.var.log.containers.{pod}_{ns}_app-")
}

/// testenv/aws/count_seq.py for these stream prefixes.
fn count(env: &TestEnv, prefixes: &[String]) -> Result<BTreeMap<String, Value>> {
    let script = env.repo.join("testenv/aws/count_seq.py");
    let mut args = vec![
        script.to_str().context("path")?.to_string(),
        "--group".into(),
        APPLICATION.into(),
    ];
    for p in prefixes {
        args.push("--prefix".into());
        args.push(p.clone());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = env.run("testenv-python", &args)?;
    Ok(serde_json::from_str(&out)?)
}

/// The records of the streams starting with `prefix`, read stream by
/// stream (testenv/aws/count_seq.py --messages: moto's filter-log-events
/// ignores `logStreamNamePrefix` and returns the whole group).
fn records(env: &TestEnv, prefix: &str) -> Result<Vec<Value>> {
    group_records(env, APPLICATION, prefix)
}

fn group_records(env: &TestEnv, group: &str, prefix: &str) -> Result<Vec<Value>> {
    let script = env.repo.join("testenv/aws/count_seq.py");
    let out = env.run(
        "testenv-python",
        &[
            script.to_str().context("path")?,
            "--group",
            group,
            "--prefix",
            prefix,
            "--messages",
        ],
    )?;
    let mut v: BTreeMap<String, Vec<String>> = serde_json::from_str(&out)?;
    v.remove(prefix)
        .unwrap_or_default()
        .iter()
        .map(|m| serde_json::from_str(m).context("a record that is not JSON"))
        .collect()
}

fn agent_metric(port: u16, name: &str) -> f64 {
    let out = std::process::Command::new("curl")
        .args(["-s", &format!("http://127.0.0.1:{port}/metrics")])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
#[ignore = "needs the local environment (make up)"]
async fn container_logs_reach_cloudwatch_with_their_pods_metadata() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "node-agent-logs").await?;
    let node = agent_nodes(env)?.remove(0);
    env.apply(&logging_pod(
        "logger",
        &ns.name,
        &node,
        &[
            ("log-lines-per-second", "100".into()),
            ("log-lines-total", "300".into()),
        ],
    ))?;
    eventually("the writer to finish", Duration::from_secs(60), || async {
        Ok(written(env, &ns.name, "logger")
            .ok()
            .filter(|v| v["done"] == true)
            .map(|_| ()))
    })
    .await?;
    // The quickstart's groups (performance comes with the metrics).
    eventually("the log groups", Duration::from_secs(30), || async {
        let out = env.aws(&[
            "logs",
            "describe-log-groups",
            "--log-group-name-prefix",
            "/aws/containerinsights/demo/",
            "--query",
            "logGroups[].logGroupName",
            "--output",
            "json",
        ])?;
        let groups: Vec<String> = serde_json::from_str(&out)?;
        let want = ["application", "host", "dataplane"]
            .map(|g| format!("/aws/containerinsights/demo/{g}"));
        Ok(want.iter().all(|w| groups.contains(w)).then_some(()))
    })
    .await?;
    let prefix = stream_prefix(&node, &ns.name, "logger");
    let events: Vec<Value> = eventually("the pod's 300 lines", Duration::from_secs(60), || async {
        let r = records(env, &prefix)?;
        Ok((r.len() >= 300).then_some(r))
    })
    .await?;
    let uid = env.run(
        "kubectl",
        &[
            "get",
            "pod",
            "logger",
            "-n",
            &ns.name,
            "-o",
            "jsonpath={.metadata.uid}",
        ],
    )?;
    let mut seqs = vec![];
    for r in &events {
        let k = &r["kubernetes"];
        assert_eq!(k["pod_name"], "logger", "{r}");
        assert_eq!(k["namespace_name"], ns.name.as_str(), "{r}");
        assert_eq!(k["labels"]["app"], "logtest", "{r}");
        assert_eq!(k["container_name"], "app", "{r}");
        assert_eq!(k["host"], node.as_str(), "{r}");
        assert_eq!(k["pod_id"], uid.as_str(), "{r}");
        assert_eq!(
            k["container_image"], "public.ecr.aws/docker/library/busybox:1.36",
            "{r}"
        );
        assert_eq!(r["stream"], "stdout");
        assert_eq!(r["_p"], "F");
        let log = r["log"].as_str().context("log")?;
        let seq: u64 = log
            .strip_prefix("seq=")
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("no seq in {log:?}"))?;
        seqs.push(seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=300).collect::<Vec<u64>>(), "each line once");
    // The stream's name is Fluent Bit's.
    let streams = env.aws(&[
        "logs",
        "describe-log-streams",
        "--log-group-name",
        APPLICATION,
        "--log-stream-name-prefix",
        &prefix,
        "--query",
        "logStreams[].logStreamName",
        "--output",
        "text",
    ])?;
    assert!(streams.trim().ends_with(".log"), "{streams}");
    ns.cleanup().await
}

/// The quickstart's dataplane pipeline for the node's systemd journal:
/// the kubelet's and containerd's entries (not other units') reach
/// `/dataplane` once each, a stream per unit
/// (`<node>-dataplane.systemd.<unit>`), as the record its `modify` filter
/// leaves (`hostname`, `systemd_unit`, `message`) with its `aws` filter's
/// `az` and `ec2_instance_id` (from the Node, where the filter asks the
/// instance metadata).
#[tokio::test]
#[ignore = "needs the local environment (make up)"]
async fn journal_entries_reach_the_dataplane_group_once_per_unit() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = env();
    let node = agent_nodes(env)?.remove(0);
    let dir = outrigger_e2e::journal::directory(
        &env.state.join("nodes").join(&node).join("var/log"),
        &node,
    );
    let tag = format!(
        "e2e{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    );
    let units = ["kubelet.service", "containerd.service", "sshd.service"];
    let messages: Vec<(usize, String)> = (1..=60)
        .map(|i| (i % 3, format!("{tag} seq={i} \"quoted\" \\ done")))
        .collect();
    let entries: Vec<outrigger_e2e::journal::Entry<'_>> = messages
        .iter()
        .map(|(u, m)| outrigger_e2e::journal::Entry {
            unit: units[*u],
            message: m,
        })
        .collect();
    outrigger_e2e::journal::append(&dir, &format!("{tag}.journal"), &node, &entries)?;
    let provider = env.run(
        "kubectl",
        &["get", "node", &node, "-o", "jsonpath={.spec.providerID}"],
    )?;
    // aws:///<zone>/<instance ID>
    let (zone, instance) = provider
        .trim()
        .trim_start_matches("aws:///")
        .split_once('/')
        .with_context(|| format!("provider ID {provider:?}"))?;
    let dataplane = "/aws/containerinsights/demo/dataplane";
    for (u, unit) in units.iter().enumerate().take(2) {
        let stream = format!("{node}-dataplane.systemd.{unit}");
        let want: Vec<u64> = (1..=60u64).filter(|i| *i as usize % 3 == u).collect();
        let got: Vec<Value> = eventually(
            &format!("{unit}'s {} entries", want.len()),
            Duration::from_secs(60),
            || async {
                let r: Vec<Value> = group_records(env, dataplane, &stream)?
                    .into_iter()
                    .filter(|r| r["message"].as_str().is_some_and(|m| m.starts_with(&tag)))
                    .collect();
                Ok((r.len() >= want.len()).then_some(r))
            },
        )
        .await?;
        let mut seqs = vec![];
        for r in &got {
            assert_eq!(r["hostname"], node.as_str(), "{r}");
            assert_eq!(r["systemd_unit"], *unit, "{r}");
            assert_eq!(r["az"], zone, "{r}");
            assert_eq!(r["ec2_instance_id"], instance, "{r}");
            assert_eq!(r.as_object().map(|o| o.len()), Some(5), "{r}");
            let m = r["message"].as_str().context("message")?;
            assert!(m.ends_with(" \"quoted\" \\ done"), "{m:?}");
            let seq: u64 = m
                .split("seq=")
                .nth(1)
                .and_then(|s| s.split(' ').next())
                .and_then(|n| n.parse().ok())
                .with_context(|| format!("no seq in {m:?}"))?;
            seqs.push(seq);
        }
        seqs.sort_unstable();
        assert_eq!(seqs, want, "{unit}: each entry once");
    }
    // The host group's records carry the aws filter's fields too (the
    // environment appends a syslog line to every node's `messages` every
    // 10 s).
    let host_record = eventually(
        "a host record with az and ec2_instance_id",
        Duration::from_secs(40),
        || async {
            let r = group_records(
                env,
                "/aws/containerinsights/demo/host",
                &format!("{node}.host.messages"),
            )?;
            Ok(r.into_iter().rev().find(|r| r.get("az").is_some()))
        },
    )
    .await?;
    assert_eq!(host_record["az"], zone, "{host_record}");
    assert_eq!(host_record["ec2_instance_id"], instance, "{host_record}");
    assert!(host_record["ident"].is_string(), "{host_record}");
    // A unit the quickstart does not ship has no stream.
    let sshd = env.aws(&[
        "logs",
        "describe-log-streams",
        "--log-group-name",
        dataplane,
        "--log-stream-name-prefix",
        &format!("{node}-dataplane.systemd.sshd"),
        "--query",
        "logStreams[].logStreamName",
        "--output",
        "text",
    ])?;
    assert_eq!(sshd.trim(), "", "sshd.service's entries were shipped");
    Ok(())
}

/// The no-loss run: 3 nodes x 2 pods at a combined ~10 MB/s for a
/// minute, files rotated (rename and copytruncate), CloudWatch throttling
/// and 5xx for part of it, one agent killed with SIGKILL and restarted:
/// every sequence number arrives once.
#[tokio::test]
#[ignore = "needs the local environment (make up)"]
async fn no_loss_no_repeat_at_10_mb_per_s_with_rotation_throttling_and_a_kill() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "node-agent-load").await?;
    let nodes = agent_nodes(env)?;
    const RATE: u64 = 1_700; // lines/s a pod, of 1,000 bytes: 6 x 1.7 MB/s
    const SECONDS: u64 = 60;
    let mut pods = vec![];
    for (i, node) in nodes.iter().enumerate() {
        for j in 0..2 {
            let name = format!("load-{i}-{j}");
            let rotation = if j == 0 { "rename" } else { "copytruncate" };
            env.apply(&logging_pod(
                &name,
                &ns.name,
                node,
                &[
                    ("log-lines-per-second", RATE.to_string()),
                    ("log-line-bytes", "1000".into()),
                    ("log-lines-total", (RATE * SECONDS).to_string()),
                    ("log-max-size", (8u64 << 20).to_string()),
                    ("log-max-files", "8".into()),
                    ("log-rotation", rotation.into()),
                ],
            ))?;
            pods.push((name, node.clone()));
        }
    }
    eventually("the writers to start", Duration::from_secs(60), || async {
        Ok(pods
            .iter()
            .all(|(p, _)| written(env, &ns.name, p).is_ok())
            .then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let faults = LogsFaults::inject(
        env,
        serde_json::json!({"operation": "PutLogEvents", "throttle": 0.3, "serverError": 0.05}),
    )?;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let injected = faults.injected()?;
    drop(faults);
    // SIGKILL node 1's agent while it is behind after the throttling, then
    // bring it back as the environment does. Writing goes on meanwhile; the
    // files the kubelet deletes in between are held by the agent's hard
    // links (`--buffer-dir`), which the restart reads from.
    let backlog_at_kill = agent_metric(10361, "outrigger_node_agent_buffer_bytes");
    let pid = std::fs::read_to_string(env.state.join("pids/outrigger-node-agent-1.pid"))?;
    let pid = pid.trim().to_string();
    env.run("kill", &["-KILL", &pid])?;
    eventually("the agent to die", Duration::from_secs(10), || async {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next();
        Ok(matches!(state, None | Some("Z")).then_some(()))
    })
    .await?;
    node_agents_up(env)?;
    eventually(
        "the writers to finish",
        Duration::from_secs(120),
        || async {
            Ok(pods
                .iter()
                .all(|(p, _)| written(env, &ns.name, p).is_ok_and(|v| v["done"] == true))
                .then_some(()))
        },
    )
    .await?;
    let rotations: u64 = pods
        .iter()
        .filter_map(|(p, _)| written(env, &ns.name, p).ok()?["rotations"].as_u64())
        .sum();
    let prefixes: Vec<String> = pods
        .iter()
        .map(|(p, node)| stream_prefix(node, &ns.name, p))
        .collect();
    let want = RATE * SECONDS;
    let counts = eventually("every line delivered", Duration::from_secs(180), || async {
        let c = count(env, &prefixes)?;
        let all = c.values().all(|v| v["distinct"].as_u64() == Some(want));
        Ok(all.then_some(c))
    })
    .await
    .or_else(|e| {
        count(env, &prefixes)
            .map(|c| {
                eprintln!("counts: {c:#?}");
                c
            })
            .and(Err(e))
    })?;
    for (prefix, c) in &counts {
        assert_eq!(c["missing"], 0, "{prefix}: {c}");
        assert_eq!(c["repeated"], 0, "{prefix}: {c}");
        assert_eq!(c["events"].as_u64(), Some(want), "{prefix}: {c}");
    }
    // The faults and rotations really happened.
    assert!(
        injected["throttle"].as_u64().unwrap_or(0) > 0,
        "no throttling injected: {injected}"
    );
    assert!(rotations >= 6, "rotations: {rotations}");
    let retried: f64 = (0..3)
        .map(|i| agent_metric(10360 + i, "outrigger_node_agent_retries_total"))
        .sum();
    assert!(retried > 0.0, "the agents retried nothing");
    let dropped: f64 = (0..3)
        .map(|i| agent_metric(10360 + i, "outrigger_node_agent_events_dropped_total"))
        .sum();
    assert_eq!(dropped, 0.0, "events dropped");
    eprintln!(
        "{} lines of 1,000 bytes in {SECONDS} s over 6 pods; {rotations} rotations; faults {injected}; agent retries {retried}; agent 1 killed {:.1} MiB behind",
        want * 6,
        backlog_at_kill / 1048576.0
    );
    ns.cleanup().await
}

/// The newest events of a node's performance stream.
fn performance_events(env: &TestEnv, node: &str) -> Result<Vec<Value>> {
    let out = env.aws(&[
        "logs",
        "get-log-events",
        "--log-group-name",
        "/aws/containerinsights/demo/performance",
        "--log-stream-name",
        node,
        "--no-start-from-head",
        "--limit",
        "400",
        "--query",
        "events[].message",
        "--output",
        "json",
    ])?;
    let messages: Vec<String> = serde_json::from_str(&out)?;
    messages
        .iter()
        .map(|m| serde_json::from_str(m).context("an event that is not JSON"))
        .collect()
}

/// `kubectl top node`'s CPU (millicores) and memory (MiB) of a node.
fn top_node(env: &TestEnv, node: &str) -> Result<(f64, f64)> {
    let out = env.run("kubectl", &["top", "node", node, "--no-headers"])?;
    let f: Vec<&str> = out.split_whitespace().collect();
    let cpu = f
        .get(1)
        .and_then(|c| c.strip_suffix('m'))
        .context("cpu")?
        .parse()?;
    let mem = f
        .get(3)
        .and_then(|m| m.strip_suffix("Mi"))
        .context("memory")?
        .parse()?;
    Ok((cpu, mem))
}

#[tokio::test]
#[ignore = "needs the local environment (make up)"]
async fn performance_events_are_valid_emf_and_agree_with_kubectl_top() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "node-agent-perf").await?;
    let node = agent_nodes(env)?.remove(0);
    env.apply(&format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: busy
  namespace: {ns}
  labels: {{app: busy}}
  annotations: {{kwok.x-k8s.io/usage-cpu: 150m, kwok.x-k8s.io/usage-memory: 300Mi}}
spec:
  nodeName: {node}
  tolerations: [{{operator: Exists}}]
  containers:
  - name: app
    image: public.ecr.aws/docker/library/busybox:1.36
    resources:
      requests: {{cpu: 200m, memory: 256Mi}}
      limits: {{cpu: 400m, memory: 512Mi}}
---
apiVersion: v1
kind: Service
metadata: {{name: busy, namespace: {ns}}}
spec:
  selector: {{app: busy}}
  ports: [{{port: 80}}]
",
        ns = ns.name
    ))?;
    // A pod event for it, with its Service.
    let pod = eventually("the pod's event", Duration::from_secs(90), || async {
        Ok(performance_events(env, &node)?.into_iter().find(|e| {
            e["Type"] == "Pod"
                && e["PodName"] == "busy"
                && e["Namespace"] == ns.name.as_str()
                && e.get("pod_cpu_usage_total").is_some()
        }))
    })
    .await?;
    let events = performance_events(env, &node)?;
    for e in &events {
        let text = e.to_string();
        assert_eq!(
            outrigger_metrics_core::insights::emf_problem(&text),
            None,
            "{text}"
        );
    }
    let types: std::collections::BTreeSet<&str> =
        events.iter().filter_map(|e| e["Type"].as_str()).collect();
    for t in ["Node", "NodeFS", "NodeNet", "Pod", "PodNet", "Container"] {
        assert!(types.contains(t), "no {t} event in {types:?}");
    }
    // The pod: 150m of 2 cores; 200m requested; over its 400m limit.
    let cap_m = 2000.0;
    let cpu = pod["pod_cpu_usage_total"].as_f64().context("cpu")?;
    assert!((cpu - 150.0).abs() <= 2.0, "pod cpu {cpu}");
    let reserved = pod["pod_cpu_reserved_capacity"]
        .as_f64()
        .context("reserved")?;
    assert!(
        (reserved - 200.0 / cap_m * 100.0).abs() < 0.01,
        "{reserved}"
    );
    let over = pod["pod_cpu_utilization_over_pod_limit"]
        .as_f64()
        .context("over")?;
    assert!((over - 150.0 / 400.0 * 100.0).abs() < 1.0, "{over}");
    assert_eq!(pod["pod_memory_working_set"], 300.0 * 1024.0 * 1024.0);
    assert_eq!(pod["Service"], "busy");
    assert!(
        pod["pod_network_rx_bytes"]
            .as_f64()
            .is_some_and(|r| (r - 2048.0).abs() < 100.0),
        "{pod}"
    );
    let dims = &pod["_aws"]["CloudWatchMetrics"][0]["Dimensions"];
    assert!(
        dims.as_array()
            .is_some_and(|d| d.contains(&serde_json::json!([
                "ClusterName",
                "Namespace",
                "Service"
            ]))),
        "{dims}"
    );
    // The node agrees with kubectl top (metrics-server) within rounding.
    eventually(
        "node metrics agreeing with kubectl top",
        Duration::from_secs(60),
        || async {
            let (top_cpu, top_mem) = top_node(env, &node)?;
            let events = performance_events(env, &node)?;
            let Some(n) = events.iter().rev().find(|e| e["Type"] == "Node") else {
                return Ok(None);
            };
            let cpu = n["node_cpu_usage_total"].as_f64().context("node cpu")?;
            let mem = n["node_memory_working_set"]
                .as_f64()
                .context("node memory")?
                / 1024.0
                / 1024.0;
            Ok(((cpu - top_cpu).abs() <= 2.0 && (mem - top_mem).abs() <= 1.0).then_some(()))
        },
    )
    .await?;
    // The cluster's events, from the elected agent: the node count.
    eventually(
        "cluster_node_count equal to the node count",
        Duration::from_secs(60),
        || async {
            let nodes = env
                .run("kubectl", &["get", "nodes", "--no-headers"])?
                .lines()
                .count();
            let mut counts = vec![];
            for n in current_agent_nodes(env)? {
                for e in performance_events(env, &n)? {
                    if e["Type"] == "Cluster" {
                        counts.push(e["cluster_node_count"].as_f64().unwrap_or(-1.0));
                    }
                }
            }
            Ok((counts.last() == Some(&(nodes as f64))).then_some(()))
        },
    )
    .await?;
    let groups = env.aws(&[
        "logs",
        "describe-log-groups",
        "--log-group-name-prefix",
        "/aws/containerinsights/demo/performance",
        "--query",
        "logGroups[].logGroupName",
        "--output",
        "text",
    ])?;
    assert!(groups.contains("/aws/containerinsights/demo/performance"));
    ns.cleanup().await
}

/// Lines no runtime should write still arrive (or are counted): a line
/// without the CRI prefix, invalid UTF-8, a 1 MiB line; the agent stays
/// up.
#[tokio::test]
#[ignore = "needs the local environment (make up)"]
async fn malformed_lines_are_delivered_and_counted_never_a_crash() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "node-agent-bad").await?;
    let node = agent_nodes(env)?.remove(0);
    // A pod the environment writes nothing for: its file is written here.
    env.apply(&logging_pod(
        "odd",
        &ns.name,
        &node,
        &[("unused", "1".into())],
    ))?;
    let uid = eventually("the pod", Duration::from_secs(30), || async {
        let uid = env.run(
            "kubectl",
            &[
                "get",
                "pod",
                "odd",
                "-n",
                &ns.name,
                "-o",
                "jsonpath={.metadata.uid}",
            ],
        )?;
        Ok((!uid.is_empty()).then_some(uid))
    })
    .await?;
    let unparsed_before = agent_metric(10360, "outrigger_node_agent_lines_unparsed_total");
    let log = env.state.join(format!("nodes/{node}/var/log"));
    let dir = log.join(format!("pods/{}_odd_{uid}/app", ns.name));
    std::fs::create_dir_all(&dir)?;
    let mut content: Vec<u8> = b"no CRI prefix at all\n".to_vec();
    content.extend_from_slice(b"2026-11-30T10:00:00.000000001Z stdout F bad \xff\xfe utf8\n");
    content.extend_from_slice(b"2026-11-30T10:00:00.000000002Z stdout F ");
    content.extend(std::iter::repeat_n(b'y', 1 << 20));
    content.push(b'\n');
    content.extend_from_slice(b"2026-11-30T10:00:00.000000003Z stdout F the end\n");
    std::fs::write(dir.join("0.log"), &content)?;
    let id = "ab".repeat(32);
    std::os::unix::fs::symlink(
        dir.join("0.log"),
        log.join(format!("containers/odd_{}_app-{id}.log", ns.name)),
    )?;
    let prefix = stream_prefix(&node, &ns.name, "odd");
    let logs: Vec<String> = eventually("the odd lines", Duration::from_secs(60), || async {
        let logs: Vec<String> = records(env, &prefix)?
            .iter()
            .filter_map(|r| r["log"].as_str().map(str::to_string))
            .collect();
        Ok(logs.iter().any(|l| l == "the end").then_some(logs))
    })
    .await?;
    assert!(
        logs.iter().any(|l| l == "no CRI prefix at all"),
        "{:?}",
        &logs[..2]
    );
    assert!(
        logs.iter().any(|l| l == "bad \u{fffd}\u{fffd} utf8"),
        "invalid UTF-8 replaced"
    );
    let pieces: Vec<usize> = logs
        .iter()
        .filter(|l| l.starts_with('y'))
        .map(|l| l.len())
        .collect();
    let others: Vec<&String> = logs.iter().filter(|l| !l.starts_with('y')).collect();
    assert_eq!(
        pieces.iter().sum::<usize>(),
        1 << 20,
        "the 1 MiB line arrives whole, in pieces: {pieces:?}; other lines: {others:?}"
    );
    assert!(logs.iter().filter(|l| l.starts_with('y')).count() > 1);
    let unparsed = agent_metric(10360, "outrigger_node_agent_lines_unparsed_total");
    assert!(unparsed > unparsed_before, "the bad line is counted");
    let (status, _) = outrigger_e2e::http_get(10360, "/healthz").await?;
    assert_eq!(status, 200, "the agent is up");
    ns.cleanup().await
}
