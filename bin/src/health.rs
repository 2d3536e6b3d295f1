//! `spate health`: the container health check of a running `spate run`.
//!
//! The runtime image has no shell and no `curl`, so ECS's health check
//! (`CMD /usr/local/bin/spate health`) runs the binary itself: one plain
//! HTTP/1.1 `GET` of `/healthz` over loopback, success on a `200` answer
//! within the timeout. Only `http://HOST:PORT/PATH` URLs: the check never
//! leaves the task.

use std::time::Duration;

use anyhow::{Result, bail};

use crate::plain_http::request;

/// `GET url`; `Ok` when it answers 200 within `timeout`, else why not.
pub fn check(url: &str, timeout: Duration) -> Result<()> {
    match request("GET", url, &[], &[], timeout)? {
        200 => Ok(()),
        status => bail!("{url} answered {status}"),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

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
