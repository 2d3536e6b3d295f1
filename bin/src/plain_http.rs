//! Plain HTTP/1.1 over loopback without a client library: `spate health`
//! (the runtime image has no shell or `curl`) and `spate demo` (a push to a
//! local `spate run`). Only `http://HOST:PORT/PATH` URLs; one request a
//! connection; the answer's status line is all that is read.

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

/// Sends `method url` with `headers` and `body` and reads the status line
/// of the answer, all within `timeout` a step.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<u16> {
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
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        target.path, target.authority
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    // The status line is all that is needed.
    let mut answer = vec![0u8; 256];
    let mut read = 0;
    while read < answer.len() {
        match stream.read(&mut answer[read..]) {
            Ok(0) => break,
            Ok(n) => {
                read += n;
                if answer[..read].contains(&b'\n') {
                    break;
                }
            }
            Err(e) => return Err(e).with_context(|| format!("no answer from {url}")),
        }
    }
    let response = String::from_utf8_lossy(&answer[..read]);
    match status_of(&response) {
        Some(status) => Ok(status),
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
}
