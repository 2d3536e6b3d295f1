//! `spate health`: the container health check of a running `spate run`.
//!
//! The runtime image has no shell and no `curl`, so ECS's health check
//! (`CMD /usr/local/bin/spate health`) runs the binary itself: one plain
//! HTTP/1.1 `GET` of `/healthz` over loopback, success on a `200` answer
//! within the timeout. Only `http://HOST:PORT/PATH` URLs: the check never
//! leaves the task.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// `http://HOST:PORT/PATH` split into the address to connect to, the `Host`
/// header and the request path.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    authority: String,
    path: String,
}

/// Reads a plain `http://` URL; the port defaults to 80 and the path to `/`.
fn parse_url(url: &str) -> Result<Target> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("{url:?} is not an http:// URL");
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        bail!("{url:?} names no host");
    }
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
    let authority = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok(Target {
        authority,
        path: path.to_string(),
    })
}

/// The status code of an HTTP/1.x response's first line.
fn status_of(response: &str) -> Option<u16> {
    let line = response.lines().next()?;
    let mut parts = line.split_whitespace();
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// `GET url`; `Ok` when it answers 200 within `timeout`, else why not.
pub fn check(url: &str, timeout: Duration) -> Result<()> {
    let target = parse_url(url)?;
    let address = target
        .authority
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {}", target.authority))?
        .next()
        .with_context(|| format!("{} resolves to no address", target.authority))?;
    let mut stream = TcpStream::connect_timeout(&address, timeout)
        .with_context(|| format!("cannot connect to {address}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        target.path, target.authority
    )?;
    // The status line is all that is needed; /healthz answers a few bytes.
    let mut head = vec![0u8; 256];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => {
                read += n;
                if head[..read].contains(&b'\n') {
                    break;
                }
            }
            Err(e) => return Err(e).with_context(|| format!("no answer from {url}")),
        }
    }
    let response = String::from_utf8_lossy(&head[..read]);
    match status_of(&response) {
        Some(200) => Ok(()),
        Some(status) => bail!("{url} answered {status}"),
        None => bail!("{url} did not answer HTTP"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_address_and_path() {
        assert_eq!(
            parse_url("http://127.0.0.1:8470/healthz").unwrap(),
            Target {
                authority: "127.0.0.1:8470".into(),
                path: "/healthz".into()
            }
        );
        assert_eq!(
            parse_url("http://localhost").unwrap(),
            Target {
                authority: "localhost:80".into(),
                path: "/".into()
            }
        );
        assert_eq!(parse_url("http://[::1]:9/x").unwrap().authority, "[::1]:9");
        assert!(parse_url("https://example.com/").is_err());
        assert!(parse_url("http:///healthz").is_err());
    }

    #[test]
    fn status_comes_from_the_first_line() {
        assert_eq!(status_of("HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_of("HTTP/1.0 503 Service Unavailable\r\n"), Some(503));
        assert_eq!(status_of("SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_of(""), None);
    }

    #[test]
    fn a_listener_answering_200_is_healthy_and_other_answers_are_not() {
        for (answer, healthy) in [
            ("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n", true),
            ("HTTP/1.1 503 Service Unavailable\r\n\r\n", false),
        ] {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}/healthz", listener.local_addr().unwrap());
            let server = std::thread::spawn(move || {
                let (mut conn, _) = listener.accept().unwrap();
                let mut request = [0u8; 512];
                let n = conn.read(&mut request).unwrap();
                conn.write_all(answer.as_bytes()).unwrap();
                String::from_utf8_lossy(&request[..n]).into_owned()
            });
            let result = check(&url, Duration::from_secs(5));
            let request = server.join().unwrap();
            assert!(
                request.starts_with("GET /healthz HTTP/1.1\r\n"),
                "{request}"
            );
            assert_eq!(result.is_ok(), healthy, "{answer}: {result:?}");
        }
    }

    #[test]
    fn nothing_listening_is_unhealthy() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = check(
            &format!("http://127.0.0.1:{port}/healthz"),
            Duration::from_secs(2),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("cannot connect"), "{err:#}");
    }
}
