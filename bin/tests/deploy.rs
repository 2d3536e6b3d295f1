//! `deploy/`: the container image and the CloudFormation stack.
//!
//! - `deploy/aws/spate.yaml` lints clean with cfn-lint and checkov (every
//!   checkov skip carries its reason), and `deploy/Dockerfile` with hadolint
//!   (all three from the test virtualenv of `scripts/python-venv.sh`).
//! - What moto's CloudFormation does not model (Application Auto Scaling,
//!   alarms, bucket and queue policies, Glue, Secrets Manager) is asserted on
//!   the parsed template.
//! - The stack is created in moto (started by `scripts/test.sh`), and `spate
//!   run` started as the task definition starts it (the image's command,
//!   `deploy/aws/spate.toml`, the task's environment) moves events from the
//!   stack's queue to its S3 lake, its DynamoDB hot table and its SNS topic.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use spate_test_support::emulator::{boto, endpoint};
use spate_test_support::repo;
use spate_test_support::service::Service;
use spate_test_support::unique;
use support::spate;

fn template_path() -> PathBuf {
    repo().join("deploy/aws/spate.yaml")
}

/// A program of the test virtualenv (beside its python).
fn venv_tool(name: &str) -> PathBuf {
    Path::new(&spate_test_support::lake::python())
        .parent()
        .expect("the venv's bin directory")
        .join(name)
}

/// Runs a tool, returning (success, stdout, stderr).
fn run_tool(command: &mut Command) -> (bool, String, String) {
    let out = command
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The template as JSON, read by cfn-lint's own CloudFormation YAML decoder
/// (short-form intrinsics become `{"Ref": ...}`, `{"Fn::GetAtt": ...}`).
fn template() -> Value {
    let (ok, stdout, stderr) = run_tool(
        Command::new(spate_test_support::lake::python())
            .arg("-c")
            .arg(
                "import json, sys\n\
                 from cfnlint.decode import decode\n\
                 template, problems = decode(sys.argv[1])\n\
                 assert not problems, problems\n\
                 print(json.dumps(template))\n",
            )
            .arg(template_path()),
    );
    assert!(ok, "cannot decode the template: {stderr}");
    serde_json::from_str(&stdout).unwrap()
}

fn resources_of_type<'a>(template: &'a Value, kind: &str) -> Vec<(&'a String, &'a Value)> {
    template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .collect()
}

#[test]
fn template_lints_clean_with_cfn_lint() {
    let (ok, stdout, stderr) = run_tool(Command::new(venv_tool("cfn-lint")).arg(template_path()));
    assert!(
        ok && stdout.trim().is_empty(),
        "cfn-lint:\n{stdout}{stderr}"
    );
}

#[test]
fn template_passes_checkov_and_every_skip_says_why() {
    let (_, stdout, stderr) = run_tool(
        Command::new(venv_tool("checkov"))
            .args(["--framework", "cloudformation", "--skip-download"])
            .args(["--output", "json", "--file"])
            .arg(template_path())
            // No calls home: the checks are the ones shipped with checkov.
            .env("BC_SKIP_MAPPING", "TRUE")
            .env("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", "false"),
    );
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("checkov printed no report ({e}):\n{stdout}\n{stderr}"));
    let summary = &report["summary"];
    let failed: Vec<String> = report["results"]["failed_checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {} {}", c["check_id"], c["resource"], c["check_name"]))
        .collect();
    assert!(failed.is_empty(), "checkov failures: {failed:#?}");
    assert_eq!(summary["parsing_errors"], 0, "{summary}");
    assert!(summary["passed"].as_u64().unwrap() >= 30, "{summary}");

    // Every skip in the template has a reason, and every check checkov
    // skipped is one of them.
    let template = template();
    let mut documented = BTreeSet::new();
    for (name, resource) in template["Resources"].as_object().unwrap() {
        for skip in resource["Metadata"]["checkov"]["skip"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let reason = skip["comment"].as_str().unwrap_or("");
            assert!(reason.len() > 20, "{name}: skip {skip} without a reason");
            documented.insert(format!("{}/{}", name, skip["id"].as_str().unwrap()));
        }
    }
    for skipped in report["results"]["skipped_checks"].as_array().unwrap() {
        let resource = skipped["resource"].as_str().unwrap();
        let name = resource.rsplit('.').next().unwrap();
        let id = format!("{name}/{}", skipped["check_id"].as_str().unwrap());
        assert!(documented.contains(&id), "{id} skipped without metadata");
    }
}

#[test]
fn dockerfile_lints_clean_with_hadolint_and_ships_the_dist_profile() {
    let dockerfile = repo().join("deploy/Dockerfile");
    let (ok, stdout, stderr) = run_tool(Command::new(venv_tool("hadolint")).arg(&dockerfile));
    assert!(
        ok && stdout.trim().is_empty(),
        "hadolint:\n{stdout}{stderr}"
    );

    let text = std::fs::read_to_string(&dockerfile).unwrap();
    assert!(
        text.contains("--profile dist"),
        "release build with the dist profile"
    );
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("[profile.dist]"),
        "Cargo.toml has the dist profile"
    );
    // Multi-stage, non-root, SIGTERM, health check through the binary.
    assert!(text.matches("\nFROM ").count() >= 2, "multi-stage");
    let user = text
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert!(!user.contains("root") && !user.ends_with(" 0"), "{user}");
    assert!(text.contains("STOPSIGNAL SIGTERM"));
    assert!(text.contains("\"health\""), "HEALTHCHECK runs spate health");
    assert!(text.contains("SPATE_LISTEN=0.0.0.0:8470"));
    assert!(text.contains("deploy/aws/spate.toml"));
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    for entry in ["target", ".git"] {
        assert!(
            ignore.lines().any(|l| l == entry),
            ".dockerignore lacks {entry}"
        );
    }
}

#[test]
fn template_scales_on_backlog_per_task_and_alarms_to_the_topic() {
    let t = template();
    let r = &t["Resources"];

    // Target tracking on SQS visible messages ÷ running tasks, guarded
    // against zero tasks.
    let target = &r["ScalableTarget"]["Properties"];
    assert_eq!(target["ServiceNamespace"], "ecs");
    assert_eq!(target["ScalableDimension"], "ecs:service:DesiredCount");
    assert_eq!(target["MinCapacity"], json!({"Ref": "MinTasks"}));
    assert_eq!(
        target["MaxCapacity"],
        json!({"Fn::If": ["WithKinesis", {"Ref": "KinesisShardCount"}, {"Ref": "MaxTasks"}]}),
        "with Kinesis the shard count caps the tasks"
    );
    let backlog = &r["BacklogPerTaskScaling"]["Properties"];
    assert_eq!(backlog["PolicyType"], "TargetTrackingScaling");
    assert_eq!(backlog["ScalingTargetId"], json!({"Ref": "ScalableTarget"}));
    let config = &backlog["TargetTrackingScalingPolicyConfiguration"];
    assert_eq!(config["TargetValue"], json!({"Ref": "BacklogPerTask"}));
    let metrics = config["CustomizedMetricSpecification"]["Metrics"]
        .as_array()
        .unwrap();
    let by_id = |id: &str| {
        metrics
            .iter()
            .find(|m| m["Id"] == id)
            .unwrap_or_else(|| panic!("no metric {id}"))
    };
    let visible = &by_id("visible")["MetricStat"]["Metric"];
    assert_eq!(visible["Namespace"], "AWS/SQS");
    assert_eq!(visible["MetricName"], "ApproximateNumberOfMessagesVisible");
    assert_eq!(
        visible["Dimensions"][0]["Value"],
        json!({"Fn::GetAtt": ["Queue", "QueueName"]})
    );
    let tasks = &by_id("tasks")["MetricStat"]["Metric"];
    assert_eq!(tasks["MetricName"], "RunningTaskCount");
    let expression = by_id("backlog_per_task");
    assert_eq!(
        expression["Expression"],
        "IF(tasks >= 1, visible / tasks, visible)"
    );
    let returned: Vec<&Value> = metrics.iter().filter(|m| m["ReturnData"] == true).collect();
    assert_eq!(returned, [expression], "one series is tracked");

    let kinesis = &r["KinesisLagScaling"];
    assert_eq!(kinesis["Condition"], "WithKinesis");
    let age = &kinesis["Properties"]["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]
        ["Metrics"][0]["MetricStat"]["Metric"];
    assert_eq!(age["MetricName"], "GetRecords.IteratorAgeMilliseconds");

    // Alarms: the five the issue names (and Kinesis lag), all to the topic.
    let alarms = resources_of_type(&t, "AWS::CloudWatch::Alarm");
    for (name, alarm) in &alarms {
        let p = &alarm["Properties"];
        assert_eq!(p["AlarmActions"], json!([{"Ref": "AlertTopic"}]), "{name}");
        assert_eq!(p["OKActions"], json!([{"Ref": "AlertTopic"}]), "{name}");
        assert!(p["AlarmDescription"].as_str().unwrap().len() > 20, "{name}");
    }
    let names: BTreeSet<&str> = alarms.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "DeadLetterQueueNotEmptyAlarm",
        "QueueLagAlarm",
        "KinesisLagAlarm",
        "DeadLettersRateAlarm",
        "TasksAtMaxAlarm",
        "ActorRestartsAlarm",
        "HotTableThrottledAlarm",
    ] {
        assert!(names.contains(expected), "no {expected}");
    }
    let throttled = &r["HotTableThrottledAlarm"]["Properties"];
    assert_eq!(throttled["MetricName"], "WriteThrottleEvents");
    assert_eq!(
        throttled["Dimensions"][0]["Value"],
        json!({"Ref": "HotTable"})
    );
    let dlq = &r["DeadLetterQueueNotEmptyAlarm"]["Properties"];
    assert_eq!(
        dlq["Dimensions"][0]["Value"],
        json!({"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]})
    );
    assert_eq!(dlq["Threshold"], 0);
    // The Spate metrics the alarms read are ones its EMF lines carry, with
    // the `stack` dimension deploy/aws/spate.toml sets.
    let toml = std::fs::read_to_string(repo().join("deploy/aws/spate.toml")).unwrap();
    assert!(toml.contains("stack = \"${SPATE_STACK}\""));
    let dead = &r["DeadLettersRateAlarm"]["Properties"]["Metrics"];
    assert_eq!(
        dead[0]["MetricStat"]["Metric"]["MetricName"],
        "spate_dead_letters_total"
    );
    assert_eq!(
        dead[0]["MetricStat"]["Metric"]["Dimensions"][0]["Name"],
        "stack"
    );
    // Task failures are reported too (an EventBridge rule to the topic).
    let rule = &r["TaskFailedRule"]["Properties"];
    assert_eq!(rule["Targets"][0]["Arn"], json!({"Ref": "AlertTopic"}));
    assert_eq!(
        rule["EventPattern"]["detail"]["lastStatus"],
        json!(["STOPPED"])
    );
    // The dashboard body is JSON once its substitutions are made.
    let body = r["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
        .as_str()
        .unwrap();
    let substituted = substitute_placeholders(body);
    let dashboard: Value = serde_json::from_str(&substituted)
        .unwrap_or_else(|e| panic!("dashboard body is not JSON: {e}\n{substituted}"));
    assert!(dashboard["widgets"].as_array().unwrap().len() >= 5);
}

/// `HotTableCapacity=provisioned`: the table is provisioned at the scaling
/// minimums, and write and read capacity track utilisation between the
/// stack's bounds; on demand (the default) it has neither.
#[test]
fn a_provisioned_hot_table_scales_its_capacity_on_utilisation() {
    let t = template();
    let r = &t["Resources"];
    let table = &r["HotTable"]["Properties"];
    assert_eq!(
        table["BillingMode"],
        json!({"Fn::If": ["HotProvisioned", "PROVISIONED", "PAY_PER_REQUEST"]})
    );
    assert_eq!(t["Parameters"]["HotTableCapacity"]["Default"], "on-demand");
    for (target, policy, dimension, min, metric) in [
        (
            "HotTableWriteScalableTarget",
            "HotTableWriteScaling",
            "dynamodb:table:WriteCapacityUnits",
            json!({"Ref": "HotTableMinWriteCapacity"}),
            "DynamoDBWriteCapacityUtilization",
        ),
        (
            "HotTableReadScalableTarget",
            "HotTableReadScaling",
            "dynamodb:table:ReadCapacityUnits",
            json!({"Ref": "HotTableMinReadCapacity"}),
            "DynamoDBReadCapacityUtilization",
        ),
    ] {
        assert_eq!(r[target]["Condition"], "HotProvisioned", "{target}");
        assert_eq!(r[policy]["Condition"], "HotProvisioned", "{policy}");
        let target_props = &r[target]["Properties"];
        assert_eq!(target_props["ServiceNamespace"], "dynamodb");
        assert_eq!(target_props["ScalableDimension"], dimension);
        assert_eq!(
            target_props["ResourceId"],
            json!({"Fn::Sub": "table/${HotTable}"})
        );
        assert_eq!(target_props["MinCapacity"], min);
        let config = &r[policy]["Properties"]["TargetTrackingScalingPolicyConfiguration"];
        assert_eq!(
            r[policy]["Properties"]["ScalingTargetId"],
            json!({"Ref": target})
        );
        assert_eq!(
            config["TargetValue"],
            json!({"Ref": "HotTableTargetUtilisation"})
        );
        assert_eq!(
            config["PredefinedMetricSpecification"]["PredefinedMetricType"],
            metric
        );
    }

    // Created in moto: a provisioned table at the minimums.
    let name = unique("spate-provisioned");
    let stack = create_stack(
        &name,
        &json!({"HotTableCapacity": "provisioned", "HotTableMinWriteCapacity": 40}),
    );
    assert_eq!(stack["status"], "CREATE_COMPLETE", "{stack}");
    let described = boto(
        r#"
t = ddb.describe_table(TableName=ARGS['table'])['Table']
print(json.dumps({'mode': t.get('BillingModeSummary', {}).get('BillingMode', 'PROVISIONED'),
                  'throughput': t['ProvisionedThroughput']}))
"#,
        &json!({"table": stack["outputs"]["HotTableName"]}),
    );
    assert_eq!(described["mode"], "PROVISIONED", "{described}");
    assert_eq!(
        described["throughput"]["WriteCapacityUnits"], 40,
        "{described}"
    );
    assert_eq!(
        described["throughput"]["ReadCapacityUnits"], 5,
        "{described}"
    );
}

/// `${Name}` and `${AWS::Region}` replaced by `x`, as CloudFormation's
/// `Fn::Sub` would with real values.
fn substitute_placeholders(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closed ${") + start;
        out.push('x');
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn template_secures_the_data_and_scopes_the_task_role() {
    let t = template();
    let r = &t["Resources"];

    // The lake: KMS, public access blocked, TLS only, Glacier then expiry,
    // dead letters sooner.
    let bucket = &r["LakeBucket"]["Properties"];
    assert_eq!(
        bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
            ["SSEAlgorithm"],
        "aws:kms"
    );
    for key in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(bucket["PublicAccessBlockConfiguration"][key], true, "{key}");
    }
    let rules = bucket["LifecycleConfiguration"]["Rules"]
        .as_array()
        .unwrap();
    let rule = |prefix: &str| {
        rules
            .iter()
            .find(|r| r["Prefix"] == prefix)
            .unwrap_or_else(|| panic!("no lifecycle rule for {prefix}"))
    };
    let lake = rule("spate/logs/");
    assert_eq!(lake["Transitions"][0]["StorageClass"], "GLACIER");
    assert_eq!(
        lake["Transitions"][0]["TransitionInDays"],
        json!({"Ref": "LakeGlacierAfterDays"})
    );
    assert_eq!(
        lake["ExpirationInDays"],
        json!({"Ref": "LakeExpireAfterDays"})
    );
    assert_eq!(
        rule("spate/deadletter/")["ExpirationInDays"],
        json!({"Ref": "DeadLetterExpireAfterDays"})
    );
    let tls_only = |policy: &Value| {
        policy["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| {
                s["Effect"] == "Deny" && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
            })
    };
    assert!(tls_only(&r["LakeBucketPolicy"]["Properties"]));
    assert!(tls_only(&r["QueuePolicy"]["Properties"]));

    // Queues: redrive to the DLQ, SSE with the stack key.
    let queue = &r["Queue"]["Properties"];
    assert_eq!(
        queue["RedrivePolicy"]["deadLetterTargetArn"],
        json!({"Fn::GetAtt": ["DeadLetterQueue", "Arn"]})
    );
    assert_eq!(queue["KmsMasterKeyId"], json!({"Ref": "Key"}));
    assert_eq!(
        r["DeadLetterQueue"]["Properties"]["KmsMasterKeyId"],
        json!({"Ref": "Key"})
    );

    // Tables: the lease table on demand (the hot table's mode is a
    // parameter: a_provisioned_hot_table_scales_its_capacity_on_utilisation),
    // TTL on expires_at (hot), point-in-time recovery.
    assert_eq!(
        r["LeaseTable"]["Properties"]["BillingMode"],
        "PAY_PER_REQUEST"
    );
    for name in ["HotTable", "LeaseTable"] {
        let table = &r[name]["Properties"];
        assert_eq!(
            table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true,
            "{name}"
        );
    }
    let hot = &r["HotTable"]["Properties"];
    assert_eq!(
        hot["TimeToLiveSpecification"]["AttributeName"],
        "expires_at"
    );
    assert_eq!(hot["TimeToLiveSpecification"]["Enabled"], true);

    // Topic with KMS; the optional email subscription; the webhook secret.
    assert_eq!(
        r["AlertTopic"]["Properties"]["KmsMasterKeyId"],
        json!({"Ref": "Key"})
    );
    assert_eq!(r["AlertEmailSubscription"]["Condition"], "WithEmail");
    assert_eq!(r["WebhookSecret"]["Type"], "AWS::SecretsManager::Secret");
    // Kinesis (a condition) fed by CloudWatch Logs subscription filters.
    assert_eq!(r["Stream"]["Condition"], "WithKinesis");
    let filters = resources_of_type(&t, "AWS::Logs::SubscriptionFilter");
    assert_eq!(filters.len(), 3);
    for (name, filter) in filters {
        assert_eq!(
            filter["Properties"]["DestinationArn"],
            json!({"Fn::GetAtt": ["Stream", "Arn"]}),
            "{name}"
        );
    }

    // The Glue table is deploy/glue/logs_table.json over this bucket.
    let glue: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("deploy/glue/logs_table.json")).unwrap(),
    )
    .unwrap();
    let table = &r["GlueTable"]["Properties"]["TableInput"];
    let columns = |v: &Value| -> Vec<(String, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["Name"].as_str().unwrap().to_string(),
                    c["Type"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        columns(&table["StorageDescriptor"]["Columns"]),
        columns(&glue["StorageDescriptor"]["Columns"])
    );
    assert_eq!(
        columns(&table["PartitionKeys"]),
        columns(&glue["PartitionKeys"])
    );
    for (key, value) in glue["Parameters"].as_object().unwrap() {
        if key != "storage.location.template" {
            assert_eq!(&table["Parameters"][key], value, "{key}");
        }
    }

    // Least privilege: no statement of the task role on "*"; each names a
    // resource of this stack.
    let statements = r["TaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let mut statements: Vec<&Value> = statements
        .iter()
        .map(|s| match s.get("Fn::If") {
            Some(branches) => &branches[1],
            None => s,
        })
        .collect();
    statements.retain(|s| s.get("Effect").is_some());
    assert!(statements.len() >= 8);
    // A resource of this stack: a Ref, a GetAtt, a Sub on one (or, for Glue,
    // the stack's database and table, and the account's catalog that
    // BatchCreatePartition also needs).
    let names_a_stack_resource = |resource: &Value| {
        resource.get("Ref").is_some()
            || resource.get("Fn::GetAtt").is_some()
            || resource
                .get("Fn::Sub")
                .and_then(Value::as_str)
                .is_some_and(|s| {
                    s.starts_with("${") || s.contains("${GlueDatabase}") || s.ends_with(":catalog")
                })
    };
    for statement in statements {
        let resource = &statement["Resource"];
        let text = resource.to_string();
        let resources = match resource.as_array() {
            Some(list) => list.iter().collect(),
            None => vec![resource],
        };
        assert!(
            resources.into_iter().all(names_a_stack_resource),
            "{statement}: {text}"
        );
        assert!(!text.contains("\"*\""), "{statement}");
        let actions = statement["Action"].to_string();
        assert!(!actions.contains(":*"), "{statement}");
    }

    // The service: circuit breaker with rollback, awslogs, the health check,
    // a stop timeout above Spate's 25 s drain, ephemeral storage.
    let service = &r["Service"]["Properties"];
    let breaker = &service["DeploymentConfiguration"]["DeploymentCircuitBreaker"];
    assert_eq!(breaker["Enable"], true);
    assert_eq!(breaker["Rollback"], true);
    assert_eq!(
        r["Cluster"]["Properties"]["ClusterSettings"][0],
        json!({"Name": "containerInsights", "Value": "enabled"})
    );
    let task = &r["TaskDefinition"]["Properties"];
    assert_eq!(
        task["EphemeralStorage"]["SizeInGiB"],
        json!({"Ref": "EphemeralStorageGiB"})
    );
    let container = &task["ContainerDefinitions"][0];
    assert!(container["StopTimeout"].as_u64().unwrap() > 25);
    assert_eq!(container["LogConfiguration"]["LogDriver"], "awslogs");
    let check = container["HealthCheck"]["Command"].to_string();
    assert!(
        check.contains("health") && check.contains("/healthz"),
        "{check}"
    );
    // The task's environment sets every `${VAR}` deploy/aws/spate.toml needs.
    let env: BTreeSet<&str> = container["Environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Name"].as_str().unwrap())
        .collect();
    for var in toml_variables(&toml_text()) {
        assert!(env.contains(var.as_str()), "the task does not set {var}");
    }
}

fn toml_text() -> String {
    std::fs::read_to_string(repo().join("deploy/aws/spate.toml")).unwrap()
}

/// The `${VAR}` (without fallback) of the non-comment lines.
fn toml_variables(text: &str) -> BTreeSet<String> {
    let mut vars = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let mut rest = line;
        while let Some(start) = rest.find("${") {
            let end = rest[start..].find('}').unwrap() + start;
            let name = &rest[start + 2..end];
            if !name.contains(":-") {
                vars.insert(name.to_string());
            }
            rest = &rest[end + 1..];
        }
    }
    vars
}

/// Creates the stack in moto with `parameters` (besides the VPC, subnet and
/// image) and returns its outputs and the container's environment.
fn create_stack(name: &str, parameters: &Value) -> Value {
    boto(
        r#"
cfn = boto3.client('cloudformation', **kw)
ec2 = boto3.client('ec2', **kw)
ecs = boto3.client('ecs', **kw)
vpc = ec2.create_vpc(CidrBlock='10.42.0.0/16')['Vpc']['VpcId']
subnet = ec2.create_subnet(VpcId=vpc, CidrBlock='10.42.1.0/24')['Subnet']['SubnetId']
params = dict(VpcId=vpc, SubnetIds=subnet, ImageUri='spate:test', **ARGS['parameters'])
cfn.create_stack(
    StackName=ARGS['name'],
    TemplateBody=open(ARGS['template']).read(),
    Parameters=[{'ParameterKey': k, 'ParameterValue': str(v)} for k, v in params.items()],
    Capabilities=['CAPABILITY_IAM'],
)
deadline = time.time() + 60
while True:
    stack = cfn.describe_stacks(StackName=ARGS['name'])['Stacks'][0]
    if not stack['StackStatus'].endswith('IN_PROGRESS') or time.time() > deadline:
        break
    time.sleep(0.2)
outputs = {o['OutputKey']: o['OutputValue'] for o in stack.get('Outputs', [])}
env = {}
if 'TaskDefinitionArn' in outputs:
    task = ecs.describe_task_definition(taskDefinition=outputs['TaskDefinitionArn'])['taskDefinition']
    env = {e['name']: e['value'] for e in task['containerDefinitions'][0]['environment']}
print(json.dumps({'status': stack['StackStatus'], 'reason': stack.get('StackStatusReason'),
                  'outputs': outputs, 'env': env}))
"#,
        &json!({
            "name": name,
            "template": template_path(),
            "parameters": parameters,
        }),
    )
}

/// With Kinesis, the stack creates the stream and the lease table, and the
/// task's configuration (with the Kinesis source the stack adds) is valid.
#[test]
fn kinesis_variant_deploys_to_the_emulator_with_a_valid_config() {
    let name = unique("spate-kinesis");
    let stack = create_stack(
        &name,
        &json!({"EnableKinesis": "true", "KinesisShardCount": 3, "SubscribedLogGroups": "/app/a,/app/b"}),
    );
    assert_eq!(stack["status"], "CREATE_COMPLETE", "{stack}");
    let described = boto(
        r#"
s = kinesis.describe_stream_summary(StreamName=ARGS['stream'])['StreamDescriptionSummary']
t = ddb.describe_table(TableName=ARGS['leases'])['Table']
print(json.dumps({'shards': s['OpenShardCount'], 'key': t['KeySchema']}))
"#,
        &json!({
            "stream": stack["outputs"]["StreamName"],
            "leases": stack["outputs"]["LeaseTableName"],
        }),
    );
    assert_eq!(described["shards"], 3);
    assert_eq!(
        described["key"],
        json!([{"AttributeName": "lease_key", "KeyType": "HASH"}])
    );
    let extra = stack["env"]["SPATE_CONFIG_EXTRA"].as_str().unwrap();
    assert!(extra.contains("[[sources.kinesis]]"), "{extra}");
    let (ok, stdout, stderr) = run_tool(
        spate()
            .args(["config", "check"])
            .arg(repo().join("deploy/aws/spate.toml"))
            .envs(task_env(&stack)),
    );
    assert!(ok, "{stdout}{stderr}");
}

/// The container's environment from the task definition.
fn task_env(stack: &Value) -> Vec<(String, String)> {
    stack["env"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn stack_deploys_to_the_emulator_and_spate_moves_events_end_to_end() {
    let name = unique("spate-stack");
    let stack = create_stack(&name, &json!({}));
    assert_eq!(stack["status"], "CREATE_COMPLETE", "{stack}");
    let outputs = &stack["outputs"];
    for key in [
        "QueueUrl",
        "DeadLetterQueueUrl",
        "LakeBucketName",
        "HotTableName",
        "AlertTopicArn",
        "ClusterName",
        "ServiceName",
        "TaskDefinitionArn",
        "LogGroupName",
    ] {
        assert!(outputs[key].is_string(), "no output {key}: {stack}");
    }
    let env = task_env(&stack);
    let env_value = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("the task sets no {name}"))
    };
    assert_eq!(env_value("SPATE_LISTEN"), "0.0.0.0:8470");
    assert_eq!(
        env_value("SPATE_QUEUE_URL"),
        outputs["QueueUrl"].as_str().unwrap()
    );
    assert_eq!(env_value("SPATE_CONFIG_EXTRA"), "");

    // What the stack built: the redrive to the DLQ; the hot table's keys;
    // an ECS service on the task definition. A queue subscribed to the alert
    // topic stands in for the email.
    let setup = boto(
        r#"
ecs = boto3.client('ecs', **kw)
a = sqs.get_queue_attributes(QueueUrl=ARGS['queue'], AttributeNames=['All'])['Attributes']
dlq_arn = sqs.get_queue_attributes(QueueUrl=ARGS['dlq'], AttributeNames=['QueueArn'])['Attributes']['QueueArn']
t = ddb.describe_table(TableName=ARGS['table'])['Table']
svc = ecs.describe_services(cluster=ARGS['cluster'], services=[ARGS['service']])['services'][0]
sub = sqs.create_queue(QueueName=ARGS['name'] + '-alerts')['QueueUrl']
sub_arn = sqs.get_queue_attributes(QueueUrl=sub, AttributeNames=['QueueArn'])['Attributes']['QueueArn']
sns.subscribe(TopicArn=ARGS['topic'], Protocol='sqs', Endpoint=sub_arn, Attributes={'RawMessageDelivery': 'true'})
print(json.dumps({'redrive': json.loads(a['RedrivePolicy']), 'dlq_arn': dlq_arn,
                  'keys': t['KeySchema'], 'billing': t.get('BillingModeSummary', {}).get('BillingMode'),
                  'task': svc['taskDefinition'], 'sub': sub}))
"#,
        &json!({
            "name": name,
            "queue": outputs["QueueUrl"],
            "dlq": outputs["DeadLetterQueueUrl"],
            "table": outputs["HotTableName"],
            "cluster": outputs["ClusterName"],
            "service": outputs["ServiceName"],
            "topic": outputs["AlertTopicArn"],
        }),
    );
    assert_eq!(
        setup["redrive"]["deadLetterTargetArn"], setup["dlq_arn"],
        "{setup}"
    );
    assert_eq!(
        setup["keys"],
        json!([{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    );
    assert_eq!(setup["billing"], "PAY_PER_REQUEST");
    assert_eq!(setup["task"], outputs["TaskDefinitionArn"]);

    // The emulator's CloudFormation leaves the Glue database and table out:
    // made here as the template declares them (the template's table is
    // deploy/glue/logs_table.json, asserted above).
    boto(
        r#"
names = [d['Name'] for d in glue.get_databases()['DatabaseList']]
if ARGS['database'] not in names:
    glue.create_database(DatabaseInput={'Name': ARGS['database']})
table = json.loads(ARGS['table'])
table['StorageDescriptor']['Location'] = 's3://' + ARGS['bucket'] + '/spate/logs/'
try:
    glue.create_table(DatabaseName=ARGS['database'], TableInput=table)
except glue.exceptions.AlreadyExistsException:
    pass
print('true')
"#,
        &json!({
            "database": env_value("SPATE_GLUE_DATABASE"),
            "bucket": outputs["LakeBucketName"],
            "table": std::fs::read_to_string(repo().join("deploy/glue/logs_table.json")).unwrap(),
        }),
    );

    // `spate run` as the image runs it (its CMD), with the task's environment;
    // SPATE_LISTEN moved to a free loopback port, AWS at the emulator.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = repo().join("deploy/aws/spate.toml");
    let mut command = spate();
    command
        .args(["run", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .envs(env.iter().cloned())
        .env("SPATE_LISTEN", "127.0.0.1:0")
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("SPATE_LOG", "warn");
    let service = Service::spawn(command, &data);
    // SPATE_LISTEN wins over the file's http.listen (0.0.0.0:8470).
    assert!(
        service.url.starts_with("http://127.0.0.1:") && !service.url.ends_with(":8470"),
        "{}",
        service.url
    );

    // The container health check against it.
    let (ok, stdout, stderr) = run_tool(
        spate()
            .args(["health", "--url"])
            .arg(format!("{}/healthz", service.url)),
    );
    assert!(ok, "spate health: {stdout}{stderr}");

    // 10 messages of 100 events: `pay` logs 3 criticals in one window, and the
    // last message moves event time two windows on, so that window closes.
    let (w0, messages) = spate_test_support::emulator::alerting_messages();
    spate_test_support::emulator::send_messages(&outputs["QueueUrl"], &messages);
    // Every message received (in flight until the lake file is committed,
    // at shutdown here: max_file_age is 5 minutes).
    let received = boto(
        r#"
deadline = time.time() + 60
while time.time() < deadline:
    a = sqs.get_queue_attributes(QueueUrl=ARGS['queue'], AttributeNames=['All'])['Attributes']
    if int(a['ApproximateNumberOfMessages']) == 0:
        print('true'); break
    time.sleep(0.2)
else:
    print('false')
"#,
        &json!({ "queue": outputs["QueueUrl"] }),
    );
    assert_eq!(received, true, "{}", service.output());
    // The hot store commits within 30 s (`commit_interval`): `spate hot` with the same config
    // reads the stack's table.
    let hot_count = || {
        let (ok, stdout, stderr) = run_tool(
            spate()
                .args([
                    "hot", "recent", "--since", "100000d", "--limit", "100000", "--json",
                ])
                .args(["--service", "pay", "--config"])
                .arg(&config)
                .envs(env.iter().cloned())
                .env("AWS_ENDPOINT_URL", endpoint())
                .env("AWS_REGION", "us-east-1"),
        );
        assert!(ok, "spate hot: {stderr}");
        stdout.lines().count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while hot_count() < 102 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(hot_count(), 102, "{}", service.output());

    // SIGTERM, as ECS stops a task: the drain commits the lake to S3 and the
    // acknowledgements delete the messages.
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");

    let lake = boto(
        r#"
import pyarrow.parquet as pq, io
keys = [o['Key'] for p in s3.get_paginator('list_objects_v2').paginate(Bucket=ARGS['bucket']) for o in p.get('Contents', [])]
rows = 0
for k in keys:
    if k.endswith('.parquet'):
        rows += pq.read_table(io.BytesIO(s3.get_object(Bucket=ARGS['bucket'], Key=k)['Body'].read())).num_rows
a = sqs.get_queue_attributes(QueueUrl=ARGS['queue'], AttributeNames=['All'])['Attributes']
left = int(a['ApproximateNumberOfMessages']) + int(a['ApproximateNumberOfMessagesNotVisible'])
parts = glue.get_partitions(DatabaseName=ARGS['database'], TableName='logs')['Partitions']
locations = sorted(p['StorageDescriptor']['Location'] for p in parts)
print(json.dumps({'keys': keys, 'rows': rows, 'left': left, 'partitions': locations}))
"#,
        &json!({
            "bucket": outputs["LakeBucketName"],
            "queue": outputs["QueueUrl"],
            "database": env_value("SPATE_GLUE_DATABASE"),
        }),
    );
    // Every sealed file's partition is in the stack's Glue table (Athena
    // needs no service filter), and nothing else is.
    let mut file_dirs: Vec<String> = lake["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k.as_str().unwrap().rsplit_once('/'))
        .filter(|(_, name)| name.ends_with(".parquet"))
        .map(|(dir, _)| {
            format!(
                "s3://{}/{dir}/",
                outputs["LakeBucketName"].as_str().unwrap()
            )
        })
        .collect();
    file_dirs.sort();
    file_dirs.dedup();
    assert!(!file_dirs.is_empty(), "{lake}");
    assert_eq!(lake["partitions"], json!(file_dirs), "{lake}");
    assert_eq!(lake["rows"], 1000, "{lake}\n{output}");
    assert!(
        lake["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.as_str().unwrap().starts_with("spate/logs/dt=")),
        "{lake}"
    );
    assert_eq!(
        lake["left"], 0,
        "every message deleted after the drain: {lake}"
    );

    // The alert reached the stack's topic (and the queue subscribed to it).
    let alert = boto(
        r#"
deadline = time.time() + 20
found = None
while time.time() < deadline and found is None:
    r = sqs.receive_message(QueueUrl=ARGS['sub'], MaxNumberOfMessages=10, WaitTimeSeconds=1)
    for m in r.get('Messages', []):
        body = json.loads(m['Body'])
        if body.get('rule') == 'critical' and body.get('state') == 'firing':
            found = body
print(json.dumps(found))
"#,
        &json!({ "sub": setup["sub"] }),
    );
    assert_eq!(alert["service"], "pay", "{alert}\n{output}");
    assert_eq!(alert["window_start_ms"], w0, "{alert}");
    // The EMF lines carry the stack's dimension for the alarms and dashboard.
    assert!(
        output.contains(&format!("\"stack\":\"{name}\"")),
        "no EMF line with the stack dimension:\n{output}"
    );
}
