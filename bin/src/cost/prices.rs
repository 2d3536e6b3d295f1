//! The AWS list prices `spate cost` multiplies by, one per line with its
//! source. us-east-1, first pricing tier, no free tier, no savings plans or
//! reserved capacity; on-demand except DynamoDB's provisioned capacity (its
//! price did not change with the November 2024 on-demand reduction).
//!
//! Recorded 2026-12-05 from the AWS pricing pages named on each line (this
//! machine cannot reach aws.amazon.com; the figures were checked against
//! third-party copies of those pages dated 2025–2026: Fargate and DynamoDB
//! on-demand after its November 2024 reduction). Re-check them there before
//! relying on a bill; a change is one line here.

/// The date the table was recorded.
pub const PRICES_AS_OF: &str = "2026-12-05";

/// The one region the table holds.
pub const REGION: &str = "us-east-1";

/// One price: US dollars per `unit`, and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// US dollars per unit.
    pub usd: f64,
    /// What one unit is.
    pub unit: &'static str,
    /// The pricing page.
    pub source: &'static str,
}

const FARGATE: &str = "https://aws.amazon.com/fargate/pricing/";
const SQS: &str = "https://aws.amazon.com/sqs/pricing/";
const KINESIS: &str = "https://aws.amazon.com/kinesis/data-streams/pricing/";
const DYNAMODB: &str = "https://aws.amazon.com/dynamodb/pricing/on-demand/";
const DYNAMODB_PROVISIONED: &str = "https://aws.amazon.com/dynamodb/pricing/provisioned/";
const S3: &str = "https://aws.amazon.com/s3/pricing/";
const CLOUDWATCH: &str = "https://aws.amazon.com/cloudwatch/pricing/";
const LAMBDA: &str = "https://aws.amazon.com/lambda/pricing/";

/// The price table of one region.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    /// Fargate Linux/x86 vCPU.
    pub fargate_vcpu_hour: Price,
    /// Fargate Linux/x86 memory.
    pub fargate_gb_hour: Price,
    /// Fargate ephemeral storage above the 20 GB included.
    pub fargate_storage_gb_hour: Price,
    /// SQS standard queue requests (each 64 KiB chunk of a payload is one).
    pub sqs_requests_million: Price,
    /// Kinesis Data Streams provisioned shard.
    pub kinesis_shard_hour: Price,
    /// Kinesis PUT payload units (25 KB each).
    pub kinesis_put_units_million: Price,
    /// DynamoDB on-demand write request units (1 KB each).
    pub dynamodb_wru_million: Price,
    /// DynamoDB provisioned write capacity (standard table class).
    pub dynamodb_wcu_hour: Price,
    /// DynamoDB provisioned read capacity (standard table class).
    pub dynamodb_rcu_hour: Price,
    /// DynamoDB standard table storage.
    pub dynamodb_gb_month: Price,
    /// S3 Standard storage (first 50 TB).
    pub s3_standard_gb_month: Price,
    /// S3 Glacier Flexible Retrieval storage.
    pub s3_glacier_gb_month: Price,
    /// S3 Standard PUT, COPY, POST, LIST requests.
    pub s3_put_thousand: Price,
    /// S3 Standard GET, SELECT and other requests.
    pub s3_get_thousand: Price,
    /// S3 lifecycle transitions into Glacier Flexible Retrieval.
    pub s3_glacier_transition_thousand: Price,
    /// CloudWatch custom metrics (first 10,000).
    pub cloudwatch_metric_month: Price,
    /// CloudWatch Logs ingestion (standard class).
    pub cloudwatch_logs_ingest_gb: Price,
    /// CloudWatch Logs storage.
    pub cloudwatch_logs_store_gb_month: Price,
    /// Lambda requests.
    pub lambda_requests_million: Price,
    /// Lambda duration, x86.
    pub lambda_gb_second: Price,
}

const fn price(usd: f64, unit: &'static str, source: &'static str) -> Price {
    Price { usd, unit, source }
}

/// us-east-1.
pub const US_EAST_1: Prices = Prices {
    fargate_vcpu_hour: price(0.04048, "vCPU-hour", FARGATE),
    fargate_gb_hour: price(0.004445, "GB-hour", FARGATE),
    fargate_storage_gb_hour: price(0.000111, "GB-hour", FARGATE),
    sqs_requests_million: price(0.40, "million requests", SQS),
    kinesis_shard_hour: price(0.015, "shard-hour", KINESIS),
    kinesis_put_units_million: price(0.014, "million PUT payload units", KINESIS),
    dynamodb_wru_million: price(0.625, "million write request units", DYNAMODB),
    dynamodb_wcu_hour: price(0.00065, "WCU-hour", DYNAMODB_PROVISIONED),
    dynamodb_rcu_hour: price(0.00013, "RCU-hour", DYNAMODB_PROVISIONED),
    dynamodb_gb_month: price(0.25, "GB-month", DYNAMODB),
    s3_standard_gb_month: price(0.023, "GB-month", S3),
    s3_glacier_gb_month: price(0.0036, "GB-month", S3),
    s3_put_thousand: price(0.005, "thousand requests", S3),
    s3_get_thousand: price(0.0004, "thousand requests", S3),
    s3_glacier_transition_thousand: price(0.03, "thousand transitions", S3),
    cloudwatch_metric_month: price(0.30, "metric-month", CLOUDWATCH),
    cloudwatch_logs_ingest_gb: price(0.50, "GB ingested", CLOUDWATCH),
    cloudwatch_logs_store_gb_month: price(0.03, "GB-month", CLOUDWATCH),
    lambda_requests_million: price(0.20, "million requests", LAMBDA),
    lambda_gb_second: price(0.0000166667, "GB-second", LAMBDA),
};

/// The table of `region`, or an error naming the regions there are.
pub fn for_region(region: &str) -> Result<&'static Prices, String> {
    match region {
        REGION => Ok(&US_EAST_1),
        other => Err(format!(
            "no price table for region {other}: the table holds {REGION} only (bin/src/cost/prices.rs)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_recorded_region_has_prices() {
        assert_eq!(for_region("us-east-1").unwrap(), &US_EAST_1);
        let err = for_region("eu-west-1").unwrap_err();
        assert!(
            err.contains("eu-west-1") && err.contains("us-east-1"),
            "{err}"
        );
    }
}
