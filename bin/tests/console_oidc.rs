//! Console sign-in through OIDC (`[console.oidc]`), end to end against a real
//! `spate run`:
//!
//! - a key pair generated here, its JWKS and a token endpoint served by a
//!   small local HTTP server: `Authorization: Bearer <ID token>` on
//!   `POST /v1/query` accepted for a good token, refused for a wrong
//!   signature, issuer, audience, an expired token, an unknown key, `alg`
//!   `none`, and a user in no mapped group (403); the browser flow
//!   (`/ui/oidc/start` → the issuer → `/ui/oidc/callback`) with state,
//!   nonce and PKCE opens a session; all of it in the audit trail;
//! - a real ID token of the emulator's Cognito user pool (moto signs it and
//!   serves the pool's JWKS), its group mapped to the role.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use axum::extract::State;
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use spate_test_support::console::{query, set_cookie};
use spate_test_support::emulator::{boto, endpoint};
use spate_test_support::service::Service;

const TOKEN: &str = "t0ken";
const ISSUER: &str = "https://issuer.test/pool-1";
const CLIENT: &str = "client-1";

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The big-endian integers of a DER `RSAPublicKey` (n, e).
fn rsa_components(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    fn read(der: &[u8], at: &mut usize) -> (u8, Vec<u8>) {
        let tag = der[*at];
        let mut len = usize::from(der[*at + 1]);
        *at += 2;
        if len & 0x80 != 0 {
            let n = len & 0x7f;
            len = der[*at..*at + n]
                .iter()
                .fold(0, |a, b| (a << 8) | usize::from(*b));
            *at += n;
        }
        let body = der[*at..*at + len].to_vec();
        *at += len;
        (tag, body)
    }
    let mut at = 0;
    let (tag, seq) = read(der, &mut at);
    assert_eq!(tag, 0x30);
    let mut at = 0;
    let (_, n) = read(&seq, &mut at);
    let (_, e) = read(&seq, &mut at);
    let strip = |v: Vec<u8>| v.into_iter().skip_while(|b| *b == 0).collect::<Vec<u8>>();
    (strip(n), strip(e))
}

/// An RSA key of the test issuer.
struct Signer {
    key: KeyPair,
    kid: String,
}

impl Signer {
    fn new(kid: &str) -> Signer {
        Signer {
            key: KeyPair::generate(KeySize::Rsa2048).unwrap(),
            kid: kid.into(),
        }
    }

    fn jwk(&self) -> Value {
        let (n, e) = rsa_components(self.key.public_key().as_ref());
        json!({
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e)
        })
    }

    /// A compact JWS of `claims` with `header` (whose `kid` defaults to
    /// this key's).
    fn sign_with(&self, mut header: Value, claims: &Value) -> String {
        if header.get("kid").is_none() {
            header["kid"] = json!(self.kid);
        }
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_with(json!({"alg": "RS256", "typ": "JWT"}), claims)
    }
}

fn claims(user: &str, groups: &[&str]) -> Value {
    let now = now_secs();
    json!({
        "iss": ISSUER, "aud": CLIENT, "sub": format!("sub-{user}"), "token_use": "id",
        "cognito:username": user, "cognito:groups": groups,
        "iat": now, "exp": now + 3600
    })
}

/// What the test issuer serves.
#[derive(Default)]
struct Issuer {
    jwks: Value,
    /// The ID token the token endpoint hands out next.
    next_id_token: Option<String>,
    /// The forms the token endpoint received.
    exchanges: Vec<String>,
}

type Shared = Arc<Mutex<Issuer>>;

async fn jwks(State(issuer): State<Shared>) -> axum::Json<Value> {
    axum::Json(issuer.lock().unwrap().jwks.clone())
}

async fn token(State(issuer): State<Shared>, body: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut issuer = issuer.lock().unwrap();
    issuer.exchanges.push(body);
    match issuer.next_id_token.take() {
        Some(id_token) => axum::Json(json!({
            "id_token": id_token, "access_token": "a", "token_type": "Bearer", "expires_in": 3600
        }))
        .into_response(),
        None => (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant"})),
        )
            .into_response(),
    }
}

/// Starts the issuer's HTTP server on `runtime`; its base URL.
fn serve_issuer(runtime: &tokio::runtime::Runtime, issuer: Shared) -> String {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/jwks.json", get(jwks))
        .route("/oauth2/token", post(token))
        .with_state(issuer);
    runtime.spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// The value of `name` in the query string of `url`.
fn param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {url}"))
        .to_string()
}

fn pkce_challenge(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

#[test]
fn id_tokens_of_a_test_issuer_are_verified_and_mapped() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let good = Signer::new("k1");
    let stranger = Signer::new("k1");
    let issuer: Shared = Arc::default();
    issuer.lock().unwrap().jwks = json!({ "keys": [good.jwk()] });
    let issuer_url = serve_issuer(&runtime, issuer.clone());

    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"[http]
auth_token = "{TOKEN}"
[console.oidc]
issuer = "{ISSUER}"
client_id = "{CLIENT}"
jwks_url = "{issuer_url}/jwks.json"
admin_groups = ["ops"]
viewer_groups = ["staff"]
authorization_endpoint = "https://auth.issuer.test/oauth2/authorize"
token_endpoint = "{issuer_url}/oauth2/token"
redirect_uri = "http://spate.test/ui/oidc/callback"
display_name = "Test issuer"
"#
    );
    let service = Service::start(support::SPATE, &dir.path().join("data"), &config);
    let url = service.url.clone();
    let sql = "SELECT 1 AS one";

    // Good tokens: an admin and a viewer.
    let (status, answer) = query(&url, sql, &good.sign(&claims("ann", &["ops"])));
    assert_eq!(status, 200, "{answer}\n{}", service.output());
    assert_eq!(answer["rows"][0][0], 1);
    let (status, answer) = query(&url, sql, &good.sign(&claims("vic", &["staff", "other"])));
    assert_eq!(status, 200, "{answer}");

    // Every kind of bad token is refused, with the reason.
    let mut wrong_iss = claims("ann", &["ops"]);
    wrong_iss["iss"] = json!("https://elsewhere.test/pool-1");
    let mut wrong_aud = claims("ann", &["ops"]);
    wrong_aud["aud"] = json!("another-client");
    let mut expired = claims("ann", &["ops"]);
    expired["exp"] = json!(now_secs() - 600);
    let mut access = claims("ann", &["ops"]);
    access["token_use"] = json!("access");
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": "k1"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims("ann", &["ops"]).to_string())
    );
    let refused = [
        (
            "wrong signature",
            stranger.sign(&claims("ann", &["ops"])),
            401,
            "signature",
        ),
        ("wrong issuer", good.sign(&wrong_iss), 401, "issuer"),
        ("wrong audience", good.sign(&wrong_aud), 401, "audience"),
        ("expired", good.sign(&expired), 401, "expired"),
        ("access token", good.sign(&access), 401, "token_use"),
        (
            "unknown kid",
            good.sign_with(
                json!({"alg": "RS256", "kid": "k9"}),
                &claims("ann", &["ops"]),
            ),
            401,
            "no signing key",
        ),
        ("alg none", none, 401, "algorithm"),
        (
            "no mapped group",
            good.sign(&claims("eve", &["other"])),
            403,
            "no group mapped",
        ),
    ];
    for (what, token, want, reason) in &refused {
        let (status, answer) = query(&url, sql, token);
        assert_eq!(status, *want, "{what}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(reason), "{what}: {answer}");
    }
    // The service's own token still works, and a non-JWT wrong bearer is 401.
    assert_eq!(query(&url, sql, TOKEN).0, 200);
    assert_eq!(query(&url, sql, "wrong").0, 401);

    // The browser flow: start → the issuer (state, nonce, PKCE) → callback.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signin_page = runtime.block_on(async {
        client
            .get(format!("{url}/ui/signin"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(
        signin_page.contains(r#"href="/ui/oidc/start">Sign in with Test issuer"#),
        "{signin_page}"
    );
    let start = runtime.block_on(async {
        client
            .get(format!("{url}/ui/oidc/start"))
            .send()
            .await
            .unwrap()
    });
    assert_eq!(start.status().as_u16(), 303);
    let location = start.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with("https://auth.issuer.test/oauth2/authorize?response_type=code&client_id=client-1&redirect_uri=http%3A%2F%2Fspate.test%2Fui%2Foidc%2Fcallback"),
        "{location}"
    );
    let flow = set_cookie(&start, "spate_oidc").unwrap();
    let state = param(&location, "state");
    let nonce = param(&location, "nonce");
    let challenge = param(&location, "code_challenge");
    let callback = |state: &str, cookie: Option<&str>| {
        let mut request = client.get(format!("{url}/ui/oidc/callback?code=c0de&state={state}"));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        runtime.block_on(async { request.send().await.unwrap() })
    };
    // A forged state is refused before the code is exchanged.
    let forged = callback("forged", Some(&flow));
    assert_eq!(forged.status().as_u16(), 403);
    assert_eq!(callback(&state, None).status().as_u16(), 403);
    assert!(issuer.lock().unwrap().exchanges.is_empty());
    // A token with another nonce (replayed from another sign-in) is refused.
    let mut replayed = claims("ann", &["ops"]);
    replayed["nonce"] = json!("another-nonce");
    issuer.lock().unwrap().next_id_token = Some(good.sign(&replayed));
    assert_eq!(callback(&state, Some(&flow)).status().as_u16(), 401);
    // The right one opens a session.
    let mut signed_in = claims("ann", &["ops"]);
    signed_in["nonce"] = json!(nonce);
    issuer.lock().unwrap().next_id_token = Some(good.sign(&signed_in));
    let done = callback(&state, Some(&flow));
    assert_eq!(done.status().as_u16(), 200);
    let session = set_cookie(&done, "spate_session").unwrap();
    let body = runtime.block_on(done.text()).unwrap();
    assert!(body.contains(r#"content="0;url=/ui""#), "{body}");
    // The code went to the token endpoint with the PKCE verifier that matches
    // the challenge.
    let exchange = issuer.lock().unwrap().exchanges.last().cloned().unwrap();
    assert!(
        exchange.contains("grant_type=authorization_code"),
        "{exchange}"
    );
    assert!(exchange.contains("code=c0de"), "{exchange}");
    let verifier = exchange
        .split('&')
        .find_map(|kv| kv.strip_prefix("code_verifier="))
        .unwrap();
    assert_eq!(pkce_challenge(verifier), challenge);
    let home = runtime.block_on(async {
        client
            .get(format!("{url}/ui/audit"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap()
    });
    assert_eq!(home.status().as_u16(), 200, "an admin by the ops group");
    let home = runtime.block_on(home.text()).unwrap();
    assert!(home.contains("oidc:ann (admin)"), "{home}");

    // The audit trail: the refusals with their reasons, the sign-in.
    let (status, audit) = query(
        &url,
        "SELECT actor, action, outcome, detail FROM audit \
         WHERE action IN ('api-token', 'signin') ORDER BY ts",
        TOKEN,
    );
    assert_eq!(status, 200, "{audit}");
    let rows: Vec<Vec<String>> = audit["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .collect();
    let denied: Vec<_> = rows
        .iter()
        .filter(|r| r[1] == "api-token" && r[2] == "denied")
        .collect();
    assert_eq!(denied.len(), refused.len(), "{rows:?}");
    assert!(
        denied
            .iter()
            .any(|r| r[0] == "oidc:eve" && r[3].contains("no group mapped")),
        "{rows:?}"
    );
    let signins: Vec<_> = rows.iter().filter(|r| r[1] == "signin").collect();
    assert_eq!(signins.len(), 4, "{rows:?}");
    assert!(
        signins.iter().any(|r| r[0] == "oidc:ann"
            && r[2] == "ok"
            && r[3].contains("subject sub-ann")
            && r[3].contains("role admin")),
        "{rows:?}"
    );
    assert!(
        signins
            .iter()
            .any(|r| r[2] == "denied" && r[3].contains("nonce")),
        "{rows:?}"
    );
    service.stop();
}

#[test]
fn a_cognito_id_token_from_the_emulator_is_accepted() {
    // A user pool, an app client, two users (one in the admin group), and
    // their ID tokens from admin_initiate_auth.
    let made = boto(
        r#"
cog = boto3.client('cognito-idp', **kw)
pool = cog.create_user_pool(PoolName=ARGS['pool'])['UserPool']['Id']
client = cog.create_user_pool_client(UserPoolId=pool, ClientName='spate',
    ExplicitAuthFlows=['ADMIN_NO_SRP_AUTH'])['UserPoolClient']['ClientId']
cog.create_group(UserPoolId=pool, GroupName='spate-admins')
tokens = {}
for name, group in [('ann', 'spate-admins'), ('bob', None)]:
    cog.admin_create_user(UserPoolId=pool, Username=name, TemporaryPassword='Tmp-Passw0rd!',
        MessageAction='SUPPRESS')
    cog.admin_set_user_password(UserPoolId=pool, Username=name, Password='Passw0rd!x',
        Permanent=True)
    if group:
        cog.admin_add_user_to_group(UserPoolId=pool, Username=name, GroupName=group)
    auth = cog.admin_initiate_auth(UserPoolId=pool, ClientId=client,
        AuthFlow='ADMIN_NO_SRP_AUTH',
        AuthParameters={'USERNAME': name, 'PASSWORD': 'Passw0rd!x'})
    tokens[name] = auth['AuthenticationResult']['IdToken']
print(json.dumps({'pool': pool, 'client': client, 'tokens': tokens}))
"#,
        &json!({ "pool": spate_test_support::unique("spate-console") }),
    );
    let pool = made["pool"].as_str().unwrap();
    let client = made["client"].as_str().unwrap();
    let ann = made["tokens"]["ann"].as_str().unwrap();
    let bob = made["tokens"]["bob"].as_str().unwrap();

    let dir = tempfile::tempdir().unwrap();
    // The issuer as Cognito names it; the keys from the emulator, which
    // serves the pool's JWKS at <endpoint>/<pool>/.well-known/jwks.json.
    let config = format!(
        r#"[http]
auth_token = "{TOKEN}"
[console.oidc]
issuer = "https://cognito-idp.us-east-1.amazonaws.com/{pool}"
client_id = "{client}"
jwks_url = "{}/{pool}/.well-known/jwks.json"
admin_groups = ["spate-admins"]
"#,
        endpoint()
    );
    let service = Service::start(support::SPATE, &dir.path().join("data"), &config);
    // Ann is an admin (cognito:groups), so she may read the audit table.
    let (status, answer) = query(&service.url, "SELECT count(*) FROM audit", ann);
    assert_eq!(status, 200, "{answer}\n{}", service.output());
    // Bob is in no mapped group.
    let (status, answer) = query(&service.url, "SELECT 1", bob);
    assert_eq!(status, 403, "{answer}");
    // A token of this pool for another app client is refused.
    let other = Service::start(
        support::SPATE,
        &dir.path().join("other"),
        &config.replace(client, "another-client"),
    );
    let (status, answer) = query(&other.url, "SELECT 1", ann);
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("audience"),
        "{answer}"
    );
    other.kill();
    let (status, audit) = query(
        &service.url,
        "SELECT actor, detail FROM audit WHERE action = 'query' ORDER BY ts",
        TOKEN,
    );
    assert_eq!(status, 200, "{audit}");
    assert_eq!(audit["rows"][0][0], "oidc:ann", "{audit}");
    service.stop();
}
