//! The load balancer controller on the local environment, moto as AWS: the
//! walkthrough's nginx.yaml (Service -> NLB) and game-2048.yaml (Ingress ->
//! ALB) unchanged, an IngressGroup across two namespaces, targets following
//! a scale, and an invalid annotation that creates nothing.

use std::{collections::BTreeSet, time::Duration};

use anyhow::{Context, Result, bail, ensure};
use outrigger_e2e::{
    TestEnv, TestNamespace, env, eventually,
    lb::{
        hostname, listeners, load_balancer_attribute, load_balancer_by_dns, rules, tagged,
        target_groups_of, targets,
    },
};
use serde_json::Value;

/// The tests share moto's ELBv2 and check that nothing of theirs is left:
/// one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn kubectl_json(env: &TestEnv, args: &[&str]) -> Result<Value> {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    let out = env.run("kubectl", &a)?;
    serde_json::from_str(&out).context("parsing kubectl's json")
}

fn pod_ips(env: &TestEnv, ns: &str, selector: &str) -> Result<BTreeSet<String>> {
    let v = kubectl_json(env, &["-n", ns, "get", "pods", "-l", selector])?;
    Ok(v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["status"]["phase"] == "Running")
        .filter_map(|p| p["status"]["podIP"].as_str().map(str::to_string))
        .collect())
}

async fn address(env: &TestEnv, ns: &str, kind: &str, name: &str) -> Result<String> {
    eventually(
        &format!("{kind} {ns}/{name} to get an address"),
        Duration::from_secs(30),
        || async {
            Ok(hostname(&kubectl_json(
                env,
                &["-n", ns, "get", kind, name],
            )?))
        },
    )
    .await
}

async fn nothing_tagged(env: &TestEnv, key: &str, value: &str) -> Result<()> {
    nothing_tagged_within(env, key, value, Duration::from_secs(30)).await
}

async fn nothing_tagged_within(
    env: &TestEnv,
    key: &str,
    value: &str,
    within: Duration,
) -> Result<()> {
    eventually(
        &format!("no AWS resource tagged {key}={value}"),
        within,
        || async {
            let left = tagged(env, key, value)?;
            Ok(left.is_empty().then_some(()))
        },
    )
    .await
}

/// Waits for `n` running pods matching `selector`, then for exactly their
/// IPs to be the target group's targets (within `within` of the pods
/// running).
async fn registered(
    env: &TestEnv,
    ns: &str,
    selector: &str,
    n: usize,
    tg_arn: &str,
    within: Duration,
) -> Result<()> {
    let want = eventually(
        &format!("{n} running pods ({selector})"),
        Duration::from_secs(30),
        || async {
            let ips = pod_ips(env, ns, selector)?;
            Ok((ips.len() == n).then_some(ips))
        },
    )
    .await?;
    eventually(&format!("the {n} pod IPs registered"), within, || async {
        Ok((targets(env, tg_arn)? == want).then_some(()))
    })
    .await
}

fn example(env: &TestEnv, file: &str) -> String {
    env.repo
        .join("deploy/examples")
        .join(file)
        .display()
        .to_string()
}

/// nginx.yaml: an internet-facing NLB, one TCP:80 listener, an ip target
/// group on port 80 holding exactly the three pod IPs, cross-zone on; a
/// scale to 5 is followed within 10 s; deleting the file removes
/// everything tagged for the Service.
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn seed_nginx_service_becomes_an_nlb() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "nlb").await?;
    let file = example(env, "nginx.yaml");
    env.run("kubectl", &["-n", &ns.name, "apply", "-f", &file])?;
    let dns = address(env, &ns.name, "service", "nginx-nlb").await?;
    let lb = load_balancer_by_dns(env, &dns)?
        .with_context(|| format!("no load balancer has the DNS name {dns}"))?;
    ensure!(lb["Type"] == "network", "type: {}", lb["Type"]);
    ensure!(
        lb["Scheme"] == "internet-facing",
        "scheme: {}",
        lb["Scheme"]
    );
    let name = lb["LoadBalancerName"].as_str().unwrap_or_default();
    ensure!(
        name.starts_with(&format!("k8s-{}-nginxnlb-", &ns.name.replace('-', "")[..8])),
        "load balancer name {name}"
    );
    let arn = lb["LoadBalancerArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ensure!(
        load_balancer_attribute(env, &arn, "load_balancing.cross_zone.enabled")?.as_deref()
            == Some("true"),
        "cross-zone load balancing is not on"
    );
    let ls = listeners(env, &arn)?;
    ensure!(
        ls.len() == 1 && ls[0]["Protocol"] == "TCP" && ls[0]["Port"] == 80,
        "listeners: {ls:?}"
    );
    let tgs = target_groups_of(env, &arn)?;
    ensure!(tgs.len() == 1, "target groups: {tgs:?}");
    let tg = &tgs[0];
    ensure!(
        tg["TargetType"] == "ip" && tg["Protocol"] == "TCP" && tg["Port"] == 80,
        "target group: {tg}"
    );
    let tg_arn = tg["TargetGroupArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    registered(
        env,
        &ns.name,
        "app=nginx",
        3,
        &tg_arn,
        Duration::from_secs(30),
    )
    .await?;

    // Scaling follows within 10 s.
    env.run(
        "kubectl",
        &[
            "-n",
            &ns.name,
            "scale",
            "deployment",
            "nginx-lb-example",
            "--replicas",
            "5",
        ],
    )?;
    registered(
        env,
        &ns.name,
        "app=nginx",
        5,
        &tg_arn,
        Duration::from_secs(10),
    )
    .await?;

    env.run(
        "kubectl",
        &[
            "-n",
            &ns.name,
            "delete",
            "-f",
            &file,
            "--wait=true",
            "--timeout=60s",
        ],
    )?;
    nothing_tagged(
        env,
        "service.k8s.aws/stack",
        &format!("{}/nginx-nlb", ns.name),
    )
    .await?;
    ensure!(
        load_balancer_by_dns(env, &dns)?.is_none(),
        "the load balancer is still there"
    );
    ns.cleanup().await
}

/// game-2048.yaml: an internet-facing ALB, HTTP:80, one rule for `/`
/// (prefix: `/*`) forwarding to an ip target group with the five pod IPs;
/// deleting the file removes everything.
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn seed_game_2048_ingress_becomes_an_alb() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = env();
    let file = example(env, "game-2048.yaml");
    // The file names its namespace: a run interrupted earlier may have left it.
    let _ = env.run(
        "kubectl",
        &[
            "delete",
            "-f",
            &file,
            "--ignore-not-found",
            "--wait=true",
            "--timeout=60s",
        ],
    );
    env.run("kubectl", &["apply", "-f", &file])?;
    let dns = address(env, "game-2048", "ingress", "ingress-2048").await?;
    let lb = load_balancer_by_dns(env, &dns)?
        .with_context(|| format!("no load balancer has the DNS name {dns}"))?;
    ensure!(lb["Type"] == "application", "type: {}", lb["Type"]);
    ensure!(
        lb["Scheme"] == "internet-facing",
        "scheme: {}",
        lb["Scheme"]
    );
    let name = lb["LoadBalancerName"].as_str().unwrap_or_default();
    ensure!(
        name.starts_with("k8s-game2048-ingress2-"),
        "load balancer name {name}"
    );
    // Its security group is the controller's own: tagged for the stack,
    // attached, open to 0.0.0.0/0 on port 80.
    let sgs: Vec<String> = tagged(env, "ingress.k8s.aws/stack", "game-2048/ingress-2048")?
        .into_iter()
        .filter(|id| id.starts_with("sg-"))
        .collect();
    ensure!(sgs.len() == 1, "managed security groups: {sgs:?}");
    let attached: Vec<&str> = lb["SecurityGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g.as_str())
        .collect();
    ensure!(
        attached.contains(&sgs[0].as_str()),
        "attached: {attached:?}, managed: {sgs:?}"
    );
    let perms = env.aws(&[
        "ec2",
        "describe-security-groups",
        "--group-ids",
        &sgs[0],
        "--query",
        "SecurityGroups[0].IpPermissions[].[IpProtocol,FromPort,ToPort,IpRanges[0].CidrIp]",
        "--output",
        "text",
    ])?;
    ensure!(
        perms
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["tcp", "80", "80", "0.0.0.0/0"]),
        "security group rules: {perms}"
    );
    let arn = lb["LoadBalancerArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ls = listeners(env, &arn)?;
    ensure!(
        ls.len() == 1 && ls[0]["Protocol"] == "HTTP" && ls[0]["Port"] == 80,
        "listeners: {ls:?}"
    );
    // The file creates the Ingress right after its Service: if the
    // controller sees the Ingress first, the rule answers 503 ("Backend
    // service does not exist") until the Service is there, then forwards.
    let listener = ls[0]["ListenerArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let rs = eventually("the rule to forward", Duration::from_secs(30), || async {
        let rs = rules(env, &listener)?;
        Ok((rs.len() == 1 && rs[0]["Actions"][0]["Type"] == "forward").then_some(rs))
    })
    .await?;
    let paths = rule_paths(env, ls[0]["ListenerArn"].as_str().unwrap_or_default())?;
    ensure!(
        paths == vec![vec!["/*".to_string()]],
        "rule paths: {paths:?}"
    );
    ensure!(rs[0]["Priority"] == "1", "priority: {}", rs[0]["Priority"]);
    let action = &rs[0]["Actions"][0];
    ensure!(action["Type"] == "forward", "action: {action}");
    let tg_arn = action["TargetGroupArn"]
        .as_str()
        .or_else(|| action["ForwardConfig"]["TargetGroups"][0]["TargetGroupArn"].as_str())
        .context("the rule forwards to no target group")?
        .to_string();
    let tgs = target_groups_of(env, &arn)?;
    let tg = tgs
        .iter()
        .find(|t| t["TargetGroupArn"] == tg_arn.as_str())
        .context("the rule's target group is not the load balancer's")?;
    ensure!(
        tg["TargetType"] == "ip" && tg["Protocol"] == "HTTP" && tg["Port"] == 80,
        "target group: {tg}"
    );
    registered(
        env,
        "game-2048",
        "app.kubernetes.io/name=app-2048",
        5,
        &tg_arn,
        Duration::from_secs(30),
    )
    .await?;
    env.run(
        "kubectl",
        &["delete", "-f", &file, "--wait=true", "--timeout=90s"],
    )?;
    nothing_tagged(env, "ingress.k8s.aws/stack", "game-2048/ingress-2048").await?;
    ensure!(
        load_balancer_by_dns(env, &dns)?.is_none(),
        "the load balancer is still there"
    );
    Ok(())
}

fn group_member(ns: &str, name: &str, group: &str, order: i32, path: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{namespace: {ns}, name: {name}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: web, image: nginx, ports: [{{containerPort: 80}}]}}]
---
apiVersion: v1
kind: Service
metadata: {{namespace: {ns}, name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 80}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  namespace: {ns}
  name: {name}
  annotations:
    alb.ingress.kubernetes.io/group.name: {group}
    alb.ingress.kubernetes.io/group.order: "{order}"
    alb.ingress.kubernetes.io/target-type: ip
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {{path: {path}, pathType: Prefix, backend: {{service: {{name: {name}, port: {{number: 80}}}}}}}}
"#
    )
}

fn rule_paths(env: &TestEnv, listener: &str) -> Result<Vec<Vec<String>>> {
    Ok(rules(env, listener)?
        .iter()
        .map(|r| {
            let mut p: Vec<String> = r["Conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["Field"] == "path-pattern")
                .flat_map(|c| {
                    let v = c["PathPatternConfig"]["Values"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    let v = if v.is_empty() {
                        c["Values"].as_array().cloned().unwrap_or_default()
                    } else {
                        v
                    };
                    v.into_iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect::<Vec<_>>()
                })
                .collect();
            p.sort();
            p
        })
        .collect())
}

/// Two Ingresses in two namespaces with one group.name share one ALB, their
/// rules in group.order; deleting one leaves the other's rule.
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn an_ingress_group_shares_one_alb_across_namespaces() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = env();
    let client = env.client().await?;
    let a = TestNamespace::new(&client, "alb-a").await?;
    let b = TestNamespace::new(&client, "alb-b").await?;
    let group = format!("shared-{}", &a.name[a.name.len() - 6..]);
    // Order 2 is created first: the order, not the age, decides.
    let second = group_member(&b.name, "second", &group, 2, "/second");
    let first = group_member(&a.name, "first", &group, 1, "/first");
    for y in [&second, &first] {
        env.apply(y)?;
    }
    let dns_a = address(env, &a.name, "ingress", "first").await?;
    let dns_b = address(env, &b.name, "ingress", "second").await?;
    ensure!(dns_a == dns_b, "two addresses: {dns_a} and {dns_b}");
    let lb = load_balancer_by_dns(env, &dns_a)?.context("no load balancer")?;
    let arn = lb["LoadBalancerArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ls = listeners(env, &arn)?;
    ensure!(ls.len() == 1, "listeners: {ls:?}");
    let listener = ls[0]["ListenerArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let paths = eventually("both members' rules", Duration::from_secs(30), || async {
        let p = rule_paths(env, &listener)?;
        Ok((p.len() == 2).then_some(p))
    })
    .await?;
    ensure!(
        paths
            == vec![
                vec!["/first".to_string(), "/first/*".to_string()],
                vec!["/second".to_string(), "/second/*".to_string()]
            ],
        "rules in priority order: {paths:?}"
    );
    // One member goes: the other's rule stays, on the same load balancer.
    env.run(
        "kubectl",
        &[
            "-n",
            &a.name,
            "delete",
            "ingress",
            "first",
            "--wait=true",
            "--timeout=60s",
        ],
    )?;
    eventually(
        "only the second member's rule",
        Duration::from_secs(30),
        || async {
            let p = rule_paths(env, &listener)?;
            Ok((p == vec![vec!["/second".to_string(), "/second/*".to_string()]]).then_some(()))
        },
    )
    .await?;
    ensure!(
        load_balancer_by_dns(env, &dns_a)?.is_some(),
        "the shared load balancer went with one member"
    );
    env.run(
        "kubectl",
        &[
            "-n",
            &b.name,
            "delete",
            "ingress",
            "second",
            "--wait=true",
            "--timeout=60s",
        ],
    )?;
    nothing_tagged(env, "ingress.k8s.aws/stack", &group).await?;
    a.cleanup().await?;
    b.cleanup().await
}

/// `nlb-target-type: bogus`: an Event naming the annotation and the
/// accepted values, the condition False, and nothing in AWS.
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn an_invalid_annotation_creates_nothing_and_says_why() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "nlb-bogus").await?;
    let yaml = format!(
        r#"apiVersion: v1
kind: Service
metadata:
  namespace: {ns}
  name: bogus
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-type: external
    service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: bogus
spec:
  type: LoadBalancer
  selector: {{app: none}}
  ports: [{{port: 80, targetPort: 80}}]
"#,
        ns = ns.name
    );
    env.apply(&yaml)?;
    let note = eventually(
        "a FailedBuildModel event",
        Duration::from_secs(30),
        || async {
            let v = kubectl_json(
                env,
                &[
                    "-n",
                    &ns.name,
                    "get",
                    "events.events.k8s.io",
                    "--field-selector",
                    "regarding.name=bogus",
                ],
            )?;
            Ok(v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["reason"] == "FailedBuildModel")
                .and_then(|e| e["note"].as_str().map(str::to_string)))
        },
    )
    .await?;
    ensure!(
        note.contains("service.beta.kubernetes.io/aws-load-balancer-nlb-target-type")
            && note.contains("bogus")
            && note.contains("instance, ip"),
        "event: {note}"
    );
    let svc = kubectl_json(env, &["-n", &ns.name, "get", "service", "bogus"])?;
    let cond = svc["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "LoadBalancerReady")
        .cloned()
        .context("no LoadBalancerReady condition")?;
    ensure!(
        cond["status"] == "False" && cond["reason"] == "InvalidAnnotation",
        "condition: {cond}"
    );
    ensure!(hostname(&svc).is_none(), "the service got an address");
    let stack = format!("{}/bogus", ns.name);
    let left = tagged(env, "service.k8s.aws/stack", &stack)?;
    if !left.is_empty() {
        bail!("created for an invalid service: {left:?}");
    }
    ns.cleanup().await
}

/// SIGKILL to the environment's load balancer controller, then the
/// environment's components script starts it again.
fn kill_and_restart() -> Result<()> {
    let env = env();
    let pid_file = env
        .state
        .join("pids/outrigger-load-balancer-controller.pid");
    let pid = std::fs::read_to_string(&pid_file)
        .context("the environment's load balancer controller pid")?
        .trim()
        .to_string();
    ensure!(
        std::process::Command::new("kill")
            .args(["-9", &pid])
            .status()?
            .success(),
        "kill -9 {pid} failed"
    );
    let started = env
        .command("bash")
        .arg(env.repo.join("testenv/scripts/components.sh"))
        .arg("up")
        .output()?;
    ensure!(
        started.status.success(),
        "restarting the components failed: {}",
        String::from_utf8_lossy(&started.stderr)
    );
    Ok(())
}

fn count(arns: &[String], kind: &str) -> usize {
    arns.iter().filter(|a| a.contains(kind)).count()
}

/// Killed while it creates three NLBs and a group of three Ingresses, then
/// started again: every stack ends with exactly one load balancer, its
/// target groups and listeners once; an orphaned target group (tagged for
/// the cluster, no Service) is garbage-collected; after the objects go,
/// nothing is left.
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn a_killed_controller_leaves_no_duplicate_and_no_leak() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "lb-restart").await?;
    let group = format!("restart-{}", &ns.name[ns.name.len() - 6..]);
    let mut yaml = String::new();
    for i in 0..3 {
        yaml.push_str(&format!(
            r#"---
apiVersion: v1
kind: Service
metadata:
  namespace: {ns}
  name: nlb-{i}
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-type: external
    service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip
    service.beta.kubernetes.io/aws-load-balancer-scheme: internet-facing
spec:
  type: LoadBalancer
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: 80}}, {{name: alt, port: 8080, targetPort: 80}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  namespace: {ns}
  name: ing-{i}
  annotations:
    alb.ingress.kubernetes.io/group.name: {group}
    alb.ingress.kubernetes.io/group.order: "{i}"
    alb.ingress.kubernetes.io/target-type: ip
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {{path: /p{i}, pathType: Prefix, backend: {{service: {{name: nlb-{i}, port: {{number: 80}}}}}}}}
"#,
            ns = ns.name
        ));
    }
    env.apply(&yaml)?;
    // Kill it as soon as the first resource of these stacks exists.
    eventually(
        "a first resource in AWS",
        Duration::from_secs(30),
        || async {
            let mut any = false;
            for i in 0..3 {
                any |= !tagged(
                    env,
                    "service.k8s.aws/stack",
                    &format!("{}/nlb-{i}", ns.name),
                )?
                .is_empty();
            }
            any |= !tagged(env, "ingress.k8s.aws/stack", &group)?.is_empty();
            Ok(any.then_some(()))
        },
    )
    .await?;
    // And an orphan: a target group tagged for this cluster and a Service
    // that does not exist. The restarted controller's first garbage
    // collection (20 s after start) deletes it.
    let vpc = env
        .aws(&[
            "ec2",
            "describe-subnets",
            "--filters",
            "Name=tag:karpenter.sh/discovery,Values=demo",
            "--query",
            "Subnets[0].VpcId",
            "--output",
            "text",
        ])?
        .trim()
        .to_string();
    let ghost = format!("{}/ghost", ns.name);
    let ghost_tags = format!(
        "Key=elbv2.k8s.aws/cluster,Value=demo Key=service.k8s.aws/stack,Value={ghost} Key=service.k8s.aws/resource,Value={ghost}:80"
    );
    let mut args = vec![
        "elbv2",
        "create-target-group",
        "--name",
        "k8s-ghost-orphan",
        "--protocol",
        "TCP",
        "--port",
        "80",
        "--vpc-id",
        &vpc,
        "--target-type",
        "ip",
        "--tags",
    ];
    args.extend(ghost_tags.split(' '));
    env.aws(&args)?;
    kill_and_restart()?;
    let mut dns = BTreeSet::new();
    for i in 0..3 {
        dns.insert(address(env, &ns.name, "service", &format!("nlb-{i}")).await?);
        dns.insert(address(env, &ns.name, "ingress", &format!("ing-{i}")).await?);
    }
    ensure!(dns.len() == 4, "addresses: {dns:?}");
    for i in 0..3 {
        let stack = format!("{}/nlb-{i}", ns.name);
        let arns = tagged(env, "service.k8s.aws/stack", &stack)?;
        ensure!(
            count(&arns, ":loadbalancer/") == 1 && count(&arns, ":targetgroup/") == 2,
            "service stack {stack}: {arns:?}"
        );
    }
    let arns = tagged(env, "ingress.k8s.aws/stack", &group)?;
    ensure!(
        count(&arns, ":loadbalancer/") == 1 && count(&arns, ":targetgroup/") == 3,
        "ingress group {group}: {arns:?}"
    );
    for d in &dns {
        let lb = load_balancer_by_dns(env, d)?.with_context(|| format!("no load balancer {d}"))?;
        let arn = lb["LoadBalancerArn"].as_str().unwrap_or_default();
        let ls = listeners(env, arn)?;
        let ports: BTreeSet<i64> = ls.iter().filter_map(|l| l["Port"].as_i64()).collect();
        ensure!(
            ports.len() == ls.len(),
            "a listener port twice on {d}: {ls:?}"
        );
        if lb["Type"] == "application" {
            let rs = rules(env, ls[0]["ListenerArn"].as_str().unwrap_or_default())?;
            ensure!(rs.len() == 3, "rules of the group: {rs:?}");
        } else {
            ensure!(
                ports == BTreeSet::from([80, 8080]),
                "listeners of {d}: {ports:?}"
            );
        }
    }
    nothing_tagged_within(
        env,
        "service.k8s.aws/stack",
        &ghost,
        Duration::from_secs(60),
    )
    .await?;
    env.run(
        "kubectl",
        &[
            "-n",
            &ns.name,
            "delete",
            "ingress,service",
            "--all",
            "--wait=true",
            "--timeout=90s",
        ],
    )?;
    for i in 0..3 {
        nothing_tagged(
            env,
            "service.k8s.aws/stack",
            &format!("{}/nlb-{i}", ns.name),
        )
        .await?;
    }
    nothing_tagged(env, "ingress.k8s.aws/stack", &group).await?;
    ns.cleanup().await
}

/// A target group made outside the cluster (the AWS CLI) and a
/// TargetGroupBinding to a Service: the ready pod IPs are registered, the
/// binding says Ready, a scale is followed; deleting the binding
/// deregisters them and leaves the target group alone.
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn a_target_group_binding_fills_an_outside_target_group() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "tgb").await?;
    let vpc = env
        .aws(&[
            "ec2",
            "describe-subnets",
            "--filters",
            "Name=tag:karpenter.sh/discovery,Values=demo",
            "--query",
            "Subnets[0].VpcId",
            "--output",
            "text",
        ])?
        .trim()
        .to_string();
    let tg_name = format!("outside-{}", &ns.name[ns.name.len() - 6..]);
    let tg_arn = env
        .aws(&[
            "elbv2",
            "create-target-group",
            "--name",
            &tg_name,
            "--protocol",
            "TCP",
            "--port",
            "80",
            "--vpc-id",
            &vpc,
            "--target-type",
            "ip",
            "--query",
            "TargetGroups[0].TargetGroupArn",
            "--output",
            "text",
        ])?
        .trim()
        .to_string();
    let yaml = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{namespace: {ns}, name: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: web, image: nginx, ports: [{{containerPort: 80}}]}}]
---
apiVersion: v1
kind: Service
metadata: {{namespace: {ns}, name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 80}}]
---
apiVersion: elbv2.k8s.aws/v1beta1
kind: TargetGroupBinding
metadata: {{namespace: {ns}, name: web}}
spec:
  targetGroupARN: {tg_arn}
  targetType: ip
  serviceRef: {{name: web, port: 80}}
"#,
        ns = ns.name
    );
    env.apply(&yaml)?;
    for replicas in [2, 4] {
        if replicas == 4 {
            env.run(
                "kubectl",
                &[
                    "-n",
                    &ns.name,
                    "scale",
                    "deployment",
                    "web",
                    "--replicas",
                    "4",
                ],
            )?;
        }
        registered(
            env,
            &ns.name,
            "app=web",
            replicas,
            &tg_arn,
            Duration::from_secs(15),
        )
        .await?;
    }
    let b = kubectl_json(env, &["-n", &ns.name, "get", "targetgroupbinding", "web"])?;
    let ready = b["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    ensure!(ready, "binding status: {}", b["status"]);
    env.run(
        "kubectl",
        &[
            "-n",
            &ns.name,
            "delete",
            "targetgroupbinding",
            "web",
            "--wait=true",
            "--timeout=30s",
        ],
    )?;
    ensure!(
        targets(env, &tg_arn)?.is_empty(),
        "targets left after the binding went"
    );
    // Not the controller's: the target group stays.
    env.aws(&[
        "elbv2",
        "describe-target-groups",
        "--target-group-arns",
        &tg_arn,
    ])?;
    env.aws(&[
        "elbv2",
        "delete-target-group",
        "--target-group-arn",
        &tg_arn,
    ])?;
    ns.cleanup().await
}

/// A group whose rules stop fitting one listener (60 paths, then a member
/// with 50 more; ELBv2 allows 100): each member gets an Event and the
/// port's error in its status, and the load balancer keeps the last rules
/// that fitted; when the member goes, the error goes.
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn a_group_over_the_rule_limit_says_so_on_every_member() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "alb-limit").await?;
    let group = format!("big-{}", &ns.name[ns.name.len() - 6..]);
    let member = |name: &str, paths: usize| {
        let mut y = format!(
            "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  namespace: {ns}\n  name: {name}\n  annotations:\n    alb.ingress.kubernetes.io/group.name: {group}\n    alb.ingress.kubernetes.io/target-type: ip\nspec:\n  ingressClassName: alb\n  rules:\n  - http:\n      paths:\n",
            ns = ns.name
        );
        for p in 0..paths {
            y.push_str(&format!(
                "      - {{path: /{name}-{p}, pathType: Exact, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}\n"
            ));
        }
        y
    };
    env.apply(&format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{namespace: {ns}, name: web}}\nspec:\n  selector: {{app: web}}\n  ports: [{{port: 80, targetPort: 80}}]\n{many}",
        ns = ns.name,
        many = member("many", 60)
    ))?;
    let dns = address(env, &ns.name, "ingress", "many").await?;
    let lb = load_balancer_by_dns(env, &dns)?.context("no load balancer")?;
    let listener =
        listeners(env, lb["LoadBalancerArn"].as_str().unwrap_or_default())?[0]["ListenerArn"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    eventually("60 rules", Duration::from_secs(30), || async {
        Ok((rules(env, &listener)?.len() == 60).then_some(()))
    })
    .await?;
    env.apply(&member("more", 50))?;
    for name in ["many", "more"] {
        let note = eventually(
            &format!("a FailedBuildModel event on {name}"),
            Duration::from_secs(30),
            || async {
                let v = kubectl_json(
                    env,
                    &[
                        "-n",
                        &ns.name,
                        "get",
                        "events.events.k8s.io",
                        "--field-selector",
                        &format!("regarding.name={name}"),
                    ],
                )?;
                Ok(v["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|e| e["reason"] == "FailedBuildModel")
                    .and_then(|e| e["note"].as_str().map(str::to_string)))
            },
        )
        .await?;
        ensure!(
            note.contains("110 rules on port 80") && note.contains("100"),
            "event on {name}: {note}"
        );
        let err = eventually(
            &format!("the port error in {name}'s status"),
            Duration::from_secs(30),
            || async {
                let v = kubectl_json(env, &["-n", &ns.name, "get", "ingress", name])?;
                Ok(
                    v["status"]["loadBalancer"]["ingress"][0]["ports"][0]["error"]
                        .as_str()
                        .map(str::to_string),
                )
            },
        )
        .await?;
        ensure!(
            err == "ingress.k8s.aws/TooManyRules",
            "status error on {name}: {err}"
        );
    }
    // The load balancer keeps what fitted.
    ensure!(rules(env, &listener)?.len() == 60, "the rules changed");
    env.run(
        "kubectl",
        &[
            "-n",
            &ns.name,
            "delete",
            "ingress",
            "more",
            "--wait=true",
            "--timeout=60s",
        ],
    )?;
    eventually(
        "the error gone from many's status",
        Duration::from_secs(30),
        || async {
            let v = kubectl_json(env, &["-n", &ns.name, "get", "ingress", "many"])?;
            Ok(
                (v["status"]["loadBalancer"]["ingress"][0]["ports"].is_null()
                    && hostname(&v).as_deref() == Some(dns.as_str()))
                .then_some(()),
            )
        },
    )
    .await?;
    env.run(
        "kubectl",
        &[
            "-n",
            &ns.name,
            "delete",
            "ingress",
            "many",
            "--wait=true",
            "--timeout=60s",
        ],
    )?;
    nothing_tagged(env, "ingress.k8s.aws/stack", &group).await?;
    ns.cleanup().await
}

/// Instance targets: an NLB Service with `nlb-target-type: instance` and
/// `target-node-labels` picking the managed node group registers those
/// nodes' EC2 instances (from their providerID) on the Service's NodePort.
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn instance_targets_are_the_nodes_instances_on_the_node_port() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "nlb-instance").await?;
    env.apply(&format!(
        r#"apiVersion: v1
kind: Service
metadata:
  namespace: {ns}
  name: web
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-type: external
    service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: instance
    service.beta.kubernetes.io/aws-load-balancer-target-node-labels: eks.amazonaws.com/nodegroup=ng-1
spec:
  type: LoadBalancer
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
"#,
        ns = ns.name
    ))?;
    let dns = address(env, &ns.name, "service", "web").await?;
    let lb = load_balancer_by_dns(env, &dns)?.context("no load balancer")?;
    ensure!(
        lb["Scheme"] == "internal",
        "the default scheme is internal: {}",
        lb["Scheme"]
    );
    let svc = kubectl_json(env, &["-n", &ns.name, "get", "service", "web"])?;
    let node_port = svc["spec"]["ports"][0]["nodePort"]
        .as_i64()
        .context("no nodePort")?;
    let nodes = kubectl_json(
        env,
        &["get", "nodes", "-l", "eks.amazonaws.com/nodegroup=ng-1"],
    )?;
    let want: BTreeSet<String> = nodes["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["spec"]["providerID"].as_str())
        .filter_map(|p| p.rsplit('/').next().map(str::to_string))
        .collect();
    ensure!(
        want.len() == 3,
        "the managed node group's instances: {want:?}"
    );
    let tgs = target_groups_of(env, lb["LoadBalancerArn"].as_str().unwrap_or_default())?;
    ensure!(
        tgs.len() == 1 && tgs[0]["TargetType"] == "instance",
        "target groups: {tgs:?}"
    );
    let tg_arn = tgs[0]["TargetGroupArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    eventually(
        "the node group's instances registered",
        Duration::from_secs(30),
        || async { Ok((targets(env, &tg_arn)? == want).then_some(())) },
    )
    .await?;
    let health = env.aws(&[
        "elbv2",
        "describe-target-health",
        "--target-group-arn",
        &tg_arn,
        "--query",
        "TargetHealthDescriptions[].Target.Port",
        "--output",
        "text",
    ])?;
    let ports: BTreeSet<&str> = health.split_whitespace().collect();
    let np = node_port.to_string();
    ensure!(
        ports == BTreeSet::from([np.as_str()]),
        "target ports {ports:?}, nodePort {node_port}"
    );
    env.run(
        "kubectl",
        &[
            "-n",
            &ns.name,
            "delete",
            "service",
            "web",
            "--wait=true",
            "--timeout=60s",
        ],
    )?;
    nothing_tagged(env, "service.k8s.aws/stack", &format!("{}/web", ns.name)).await?;
    ns.cleanup().await
}
