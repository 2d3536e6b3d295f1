//! The vocabulary of W1: service names, networks, message templates, paths, statuses and the
//! per-style level keys and spellings. Kept apart from the generator so the generator reads as
//! logic and this file as data.
//!
//! Keyword discipline (what makes the expected severity counts exact): INFO templates, every
//! placeholder value, every path and every field value contain none of the severity keywords
//! (critical, fatal, panic, emergency, error, exception, failed, failure, warning, warn,
//! deprecated) even as substrings. `*_KEYWORD` templates contain a keyword of their own severity
//! and none stronger; `*_PLAIN` templates contain none and are only used with an explicit level.

/// Service names; W3 uses them for log group names too.
pub(crate) const SERVICES: [&str; 32] = [
    "checkout",
    "cart",
    "payments",
    "orders",
    "inventory",
    "catalog",
    "search",
    "recommendations",
    "shipping",
    "pricing",
    "auth",
    "users",
    "profile",
    "notifications",
    "email-sender",
    "sms-gateway",
    "billing",
    "invoices",
    "ledger",
    "fraud-scoring",
    "gateway",
    "edge-proxy",
    "media",
    "thumbnails",
    "reviews",
    "wishlist",
    "loyalty",
    "coupons",
    "reporting",
    "scheduler",
    "bastion",
    "feature-flags",
];
/// The service whose hosts run sshd; its authentication messages carry `failed_login`.
pub(crate) const BASTION: usize = 30;

pub(crate) const SUBNETS: [&str; 5] = [
    "10.12.1.",
    "10.12.2.",
    "10.40.7.",
    "172.20.3.",
    "192.168.50.",
];
pub(crate) const CLIENT_NETS: [&str; 6] = [
    "203.0.113.",
    "198.51.100.",
    "192.0.2.",
    "81.2.69.",
    "10.1.2.",
    "100.64.12.",
];
pub(crate) const REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "us-west-2"];
pub(crate) const USERS: [&str; 16] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil",
];
pub(crate) const SSH_USERS: [&str; 10] = [
    "root", "admin", "test", "oracle", "ubuntu", "pi", "guest", "postgres", "git", "deploy",
];
pub(crate) const QUEUES: [&str; 6] = [
    "orders-events",
    "payments.settled",
    "email-outbox",
    "inventory-updates",
    "audit-log",
    "clickstream",
];
pub(crate) const TABLES: [&str; 8] = [
    "orders",
    "order_items",
    "customers",
    "payments",
    "inventory",
    "sessions",
    "ledger_entries",
    "products",
];
pub(crate) const SEARCH_WORDS: [&str; 7] = [
    "shoes",
    "red+dress",
    "laptop",
    "coffee+grinder",
    "usb-c+cable",
    "tent",
    "headphones",
];
pub(crate) const TENANTS: [&str; 6] = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark-industries",
];
pub(crate) const THREADS: [&str; 4] = [
    "worker-%n",
    "http-nio-8080-exec-%n",
    "main",
    "tokio-runtime-worker",
];
pub(crate) const LOGGERS: [&str; 5] = ["handlers", "db", "worker", "client", "app"];
/// Kubernetes' pod-suffix alphabet: no vowels, so random suffixes never spell a keyword.
pub(crate) const POD_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

// Message templates. Placeholders: %n 1–999, %N 1000–999999, %m milliseconds, %i client IP,
// %u user, %k ssh user, %o order id, %h 8 hex, %q queue, %t table, %s peer service, %p port,
// %w search words. INFO templates (and every placeholder value) contain none of the severity
// keywords; the `*_KEYWORD` templates contain a keyword of exactly their own severity or lower;
// `*_PLAIN` templates contain none and are only used with an explicit level.
pub(crate) const INFO: [&str; 24] = [
    "order %o placed by user %u with %n items",
    "payment authorized for order %o in %m ms",
    "user %u signed in from %i",
    "processed batch of %n messages from %q in %m ms",
    "scheduled job reindex-%h completed in %m ms",
    "connection pool stats: size %n, idle %n, waiting 0",
    "published %n events to %q",
    "call to %s completed in %m ms",
    "loaded %N rows from %t in %m ms",
    "health check ok, uptime %N s",
    "config reloaded, version %h",
    "shipment for order %o handed to carrier, tracking %h",
    "session %h refreshed for user %u",
    "rendered thumbnail %h in %m ms",
    "search for %w returned %n results in %m ms",
    "inventory reserved for order %o, sku count %n",
    "email queued for user %u via %q",
    "feature flag %h evaluated to true for user %u",
    "gc pause %m ms, heap %N KiB",
    "consumer lag on %q is %n messages",
    "opened connection to %i port %p",
    "flushed %N bytes to disk in %m ms",
    "cache refreshed: %N keys, hit ratio %n per mille",
    "starting request to %s with timeout 3000 ms",
];
pub(crate) const WARNING_KEYWORD: [&str; 8] = [
    "deprecated config key cache.ttl used, use cache.ttl_seconds",
    "warning: slow query on %t took %m ms",
    "connection pool near capacity (%n of 1000), warn threshold 900",
    "deprecated endpoint /v1/cart called by client %h",
    "warning: certificate for %s expires in %n days",
    "Warning: response from %s took %m ms, above 1000 ms budget",
    "disk usage warning on /var/lib/data: %n per mille used",
    "client %i uses deprecated TLS 1.1",
];
pub(crate) const WARNING_PLAIN: [&str; 5] = [
    "retrying request to %s, attempt %n of 5",
    "slow consumer on %q, lag %N messages",
    "rate limit nearly reached for tenant %h: %n requests in 1s",
    "circuit breaker half-open for %s",
    "queue %q depth %N above soft limit",
];
pub(crate) const ERROR_KEYWORD: [&str; 9] = [
    "failed to charge card for order %o: card declined",
    "error connecting to %t: connection refused",
    "unhandled exception in handler /api/v1/orders: NullPointerException",
    "request to %s failed after %n retries",
    "database error: deadlock detected on %t",
    "upstream %s reported failure, order %o rolled back",
    "error: timeout after %m ms waiting for %s",
    "failed to publish %n events to %q",
    "uncaught exception: TypeError: cannot read properties of undefined (reading id)",
];
pub(crate) const ERROR_PLAIN: [&str; 4] = [
    "payment provider timeout after %m ms for order %o",
    "connection refused by %i port %p",
    "could not acquire lock on %t within %m ms",
    "message %h moved to dead letter queue %q",
];
pub(crate) const CRITICAL_KEYWORD: [&str; 5] = [
    "panic: runtime error: index out of range [%n] with length %n",
    "fatal: out of memory, heap %N KiB",
    "critical: database %t unreachable, entering read-only mode",
    "emergency shutdown triggered: disk full on /var/lib/data",
    "FATAL: could not write to WAL for table %t",
];
pub(crate) const CRITICAL_PLAIN: [&str; 3] = [
    "all replicas of %t are down",
    "OOM killer terminated process %N",
    "data corruption detected in segment %h of %t",
];
/// sshd messages containing `failed`/`failure`: ERROR on keywords alone.
pub(crate) const SSHD_FAILED: [&str; 3] = [
    "Failed password for invalid user %k from %i port %p ssh2",
    "Failed password for %k from %i port %p ssh2",
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=%i user=%k",
];
/// sshd message without a keyword: only used with an explicit level.
pub(crate) const SSHD_INVALID: &str = "Invalid user %k from %i port %p";

pub(crate) const API_PATHS: [&str; 14] = [
    "/api/v1/orders",
    "/api/v1/orders/%N",
    "/api/v1/cart/items",
    "/api/v2/products/%N",
    "/api/v2/products/%N/reviews?page=%n",
    "/api/v2/search?q=%w&page=%n",
    "/api/v1/users/%u/profile",
    "/api/v1/payments/%o",
    "/api/v1/checkout",
    "/api/v1/shipments/%o/track",
    "/api/v1/coupons/%h",
    "/static/app.%h.js",
    "/images/%N.webp",
    "/healthz",
];
/// The only paths that ever answer 401.
pub(crate) const LOGIN_PATHS: [&str; 2] = ["/login", "/api/v1/auth/login"];
pub(crate) const CLIENT_STATUSES: [u16; 8] = [400, 403, 404, 404, 404, 409, 422, 429];
pub(crate) const SERVER_STATUSES: [u16; 5] = [500, 502, 503, 503, 504];
pub(crate) const OK_STATUSES: [u16; 10] = [200, 200, 200, 200, 200, 200, 201, 204, 302, 304];

/// Per-style level key and spellings (INFO, WARNING, ERROR, CRITICAL).
pub(crate) struct Style {
    /// Opening of the level field, up to the value's opening quote.
    pub key: &'static [u8],
    pub spellings: [&'static [&'static str]; 4],
}

pub(crate) const STYLES: [Style; 5] = [
    // pino / winston / log4j
    Style {
        key: b",\"level\":\"",
        spellings: [
            &["info", "INFO", "debug", "trace"],
            &["warn", "WARN"],
            &["error", "ERROR"],
            &["fatal", "FATAL"],
        ],
    },
    // GCP / syslog flavoured
    Style {
        key: b",\"severity\":\"",
        spellings: [
            &["INFO", "NOTICE", "notice", "DEBUG"],
            &["WARNING", "Warning"],
            &["ERROR", "Error"],
            &["CRITICAL", "crit"],
        ],
    },
    // logfmt-minded Go services
    Style {
        key: b",\"lvl\":\"",
        spellings: [
            &["info", "debug", "INFO"],
            &["warn", "Warning"],
            &["err", "ERR"],
            &["crit", "emerg"],
        ],
    },
    // Python logging
    Style {
        key: b",\"levelname\":\"",
        spellings: [&["INFO", "DEBUG"], &["WARNING"], &["ERROR"], &["CRITICAL"]],
    },
    // Elastic Common Schema: nested `log.level`, `@timestamp`
    Style {
        key: b",\"log\":{\"level\":\"",
        spellings: [
            &["info", "debug", "notice"],
            &["warn", "warning"],
            &["error", "err"],
            &["fatal", "critical"],
        ],
    },
];
pub(crate) const ECS_STYLE: usize = 4;
