//! A minimal HTTP/1.1 endpoint for Prometheus scrapes on one background thread.
//!
//! No async runtime and no HTTP crate: one blocking accept loop, one connection at a time, one
//! request per connection (`Connection: close`). Every connection gets a bounded budget — the
//! request head must arrive within [`Limits::read_timeout`] and fit in [`MAX_HEAD`] bytes, the
//! response must be taken within [`Limits::write_timeout`] — so a slow or hostile client can
//! delay a scrape but never wedge the thread. Input is parsed without panicking.

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::stats::StatsSource;

/// Largest request head (request line and headers) accepted, in bytes.
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// Upper bound on the bytes read (and discarded) after answering, so that unread request bytes
/// don't turn our close into a reset that destroys the response before the client reads it.
const MAX_DRAIN: usize = 64 * 1024;

/// Time budgets of one connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Time for the whole request head to arrive.
    pub(crate) read_timeout: Duration,
    /// Time for the whole response to be written.
    pub(crate) write_timeout: Duration,
    /// Time spent discarding leftover request bytes after the response.
    pub(crate) drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            read_timeout: Duration::from_secs(2),
            write_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_millis(250),
        }
    }
}

/// State shared between the server handle and its thread.
struct Shared {
    stop: AtomicBool,
    /// A clone of the connection being served, so that `stop` can cut it short.
    current: Mutex<Option<TcpStream>>,
}

impl Shared {
    fn current(&self) -> MutexGuard<'_, Option<TcpStream>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// An HTTP endpoint serving [`render`](super::render) of a [`StatsSource`] on `GET /metrics`.
///
/// Routes: `GET /metrics` → 200 with the text exposition format
/// ([`CONTENT_TYPE`](super::CONTENT_TYPE)); `GET /` → a small HTML page linking to it; any other
/// path → 404; any other method on those two paths → 405. `HEAD` is answered like `GET` without
/// the body. One background thread serves the connections one after the other and only ever
/// calls [`StatsSource::snapshot`]; the data-path lcores are never involved.
///
/// [`stop`](MetricsServer::stop) (or dropping the server) shuts the thread down and joins it.
pub struct MetricsServer {
    local_addr: SocketAddr,
    /// A clone of the listening socket, used to wake the blocked `accept` on stop.
    listener: TcpListener,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port, see [`local_addr`](Self::local_addr)) and starts
    /// serving `source` on a background thread named `ferroplane-metrics`.
    ///
    /// # Errors
    ///
    /// Binding the socket or spawning the thread failed (address in use, permission denied…).
    pub fn start(addr: SocketAddr, source: Arc<dyn StatsSource>) -> io::Result<MetricsServer> {
        Self::start_with(addr, source, Limits::default())
    }

    /// [`start`](Self::start) with explicit time budgets (tests use short ones).
    pub(crate) fn start_with(
        addr: SocketAddr,
        source: Arc<dyn StatsSource>,
        limits: Limits,
    ) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        let local_addr = listener.local_addr()?;
        let waker = listener.try_clone()?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            current: Mutex::new(None),
        });
        let thread = thread::Builder::new()
            .name("ferroplane-metrics".to_owned())
            .spawn({
                let shared = shared.clone();
                move || serve(&listener, &*source, &shared, limits)
            })?;
        Ok(MetricsServer {
            local_addr,
            listener: waker,
            shared,
            thread: Some(thread),
        })
    }

    /// The address the server listens on, with the real port when it was bound to port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops serving: aborts the connection in progress, if any, and joins the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.shared.stop.store(true, Ordering::SeqCst);
        // On Linux, shutting a listening socket down makes a blocked accept() return EINVAL.
        // SAFETY: the descriptor belongs to `self.listener`, which outlives the call;
        // shutdown(2) neither closes it nor takes ownership.
        let rc = unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        if rc != 0 {
            // Fallback: wake accept() with a connection of our own.
            let ip = match self.local_addr.ip() {
                IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                ip => ip,
            };
            let addr = SocketAddr::new(ip, self.local_addr.port());
            let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(500));
        }
        if let Some(conn) = self.shared.current().as_ref() {
            let _ = conn.shutdown(Shutdown::Both);
        }
        let _ = thread.join();
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsServer")
            .field("local_addr", &self.local_addr)
            .field("running", &self.thread.is_some())
            .finish()
    }
}

/// The accept loop of the server thread.
fn serve(listener: &TcpListener, source: &dyn StatsSource, shared: &Shared, limits: Limits) {
    while !shared.stopping() {
        match listener.accept() {
            Ok((stream, _peer)) => {
                // Publish the connection before checking the flag: either `stop` sees it and
                // shuts it down, or we see the flag.
                if let Ok(clone) = stream.try_clone() {
                    *shared.current() = Some(clone);
                }
                if shared.stopping() {
                    break;
                }
                // `handle` does not panic by itself and catches a panicking stats source; this
                // is the last line of defence keeping the endpoint alive.
                let _ = panic::catch_unwind(AssertUnwindSafe(|| handle(stream, source, limits)));
                *shared.current() = None;
            }
            Err(e) => {
                if shared.stopping() {
                    break;
                }
                match e.kind() {
                    ErrorKind::Interrupted
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::ConnectionReset => {}
                    // Out of descriptors and the like: back off instead of spinning.
                    _ => thread::sleep(Duration::from_millis(10)),
                }
            }
        }
    }
}

/// What reading the request head produced.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// The head up to and including the empty line.
    Complete(Vec<u8>),
    /// The client closed its side before the empty line; what it sent.
    Truncated(Vec<u8>),
    /// No empty line within [`MAX_HEAD`] bytes.
    TooLarge,
    /// The head did not arrive in time.
    TimedOut,
    /// Nothing was received, or the connection failed.
    Closed,
}

/// Serves one connection: one request, one response, close.
fn handle(mut stream: TcpStream, source: &dyn StatsSource, limits: Limits) {
    let _ = stream.set_nodelay(true);
    let response = match read_head(&mut stream, limits.read_timeout) {
        Head::Complete(head) | Head::Truncated(head) => respond(&head, source),
        Head::TooLarge => Response::error(431, "Request Header Fields Too Large"),
        Head::TimedOut => Response::error(408, "Request Timeout"),
        Head::Closed => return,
    };
    if write_all_by(&mut stream, &response.to_bytes(), limits.write_timeout).is_err() {
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    drain(&mut stream, limits.drain_timeout);
}

/// Reads until the end of the request head, within `timeout` overall (not per read, so a
/// client trickling bytes cannot stretch it) and [`MAX_HEAD`] bytes.
fn read_head(stream: &mut TcpStream, timeout: Duration) -> Head {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let mut scanned = 0;
    loop {
        if let Some(end) = head_end(&buf, scanned) {
            buf.truncate(end);
            return Head::Complete(buf);
        }
        scanned = buf.len();
        if buf.len() >= MAX_HEAD {
            return Head::TooLarge;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Head::TimedOut;
        }
        if stream.set_read_timeout(Some(left)).is_err() {
            return Head::Closed;
        }
        let room = (MAX_HEAD - buf.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]) {
            Ok(0) if buf.is_empty() => return Head::Closed,
            Ok(0) => return Head::Truncated(buf),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Head::TimedOut
            }
            Err(_) => return Head::Closed,
        }
    }
}

/// End of the head (after the empty line) if `buf` holds one; `scanned` bytes were searched
/// before. Bare `\n` line ends are accepted too.
fn head_end(buf: &[u8], scanned: usize) -> Option<usize> {
    let start = scanned.saturating_sub(3);
    let tail = &buf[start..];
    let crlf = tail
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| start + i + 4);
    let lf = tail
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| start + i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Writes `data` within `timeout` overall.
fn write_all_by(stream: &mut TcpStream, mut data: &[u8], timeout: Duration) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    while !data.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        stream.set_write_timeout(Some(left))?;
        match stream.write(data) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Discards what the client still sends, briefly and boundedly, before the socket is closed.
fn drain(stream: &mut TcpStream, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut chunk = [0u8; 4096];
    let mut total = 0;
    while total < MAX_DRAIN {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => total += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// A request line that made sense.
#[derive(Debug, PartialEq, Eq)]
struct Request<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
}

/// Parses the request line at the start of `head`; `None` for anything malformed.
fn parse_request_line(head: &[u8]) -> Option<Request<'_>> {
    let line = match head.iter().position(|&b| b == b'\n') {
        Some(i) => &head[..i],
        None => head,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let version_ok = version
        .strip_prefix("HTTP/")
        .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
    if !version_ok || !method.bytes().all(is_tchar) {
        return None;
    }
    let query = target
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(q))
        .unwrap_or("");
    Some(Request {
        method,
        path: target_path(target)?,
        query,
    })
}

/// The value of `key` in a query string (`a=1&b=2`).
fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// `/trace`: `?arm=N[&port=ID]` arms a trace of the next N packets; otherwise the trace so far.
fn trace_response(query: &str, source: &dyn StatsSource, mermaid: bool) -> Response {
    let Some(trace) = source.trace() else {
        return Response::error(404, "Not Found");
    };
    if let Some(n) = query_value(query, "arm") {
        let Ok(n) = n.parse::<u32>() else {
            return Response::error(400, "Bad Request");
        };
        let port = match query_value(query, "port").map(str::parse::<u16>) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(_)) => return Response::error(400, "Bad Request"),
        };
        trace.arm(n.min(10_000), port);
        return Response::ok(
            "text/plain; charset=utf-8",
            format!("armed: next {n} packets\n").into_bytes(),
        );
    }
    let body = if mermaid {
        trace.to_mermaid()
    } else {
        trace.to_text()
    };
    Response::ok("text/plain; charset=utf-8", body.into_bytes())
}

/// A byte allowed in an HTTP token (RFC 9110 `tchar`).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The path of a request target in origin form (`/metrics?x`) or absolute form
/// (`http://host:9100/metrics`), without query or fragment.
fn target_path(target: &str) -> Option<&str> {
    let path = if let Some(rest) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        match rest.find('/') {
            Some(i) => &rest[i..],
            None => "/",
        }
    } else {
        target
    };
    let path = path.split(['?', '#']).next().unwrap_or(path);
    if path.starts_with('/') {
        Some(path)
    } else {
        None
    }
}

const INDEX_HTML: &str = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
<title>ferroplane metrics</title></head>\n<body><h1>ferroplane</h1>\n\
<p><a href=\"/metrics\">/metrics</a> &mdash; Prometheus metrics</p>\n\
<p><a href=\"/runtime\">/runtime</a> &mdash; per-node counters (like VPP's show runtime)</p>\n\
<p><a href=\"/trace\">/trace</a> &mdash; packet trace (<code>/trace?arm=10&amp;port=0</code> \
to trace the next 10 packets of port 0; <a href=\"/trace.mmd\">Mermaid</a>)</p></body></html>\n";

/// The response to a request head.
fn respond(head: &[u8], source: &dyn StatsSource) -> Response {
    let Some(req) = parse_request_line(head) else {
        return Response::error(400, "Bad Request");
    };
    let head_only = req.method == "HEAD";
    let mut response = match req.path {
        "/metrics" | "/" | "/runtime" | "/trace" | "/trace.mmd"
            if req.method != "GET" && !head_only =>
        {
            let mut r = Response::error(405, "Method Not Allowed");
            r.allow = true;
            r
        }
        "/metrics" => match panic::catch_unwind(AssertUnwindSafe(|| super::render(source))) {
            Ok(body) => Response::ok(super::CONTENT_TYPE, body.into_bytes()),
            Err(_) => Response::error(500, "Internal Server Error"),
        },
        "/" => Response::ok("text/html; charset=utf-8", INDEX_HTML.as_bytes().to_vec()),
        "/runtime" => match panic::catch_unwind(AssertUnwindSafe(|| {
            crate::stats::render_runtime(&source.snapshot())
        })) {
            Ok(body) => Response::ok("text/plain; charset=utf-8", body.into_bytes()),
            Err(_) => Response::error(500, "Internal Server Error"),
        },
        "/trace" => trace_response(req.query, source, false),
        "/trace.mmd" => trace_response(req.query, source, true),
        _ => Response::error(404, "Not Found"),
    };
    response.head_only = head_only;
    response
}

/// An HTTP response, always sent with `Connection: close`.
#[derive(Debug)]
struct Response {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    /// Add `Allow: GET, HEAD` (for 405).
    allow: bool,
    /// Send the headers only (answer to HEAD).
    head_only: bool,
}

impl Response {
    fn ok(content_type: &'static str, body: Vec<u8>) -> Self {
        Response {
            status: 200,
            reason: "OK",
            content_type,
            body,
            allow: false,
            head_only: false,
        }
    }

    fn error(status: u16, reason: &'static str) -> Self {
        Response {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            body: format!("{status} {reason}\n").into_bytes(),
            allow: false,
            head_only: false,
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len(),
            if self.allow { "Allow: GET, HEAD\r\n" } else { "" },
        )
        .into_bytes();
        if !self.head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        let ok = |m, p| {
            Some(Request {
                method: m,
                path: p,
                query: "",
            })
        };
        assert_eq!(
            parse_request_line(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            ok("GET", "/metrics")
        );
        assert_eq!(
            parse_request_line(b"GET /trace?arm=5&port=1 HTTP/1.0\n\n").map(|r| r.query),
            Some("arm=5&port=1")
        );
        assert_eq!(query_value("arm=5&port=1", "port"), Some("1"));
        assert_eq!(query_value("arm=5", "port"), None);
        assert_eq!(
            parse_request_line(b"GET http://h:9100/metrics HTTP/1.1\r\n"),
            ok("GET", "/metrics")
        );
        assert_eq!(parse_request_line(b"GET http://h HTTP/1.1"), ok("GET", "/"));
        assert_eq!(parse_request_line(b"POST / HTTP/1.1\r\n"), ok("POST", "/"));
        for bad in [
            &b""[..],
            b"\r\n\r\n",
            b"GET\r\n",
            b"GET /metrics\r\n",
            b"GET /metrics HTTP/1.1 extra\r\n",
            b"GET metrics HTTP/1.1\r\n",
            b"GET /metrics FTP/1.0\r\n",
            b"GET /metrics HTTP/\r\n",
            b"G(T /metrics HTTP/1.1\r\n",
            b"GET /m\xffetrics HTTP/1.1\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"\x00\x01\x02\x03",
        ] {
            assert_eq!(parse_request_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn head_end_is_found_across_reads() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nrest", 0), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n", 0), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n", 0), None);
        // The terminator straddles the previously scanned part.
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\n", 15), Some(18));
    }

    #[test]
    fn responses_are_well_formed() {
        let r = Response::error(405, "Method Not Allowed");
        let mut r405 = r;
        r405.allow = true;
        let text = String::from_utf8(r405.to_bytes()).unwrap();
        assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(text.contains("\r\nAllow: GET, HEAD\r\n"));
        assert!(text.ends_with("\r\n\r\n405 Method Not Allowed\n"));

        let mut head = Response::ok("text/plain", b"abc".to_vec());
        head.head_only = true;
        let text = String::from_utf8(head.to_bytes()).unwrap();
        assert!(text.contains("Content-Length: 3\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }
}
