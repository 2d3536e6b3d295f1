//! `spate cost` through the binary: every format prints the same bill, the
//! JSON has the line items and `total_usd_per_month`, and a region without
//! prices is a clear error.

mod support;

use serde_json::Value;
use support::{spate, stdout_of};

fn cost(extra: &[&str]) -> String {
    stdout_of(
        spate()
            .args(["cost", "--events-per-day", "2400000"])
            .args(extra),
    )
}

#[test]
fn json_csv_and_table_print_the_same_bill() {
    let json: Value = serde_json::from_str(&cost(&["--format", "json"])).unwrap();
    let items = json["items"].as_array().unwrap();
    let sum: f64 = items
        .iter()
        .map(|i| i["usd_per_month"].as_f64().unwrap())
        .sum();
    let total = json["total_usd_per_month"].as_f64().unwrap();
    assert!((sum - total).abs() < 1e-9 && total > 0.0, "{json}");
    for service in ["Fargate", "SQS", "DynamoDB", "S3", "CloudWatch"] {
        assert!(items.iter().any(|i| i["service"] == service), "{json}");
    }
    assert_eq!(json["inputs"]["events_per_day"], 2_400_000.0);
    assert_eq!(json["inputs"]["source"], "sqs");

    // csv: a header, one row per item, a total row.
    let csv = cost(&["--format", "csv"]);
    assert_eq!(csv.lines().count(), items.len() + 2, "{csv}");
    assert!(csv.starts_with("service,item,quantity,unit,unit_usd,usd_per_month,scope,basis"));
    // table: the lines, the total and every input by name.
    let table = cost(&[]);
    assert!(
        table.contains(&format!("total {total:.2} USD/month")),
        "{table}"
    );
    assert!(table.contains("events_per_day = 2400000"), "{table}");

    // Kinesis instead of SQS.
    let kinesis: Value =
        serde_json::from_str(&cost(&["--source", "kinesis", "--format", "json"])).unwrap();
    let services: Vec<&str> = kinesis["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["service"].as_str().unwrap())
        .collect();
    assert!(services.contains(&"Kinesis") && !services.contains(&"SQS"));

    // A provisioned hot table: capacity-hours instead of request units.
    let provisioned: Value = serde_json::from_str(&cost(&[
        "--hot-capacity",
        "provisioned",
        "--format",
        "json",
    ]))
    .unwrap();
    let hot_items: Vec<&str> = provisioned["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["service"] == "DynamoDB")
        .map(|i| i["item"].as_str().unwrap())
        .collect();
    assert_eq!(
        hot_items,
        [
            "write capacity (hot events, provisioned)",
            "read capacity (provisioned)",
            "storage (hot events)"
        ]
    );
    assert_eq!(provisioned["inputs"]["hot_capacity"], "provisioned");

    // A bigger task: 2 vCPU × 730 h, 4 GB × 730 h.
    let big: Value = serde_json::from_str(&cost(&[
        "--task-cpu",
        "2048",
        "--task-memory",
        "4096",
        "--format",
        "json",
    ]))
    .unwrap();
    let quantity = |item: &str| {
        big["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["item"] == item)
            .unwrap()["quantity"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(quantity("vCPU"), 1460.0);
    assert_eq!(quantity("memory"), 2920.0);
}

#[test]
fn a_region_without_prices_is_refused() {
    let out = spate()
        .args(["cost", "--events-per-day", "1000", "--region", "eu-west-1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no price table for region eu-west-1"), "{err}");
    let out = spate()
        .args(["cost", "--events-per-day", "1000", "--hot-share", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = spate()
        .args(["cost", "--events-per-day", "1000", "--task-cpu", "1024"])
        .args(["--task-memory", "1024"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--task-memory 1024 does not go with --task-cpu 1024"),
        "{err}"
    );
}
