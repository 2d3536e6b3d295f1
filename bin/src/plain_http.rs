//! Plain HTTP/1.1 over loopback without a client library: `spate health`
//! (the runtime image has no shell or `curl`) and `spate demo` (a push to a
//! local `spate run`), `spate top` (its `/metrics`) and `spate tap` (a
//! stream of NDJSON). Only `http://HOST:PORT/PATH` URLs; one request a
//! connection; [`request`] reads the answer's status line only, [`get`] the
//! head and then the body as it arrives (plain, sized or chunked).

use std::io::{BufRead, BufReader, Read, Write};
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

/// Connects to `url` and sends `method` with `headers` and `body`, all
/// within `timeout` a step.
fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<TcpStream> {
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
    Ok(stream)
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
    let mut stream = send(method, url, headers, body, timeout)?;
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

/// An answer whose body is read as it arrives.
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body, de-chunked; it ends where the answer ends.
    pub body: Box<dyn BufRead + Send>,
}

/// Sends `GET url` (with `Authorization: Bearer TOKEN` when given) and
/// reads the answer's head; each read of the body waits `timeout` at most.
pub fn get(url: &str, token: Option<&str>, timeout: Duration) -> Result<Response> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    let stream = send("GET", url, &headers, b"", timeout)?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .with_context(|| format!("no answer from {url}"))?;
    let Some(status) = status_of(&line) else {
        bail!("{url} did not answer HTTP");
    };
    let (mut chunked, mut length) = (false, None);
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("{url} closed the connection in the answer's head");
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<u64>().ok();
            }
        }
    }
    let body: Box<dyn BufRead + Send> = match (chunked, length) {
        (true, _) => Box::new(BufReader::new(Chunked::new(reader))),
        (false, Some(n)) => Box::new(reader.take(n)),
        (false, None) => Box::new(reader),
    };
    Ok(Response { status, body })
}

/// A `Transfer-Encoding: chunked` body, read as plain bytes.
struct Chunked<R> {
    inner: R,
    /// Bytes left in the current chunk.
    left: u64,
    /// A chunk was read (its CRLF comes before the next size line).
    started: bool,
    /// The last (empty) chunk was read.
    done: bool,
}

impl<R: BufRead> Chunked<R> {
    fn new(inner: R) -> Self {
        Chunked {
            inner,
            left: 0,
            started: false,
            done: false,
        }
    }

    /// Reads the next chunk's size line.
    fn next_chunk(&mut self) -> std::io::Result<()> {
        let mut line = String::new();
        if self.started {
            self.inner.read_line(&mut line)?;
            line.clear();
        }
        self.started = true;
        if self.inner.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the answer ended inside a chunked body",
            ));
        }
        let size = line.split(';').next().unwrap_or("").trim();
        self.left = u64::from_str_radix(size, 16).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("bad chunk size {size:?}"),
            )
        })?;
        self.done = self.left == 0;
        Ok(())
    }
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.left == 0 {
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the answer ended inside a chunk",
            ));
        }
        self.left -= n as u64;
        Ok(n)
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
    fn chunked_bodies_read_as_plain_bytes() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
        let mut body = String::new();
        Chunked::new(&wire[..]).read_to_string(&mut body).unwrap();
        assert_eq!(body, "hello, world");
        let mut body = String::new();
        let cut = Chunked::new(&b"5\r\nhel"[..]).read_to_string(&mut body);
        assert!(cut.is_err(), "a body cut short is an error, not an end");
    }
}
