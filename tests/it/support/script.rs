//! A scripted HTTP/1.1 upstream that writes raw bytes, for what a
//! well-behaved server never sends: framing a proxy must refuse, interim
//! responses, close-delimited bodies, and connections dropped mid-way.
//!
//! By path:
//! - `/chunked`: a chunked body with an extension and a trailer
//! - `/cl-te`: both `Content-Length` and `Transfer-Encoding`
//! - `/close`: a body delimited by closing the connection
//! - `/early-hints`: 103, then 200
//! - `/drop-second`: the second request on a connection is read and the
//!   connection closed without an answer
//! - `/bad-chunk`: a chunked head followed at once by a malformed chunk size
//! - `/stall`: a head promising 100 bytes, 10 of them, then nothing
//! - `/stall-chunked`: a chunked head and one chunk, then nothing
//! - `/slow`: 200 with a small body after 20 ms
//!
//! A chunked request body is read to its end; the reply to it (any path)
//! is 200 with `chunks=N bytes=M`: how many chunks carried how many bytes.
//!
//! `closed()` counts the connections the proxy closed (a read that ended).
//! - anything else: 200 with the request head as the body (`HEAD`: the
//!   head's length, no body)

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::client::find;

pub struct Script {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    pub requests: Arc<AtomicUsize>,
    pub closed: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Script {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Script {
    pub async fn start() -> Script {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let (c, r, d) = (connections.clone(), requests.clone(), closed.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let (r, d) = (r.clone(), d.clone());
                tokio::spawn(async move {
                    serve(tcp, r).await;
                    d.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Script {
            addr,
            connections,
            requests,
            closed,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Waits (up to 10 s) until `n` connections have been closed by the
    /// proxy; false if they were not.
    pub async fn closed_reaches(&self, n: usize) -> bool {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.closed.load(Ordering::SeqCst) < n {
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        true
    }
}

async fn serve(mut tcp: TcpStream, requests: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut on_this_connection = 0;
    loop {
        let end = loop {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                break end + 4;
            }
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let chunked = head
            .to_ascii_lowercase()
            .contains("\r\ntransfer-encoding: chunked\r\n");
        if chunked {
            buf.drain(..end);
            let (mut chunks, mut bytes) = (0usize, 0usize);
            loop {
                let Some(line) = find(&buf, b"\r\n") else {
                    match tcp.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    continue;
                };
                let size = usize::from_str_radix(
                    String::from_utf8_lossy(&buf[..line])
                        .split(';')
                        .next()
                        .unwrap_or(""),
                    16,
                )
                .unwrap_or(0);
                while buf.len() < line + 2 + size + 2 {
                    match tcp.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                if size == 0 {
                    buf.drain(..line + 4);
                    break;
                }
                chunks += 1;
                bytes += size;
                buf.drain(..line + 2 + size + 2);
            }
            requests.fetch_add(1, Ordering::SeqCst);
            let text = format!("chunks={chunks} bytes={bytes}");
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            );
            if tcp.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
            continue;
        }
        while buf.len() < end + length {
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..end + length);
        requests.fetch_add(1, Ordering::SeqCst);
        on_this_connection += 1;
        let target = head.split(' ').nth(1).unwrap_or("/");
        let path = target.split('?').next().unwrap_or("/").to_string();
        let reply: Vec<u8> = match path.as_str() {
            "/chunked" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
                .to_vec(),
            "/cl-te" => b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            "/close" => {
                let _ = tcp
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
                    .await;
                return;
            }
            "/early-hints" => b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n\
                HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                .to_vec(),
            "/drop-second" if on_this_connection == 2 => return,
            "/slow" => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow".to_vec()
            }
            "/bad-chunk" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n".to_vec(),
            "/stall" | "/stall-chunked" => {
                let reply: &[u8] = if path == "/stall" {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"
                } else {
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                };
                if tcp.write_all(reply).await.is_err() {
                    return;
                }
                // Nothing more, until the proxy closes the connection.
                while let Ok(n) = tcp.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                }
                return;
            }
            _ if head.starts_with("HEAD ") => {
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", head.len()).into_bytes()
            }
            _ => {
                let mut r =
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", head.len()).into_bytes();
                r.extend_from_slice(head.as_bytes());
                r
            }
        };
        if tcp.write_all(&reply).await.is_err() {
            return;
        }
    }
}
