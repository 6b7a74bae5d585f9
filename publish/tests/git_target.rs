//! The git target: one commit per changed image with the diff and the
//! confidence line in the message, none when unchanged.

mod common;

use common::*;
use publish::{
    build_publication, gate, image_slug, publish_all, GateDecision, GitTarget, Outcome, Target,
    Version,
};
use std::path::Path;
use std::process::Command;

fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn one_commit_per_change_none_when_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("profiles-repo");
    let target = GitTarget::open_or_init(&repo).unwrap();
    assert_eq!(target.commit_count().unwrap(), 0);
    assert_eq!(target.current("anything").await.unwrap(), None);

    let img = "registry.example.com:5000/team/app:2";
    let slug = image_slug(img);
    let c1 = cand(img, "enforce", &["read", "write", "flock"], 3, T0);
    let r = publish_all(std::slice::from_ref(&c1), &target, &policy(2), T0).await;
    assert!(
        matches!(r.images[0].outcome, Outcome::Published { .. }),
        "{r:?}"
    );
    assert_eq!(target.commit_count().unwrap(), 1);

    // Adds openat (3 hosts), drops flock (unused for 8 days).
    let mut c2 = cand(img, "enforce", &["read", "write", "openat"], 3, T0);
    c2.syscall_last_seen_ms
        .insert(("x86_64".into(), "flock".into()), T0);
    c2.confidence_summary = "confidence 0.997: 3 hosts, 120 containers, 14d observed".into();
    let now2 = T0 + 8 * DAY_MS;
    let r = publish_all(std::slice::from_ref(&c2), &target, &policy(2), now2).await;
    let v1 = Version::of_files(&c1.files);
    let v2 = Version::of_files(&c2.files);
    assert_eq!(
        r.images[0].outcome,
        Outcome::Published {
            version: v2.full.clone(),
            previous: Some(v1.full.clone()),
            added: 1,
            removed: 1
        }
    );
    assert_eq!(target.commit_count().unwrap(), 2);
    assert_eq!(
        git(&repo, &["log", "-1", "--format=%B"]),
        format!(
            "{img}: enforce {} (+1 -1 syscalls)\n\n+ x86_64 openat\n- x86_64 flock\n\n\
             confidence 0.997: 3 hosts, 120 containers, 14d observed\nversion: {}\nprevious: {}\n\n",
            v2.short, v2.full, v1.full
        )
    );
    assert_eq!(
        git(&repo, &["log", "--format=%an <%ae> %at %s"]),
        format!(
            "sandmine <sandmine@localhost> {} {img}: enforce {} (+1 -1 syscalls)\n\
             sandmine <sandmine@localhost> {} {img}: enforce {} (+3 -0 syscalls)\n",
            now2 / 1000,
            v2.short,
            T0 / 1000,
            v1.short
        )
    );
    assert_eq!(
        git(&repo, &["ls-tree", "-r", "--name-only", "HEAD"]),
        [
            "current",
            "diff.json",
            "diff.txt",
            &format!("kubelet/sandmine/{slug}.json"),
            "profile.json",
            "report.json",
            "report.txt",
            "seccompprofile.yaml",
        ]
        .iter()
        .flat_map(|f| {
            // The folder of earlier releases, in the same commit, for one
            // release (docs/UPGRADING.md); `ls-tree` sorts by path.
            let legacy = schemas::slug::legacy(img).folder;
            [format!("{legacy}/{f}\n"), format!("{slug}/{f}\n")]
        })
        .collect::<std::collections::BTreeSet<String>>()
        .into_iter()
        .collect::<String>()
    );
    assert_eq!(
        git(&repo, &["show", &format!("HEAD:{slug}/diff.txt")]),
        "+ x86_64 openat\n- x86_64 flock\n"
    );
    assert_eq!(
        git(&repo, &["show", &format!("HEAD:{slug}/profile.json")]).as_bytes(),
        &c2.files["profile.json"][..]
    );

    // The same candidate again: unchanged, still two commits.
    let r = publish_all(
        std::slice::from_ref(&c2),
        &target,
        &policy(2),
        now2 + DAY_MS,
    )
    .await;
    assert_eq!(
        r.images[0].outcome,
        Outcome::Unchanged {
            version: v2.full.clone()
        }
    );
    assert_eq!(target.commit_count().unwrap(), 2);

    // Writing the identical publication directly makes no commit either.
    let prev = target.current(&slug).await.unwrap().unwrap();
    let g = gate(None, &c2, &policy(0), now2);
    assert_eq!(g.decision, GateDecision::Publish);
    let mut p = build_publication(&c2, &g, None, now2).unwrap();
    p.meta = prev;
    p.files.insert(
        "diff.txt".into(),
        b"+ x86_64 openat\n- x86_64 flock\n".to_vec(),
    );
    p.files.insert(
        "diff.json".into(),
        git(&repo, &["show", &format!("HEAD:{slug}/diff.json")]).into_bytes(),
    );
    target.publish(&p).await.unwrap();
    assert_eq!(target.commit_count().unwrap(), 2);
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
}

#[tokio::test]
async fn previous_comes_from_head_not_the_work_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let target = GitTarget::open_or_init(tmp.path()).unwrap();
    let img = "app";
    let slug = image_slug(img);
    let c1 = cand(img, "enforce", &["read"], 3, T0);
    let c2 = cand(img, "enforce", &["read", "write"], 3, T0);
    publish_all(std::slice::from_ref(&c1), &target, &policy(2), T0).await;
    // A crashed publication left c2's meta uncommitted in the work tree.
    let g = gate(None, &c2, &policy(0), T0);
    let p = build_publication(&c2, &g, None, T0).unwrap();
    std::fs::write(
        tmp.path().join(&slug).join("current"),
        serde_json::to_vec(&p.meta).unwrap(),
    )
    .unwrap();
    let cur = target.current(&slug).await.unwrap().unwrap();
    assert_eq!(cur.version, Version::of_files(&c1.files).full);

    let r = publish_all(std::slice::from_ref(&c2), &target, &policy(2), T0 + 1000).await;
    assert!(matches!(
        r.images[0].outcome,
        Outcome::Published {
            added: 1,
            removed: 0,
            ..
        }
    ));
    assert_eq!(target.commit_count().unwrap(), 2);
    assert_eq!(git(tmp.path(), &["status", "--porcelain"]), "");
}

#[tokio::test]
async fn one_commit_per_image_in_a_round() {
    let tmp = tempfile::tempdir().unwrap();
    let target = GitTarget::open_or_init(tmp.path().join("r")).unwrap();
    let cands = vec![
        cand("b:1", "log", &["read"], 3, T0),
        cand("a:1", "enforce", &["read"], 3, T0),
        cand("c:1", "not_ready", &["read"], 3, T0),
    ];
    let r = publish_all(&cands, &target, &policy(2), T0).await;
    assert_eq!(r.published(), 2);
    assert_eq!(
        git(target.repo(), &["log", "--format=%s"]),
        format!(
            "b:1: log {} (+1 -0 syscalls)\na:1: enforce {} (+1 -0 syscalls)\n",
            Version::of_files(&cands[0].files).short,
            Version::of_files(&cands[1].files).short
        )
    );
}
