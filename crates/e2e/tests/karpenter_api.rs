//! Cluster tests of the Karpenter-compatible APIs: the committed CRDs install
//! into the real API server, take the seed's Provisioner as written, default
//! like Karpenter's, and refuse bad pools with a message naming the rule.

use anyhow::{Context, Result};
use outrigger_e2e::env;
use outrigger_runtime::sync::LockExt;

/// Applies a manifest; `Err` carries kubectl's message.
fn apply(manifest: &str) -> Result<String> {
    let env = env();
    let path = std::env::temp_dir().join(format!(
        "outrigger-e2e-{}-{}.yaml",
        std::process::id(),
        manifest.len()
    ));
    std::fs::write(&path, manifest)?;
    let out = env.run(
        "kubectl",
        &["apply", "-f", path.to_str().context("temp path")?],
    );
    let _ = std::fs::remove_file(&path);
    out
}

/// Installs the CRDs once per test binary (the tests run in parallel and
/// two concurrent creates of one CRD conflict).
fn install_crds() -> Result<()> {
    static DONE: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut done = DONE.locked();
    if *done {
        return Ok(());
    }
    install_crds_now()?;
    *done = true;
    Ok(())
}

fn install_crds_now() -> Result<()> {
    let env = env();
    let dir = env.repo.join("deploy/crds");
    env.run(
        "kubectl",
        &["apply", "-f", dir.to_str().context("repo path")?],
    )?;
    for crd in [
        "nodepools.karpenter.sh",
        "nodeclaims.karpenter.sh",
        "provisioners.karpenter.sh",
        "ec2nodeclasses.karpenter.k8s.aws",
        "kwoknodeclasses.karpenter.kwok.sh",
    ] {
        env.run(
            "kubectl",
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=30s",
                &format!("crd/{crd}"),
            ],
        )?;
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn the_seeds_provisioner_is_accepted_as_written() -> Result<()> {
    install_crds()?;
    let env = env();
    let name = format!("e2e-seed-{}", std::process::id());
    let seed = std::fs::read_to_string(env.repo.join("deploy/examples/seed-provisioner.yaml"))?;
    apply(&seed.replace("name: default", &format!("name: {name}")))?;
    let got = env.run("kubectl", &["get", "provisioner", &name, "-o", "json"])?;
    env.run("kubectl", &["delete", "provisioner", &name])?;
    let v: serde_json::Value = serde_json::from_str(&got)?;
    assert_eq!(v["spec"]["limits"]["resources"]["cpu"], 1000);
    assert_eq!(v["spec"]["ttlSecondsAfterEmpty"], 30);
    assert_eq!(
        v["spec"]["provider"]["securityGroupSelector"]["kubernetes.io/cluster/demo"],
        "owned"
    );
    assert_eq!(v["spec"]["requirements"][1]["values"][1], "m6i.xlarge");
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn nodepools_default_like_karpenter_and_bad_ones_are_refused() -> Result<()> {
    install_crds()?;
    let env = env();
    let pool = |name: &str, reqs: &str| {
        format!(
            r#"apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {{name: {name}}}
spec:
  template:
    spec:
      nodeClassRef: {{group: karpenter.kwok.sh, kind: KWOKNodeClass, name: default}}
      requirements: {reqs}
"#
        )
    };
    let name = format!("e2e-pool-{}", std::process::id());
    apply(&pool(
        &name,
        r#"[{key: karpenter.sh/capacity-type, operator: In, values: [spot]}]"#,
    ))?;
    let got = env.run("kubectl", &["get", "nodepool", &name, "-o", "json"])?;
    env.run("kubectl", &["delete", "nodepool", &name])?;
    let v: serde_json::Value = serde_json::from_str(&got)?;
    assert_eq!(v["spec"]["template"]["spec"]["expireAfter"], "720h");
    assert_eq!(v["spec"]["disruption"]["budgets"][0]["nodes"], "10%");
    assert_eq!(v["spec"]["disruption"]["consolidateAfter"], "0s");
    assert_eq!(
        v["spec"]["disruption"]["consolidationPolicy"],
        "WhenEmptyOrUnderutilized"
    );

    let e = apply(&pool(
        "e2e-bad-gt",
        r#"[{key: karpenter.k8s.aws/instance-cpu, operator: Gt, values: ["four"]}]"#,
    ))
    .expect_err("Gt with a word must be refused");
    assert!(
        e.to_string()
            .contains("requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer value"),
        "{e}"
    );
    let e = apply(&pool(
        "e2e-bad-op",
        r#"[{key: topology.kubernetes.io/zone, operator: Near, values: [a]}]"#,
    ))
    .expect_err("an unknown operator must be refused");
    assert!(
        e.to_string().contains(r#"Unsupported value: "Near""#),
        "{e}"
    );
    let e = apply(
        r#"apiVersion: karpenter.sh/v1alpha5
kind: Provisioner
metadata: {name: e2e-bad-ttl}
spec:
  ttlSecondsAfterEmpty: 30
  consolidation: {enabled: true}
"#,
    )
    .expect_err("ttlSecondsAfterEmpty with consolidation must be refused");
    assert!(
        e.to_string()
            .contains("ttlSecondsAfterEmpty and consolidation.enabled are mutually exclusive"),
        "{e}"
    );
    for (kind, n) in [
        ("nodepool", "e2e-bad-gt"),
        ("nodepool", "e2e-bad-op"),
        ("provisioner", "e2e-bad-ttl"),
    ] {
        let out = env.run(
            "kubectl",
            &["get", kind, n, "--ignore-not-found", "-o", "name"],
        )?;
        assert!(out.trim().is_empty(), "{kind}/{n} was created");
    }
    Ok(())
}
