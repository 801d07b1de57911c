//! The broadcast scenario end to end through the `conclave-bench` binary: every system, its
//! nodes as separate processes and in one process, on TCP loopback; the report must say that
//! every message reached every node and, for node processes, what each process cost.

use std::process::Command;

#[test]
fn broadcast_runs_every_system_as_processes_and_in_process() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_conclave-bench"))
        .args([
            "--quick",
            "--scenario",
            "broadcast",
            "--nodes",
            "3",
            "--reps",
            "1",
        ])
        .args([
            "--placement",
            "processes",
            "--placement",
            "in-process",
            "--out",
        ])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success(), "conclave-bench failed: {status}");
    let json = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a JSON report");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 8, "4 systems × 2 placements: {rows:#?}");
    assert!(report["refused"].as_array().unwrap().is_empty());
    for row in rows {
        let what = format!("{} {}", row["system"], row["placement"]);
        assert_eq!(row["params"]["nodes"], 3, "{what}");
        assert_eq!(row["delivery_ratio"]["median"], 1.0, "{what}");
        assert!(row["p99_ms"]["median"].as_f64().unwrap() > 0.0, "{what}");
        assert!(
            row["cpu_us_per_delivery"]["median"].as_f64().unwrap() > 0.0,
            "{what}"
        );
        let idle = row["idle_cpu_ms_per_s"]["median"].as_f64().unwrap();
        assert!(idle >= 0.0, "{what}: idle CPU {idle}");
        if row["system"] != "central-relay" {
            // Gossipsub heartbeats run whether or not messages flow.
            assert!(idle > 0.0, "{what}: idle CPU {idle}");
        }
        let rss = row["node_peak_rss_mib"]["median"].as_f64();
        if row["placement"] == "processes" {
            // A node process holds at least its runtime and libp2p: a few MiB, never zero.
            assert!(rss.unwrap() > 1.0, "{what}: {rss:?}");
        } else {
            assert!(rss.is_none(), "{what}: no per-node RSS in one process");
        }
    }
    let md = std::fs::read_to_string(json.with_extension("md")).unwrap();
    assert!(md.contains("each node a separate process"));
    assert!(md.contains("every node in one process"));
    assert!(out.path().read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with("-processes.svg")));
}

#[test]
fn a_message_size_no_system_can_carry_is_refused_before_anything_runs() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_conclave-bench"))
        .args(["--scenario", "broadcast", "--sizes", "1024,70000", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("--sizes: 70000 bytes; expected 15..=65536"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "nothing reported"
    );
}
