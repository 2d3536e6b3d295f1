//! `spate config check` against `spate run` and `spate ingest`: whatever
//! `run` rejects, `check` rejects with the same message, before anything
//! starts; the reference and the default file through the binary.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::spate;

/// Bad configurations, each with a part of the message that must name it.
const BAD: &[(&str, &str)] = &[
    (
        "[http]\nlisten = \"localhost\"\n",
        "(line 2): http.listen: \"localhost\" must be an address and a port",
    ),
    (
        "[http]\nauth_token = \"\"\n",
        "(line 2): http.auth_token: is empty",
    ),
    (
        "[http]\nauth_token_env = \"SPATE_TEST_SURELY_UNSET\"\n",
        "(line 2): http.auth_token_env: environment variable SPATE_TEST_SURELY_UNSET is not set",
    ),
    (
        "[http]\nauth_token = \"${SPATE_TEST_SURELY_UNSET}\"\n",
        "SPATE_TEST_SURELY_UNSET",
    ),
    ("[windows]\nsize_secs = 0\n", "(line 2): windows.size: "),
    (
        "[windows]\nshared = true\n",
        "windows: shared = true needs a shared alert store",
    ),
    (
        "[[alerts.rules]]\nname = \"x\"\nkind = \"tag\"\n",
        "(line 1): alerts",
    ),
    (
        "[hot]\nretention_hours = 0\n",
        "(line 2): hot.retention: must be at least 1",
    ),
    (
        "[lake]\nzstd_level = 0\n",
        "(line 2): lake.zstd_level: must be between 1 and 22",
    ),
    (
        "[lake.s3]\nbucket = \"b\"\npart_size_mib = 1\n",
        "(line 3): lake.s3.part_size: must be at least 5",
    ),
    (
        "[journal]\nsegment_mib = 0\n",
        "(line 2): journal.segment_size: must be at least 1",
    ),
    (
        "[metrics.emf]\ninterval_secs = 0\n",
        "(line 2): metrics.emf.interval: ",
    ),
    (
        "[[sources.sqs]]\nqueue_url = \"https://q\"\npollers = 0\n",
        "(line 3): sources.sqs[0].pollers: must be at least 1",
    ),
    (
        "[sources.tail]\npaths = [\"/var/log/[.log\"]\n",
        "(line 2): sources.tail.paths: ",
    ),
    (
        "[sources.kafka]\nbrokers = 1\n",
        "(line 1): sources.kafka: unknown source kind",
    ),
    (
        "[ingest]\nchunk_kib = \"big\"\n",
        "(line 2): ingest.chunk_size: ",
    ),
];

/// Runs `spate ARGS`, which must exit within 60 s (a configuration it
/// wrongly accepts would start the service: it is killed and reported), and
/// returns (exit code, stderr).
fn run_spate(args: &[&str], config: &Path, data: &Path) -> (Option<i32>, String) {
    let mut child = spate()
        .args(args)
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .env_remove("SPATE_TEST_SURELY_UNSET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "spate {args:?} with {} did not exit: {}",
                config.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn check_rejects_what_run_and_ingest_reject_with_the_same_message() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.log");
    std::fs::write(&input, "{\"msg\":\"x\"}\n").unwrap();
    for (i, (text, expected)) in BAD.iter().enumerate() {
        let file = dir.path().join(format!("bad-{i}.toml"));
        std::fs::write(&file, text).unwrap();
        let check = spate()
            .args(["config", "check"])
            .arg(&file)
            .env_remove("SPATE_TEST_SURELY_UNSET")
            .output()
            .unwrap();
        let check_err = String::from_utf8_lossy(&check.stderr).to_string();
        assert_eq!(check.status.code(), Some(1), "check accepted {text:?}");
        assert!(
            check_err.contains(expected),
            "check of {text:?} said {check_err:?}, expected {expected:?}"
        );
        assert!(
            check_err.contains(&file.display().to_string()),
            "{check_err}"
        );
        for rust_type in ["usize", "u64", "u32", "i64", "struct ", "Config"] {
            assert!(!check_err.contains(rust_type), "{check_err}");
        }

        let data = dir.path().join(format!("data-{i}"));
        let (code, run_err) = run_spate(&["run"], &file, &data);
        assert_eq!(code, Some(1), "run accepted {text:?}: {run_err}");
        assert_eq!(run_err, check_err, "run and check disagree on {text:?}");
        // Nothing was started: no data dir, no journal.
        assert!(
            !data.exists(),
            "run created {} for {text:?}",
            data.display()
        );

        let (code, ingest_err) = run_spate(
            &["ingest", input.to_str().unwrap()],
            &file,
            &dir.path().join("ingest-data"),
        );
        assert_eq!(code, Some(1), "ingest accepted {text:?}");
        assert_eq!(
            ingest_err, check_err,
            "ingest and check disagree on {text:?}"
        );
    }
}

#[test]
fn a_good_config_checks_ok_and_the_listen_override_is_checked_too() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("good.toml");
    std::fs::write(
        &file,
        "[[sources.sqs]]\nqueue_url = \"https://sqs.us-east-1.amazonaws.com/1/logs\"\n[tail]\npaths = [\"/var/log/*.log\"]\n",
    )
    .unwrap();
    let out = spate()
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}: ok\n", file.display())
    );
    let (code, err) = run_spate(
        &["run", "--listen", "localhost"],
        &file,
        &dir.path().join("data"),
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("http.listen: \"localhost\" must be an address and a port"),
        "{err}"
    );
}

#[test]
fn the_default_file_and_the_reference_come_from_the_binary() {
    let default = spate().args(["config", "default"]).output().unwrap();
    assert!(default.status.success());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("default.toml");
    std::fs::write(&file, &default.stdout).unwrap();
    let check = spate()
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let reference = spate().args(["config", "reference"]).output().unwrap();
    assert!(reference.status.success());
    let text = String::from_utf8_lossy(&reference.stdout);
    assert!(text.starts_with("# Configuration reference"), "{text}");
    assert!(text.contains("## `[[sources.sqs]]`"), "{text}");
    assert!(text.contains("**`queue_url`**"), "{text}");
}
