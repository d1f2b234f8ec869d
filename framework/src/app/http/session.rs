//! One HTTP/1.1 connection's server side, sans-IO: bytes in ([`HttpSession::receive`]),
//! bytes out through a sink that takes what fits ([`HttpSession::write`]). Keep-alive and
//! pipelining (up to [`PIPELINE_DEPTH`] queued responses; the input is not parsed further
//! until the queue drains, which is the backpressure that bounds a connection's memory).

use super::site::{Builtin, DateLine, ResponseId, Site};

/// Responses queued per connection before input parsing pauses.
pub const PIPELINE_DEPTH: usize = 16;
/// Headers parsed per request; more is answered with 431.
pub const MAX_HEADERS: usize = 32;

/// Per-connection limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Input buffer bytes: the largest request head accepted (larger gets 431).
    pub max_head: usize,
    /// The largest request body accepted and skipped (larger gets 413).
    pub max_body: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_head: 8192,
            max_body: 1 << 20,
        }
    }
}

/// Counters of one lcore's HTTP sessions (plain integers: each lcore owns its own).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HttpStats {
    /// Requests parsed (including the ones answered with an error).
    pub requests: u64,
    /// Responses with a 2xx status queued.
    pub status_2xx: u64,
    /// Responses with a 4xx status queued.
    pub status_4xx: u64,
    /// Responses with a 5xx status queued.
    pub status_5xx: u64,
    /// Requests that could not be parsed (400, 431, 505).
    pub malformed: u64,
    /// Response bytes handed to the sink.
    pub bytes_out: u64,
}

impl HttpStats {
    /// Reports every counter under its exported name (`http_requests`, `http_2xx`, ...), the
    /// same names whether the sessions run on the stack lcore or on an app lcore.
    pub fn counters(&self, out: &mut dyn FnMut(&'static str, u64)) {
        out("http_requests", self.requests);
        out("http_2xx", self.status_2xx);
        out("http_4xx", self.status_4xx);
        out("http_5xx", self.status_5xx);
        out("http_malformed", self.malformed);
        out("http_bytes_out", self.bytes_out);
    }

    /// Adds another set of counters to this one.
    pub fn add(&mut self, o: &HttpStats) {
        self.requests += o.requests;
        self.status_2xx += o.status_2xx;
        self.status_4xx += o.status_4xx;
        self.status_5xx += o.status_5xx;
        self.malformed += o.malformed;
        self.bytes_out += o.bytes_out;
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Pending {
    id: ResponseId,
    head_only: bool,
    close: bool,
    /// Bytes of this response already written.
    done: usize,
}

/// What [`HttpSession::write`] left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// Everything queued was written; the connection stays open for more requests.
    Idle,
    /// The sink is full; call again when it has room.
    Blocked,
    /// A `Connection: close` response (or an error) was written completely: close the
    /// connection (after the send buffer drains).
    Close,
}

/// The server side of one HTTP/1.x connection.
#[derive(Debug)]
pub struct HttpSession {
    inbuf: Box<[u8]>,
    in_len: usize,
    max_body: u64,
    /// Body bytes of the current request still to skip.
    skip: u64,
    queue: [Pending; PIPELINE_DEPTH],
    q_head: usize,
    q_len: usize,
    /// A closing response is queued: parse nothing more.
    closing: bool,
    /// The closing response has been written.
    closed: bool,
}

const KEEP_ALIVE: &[u8] = b"Connection: keep-alive\r\n\r\n";
const CLOSE: &[u8] = b"Connection: close\r\n\r\n";

impl HttpSession {
    /// A session with its input buffer (allocated here, once; reuse sessions with
    /// [`reset`](Self::reset)).
    pub fn new(limits: HttpLimits) -> HttpSession {
        HttpSession {
            inbuf: vec![0; limits.max_head.max(64)].into_boxed_slice(),
            in_len: 0,
            max_body: limits.max_body,
            skip: 0,
            queue: [Pending::default(); PIPELINE_DEPTH],
            q_head: 0,
            q_len: 0,
            closing: false,
            closed: false,
        }
    }

    /// Forgets the connection so the session can serve a new one.
    pub fn reset(&mut self) {
        self.in_len = 0;
        self.skip = 0;
        self.q_head = 0;
        self.q_len = 0;
        self.closing = false;
        self.closed = false;
    }

    /// Responses queued and not completely written.
    pub fn queued(&self) -> usize {
        self.q_len
    }

    /// Whether the session has decided to close (no more input is read).
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// Takes received bytes: copies what fits into the input buffer and parses every complete
    /// request it can queue a response for. Returns how many bytes were taken; the caller
    /// keeps the rest in its receive buffer (that is the backpressure) and offers them again
    /// after [`write`](Self::write) made progress. After the session decided to close, input
    /// is taken and discarded.
    pub fn receive(&mut self, site: &Site, data: &[u8], stats: &mut HttpStats) -> usize {
        if self.closing {
            return data.len();
        }
        let mut taken = 0;
        loop {
            let room = self.inbuf.len() - self.in_len;
            let n = room.min(data.len() - taken);
            self.inbuf[self.in_len..self.in_len + n].copy_from_slice(&data[taken..taken + n]);
            self.in_len += n;
            taken += n;
            let before = self.in_len;
            self.parse(site, stats);
            if self.closing {
                return data.len();
            }
            // Stop when all data is in, or parsing freed nothing (queue full or a partial
            // head waiting for more bytes).
            if taken == data.len() || self.in_len == before {
                return taken;
            }
        }
    }

    /// Writes queued responses into `sink`, which takes a slice and returns how many bytes it
    /// accepted (fewer than offered means it is full). Parses buffered pipelined requests as
    /// the queue drains.
    pub fn write(
        &mut self,
        site: &Site,
        date: &DateLine,
        stats: &mut HttpStats,
        mut sink: impl FnMut(&[u8]) -> usize,
    ) -> Flush {
        loop {
            if self.q_len == 0 {
                if self.closed {
                    return Flush::Close;
                }
                if self.in_len == 0 {
                    return Flush::Idle;
                }
                let before = self.q_len;
                self.parse(site, stats);
                if self.q_len == before {
                    return Flush::Idle;
                }
                continue;
            }
            let p = &mut self.queue[self.q_head];
            let body: &[u8] = if p.head_only { &[] } else { site.body(p.id) };
            let parts: [&[u8]; 4] = [
                site.head(p.id),
                date.bytes(),
                if p.close { CLOSE } else { KEEP_ALIVE },
                body,
            ];
            let mut skip = p.done;
            for part in parts {
                if skip >= part.len() {
                    skip -= part.len();
                    continue;
                }
                let rest = &part[skip..];
                skip = 0;
                let n = sink(rest).min(rest.len());
                p.done += n;
                stats.bytes_out += n as u64;
                if n < rest.len() {
                    return Flush::Blocked;
                }
            }
            let close = p.close;
            self.q_head = (self.q_head + 1) % PIPELINE_DEPTH;
            self.q_len -= 1;
            if close {
                self.closed = true;
                self.q_len = 0;
                return Flush::Close;
            }
        }
    }

    fn push(
        &mut self,
        site: &Site,
        id: ResponseId,
        head_only: bool,
        close: bool,
        st: &mut HttpStats,
    ) {
        match site.status(id) {
            200..=299 => st.status_2xx += 1,
            400..=499 => st.status_4xx += 1,
            _ => st.status_5xx += 1,
        }
        let slot = (self.q_head + self.q_len) % PIPELINE_DEPTH;
        self.queue[slot] = Pending {
            id,
            head_only,
            close,
            done: 0,
        };
        self.q_len += 1;
        if close {
            self.closing = true;
            self.in_len = 0;
        }
    }

    fn reject(&mut self, site: &Site, b: Builtin, st: &mut HttpStats) {
        st.requests += 1;
        st.malformed += 1;
        self.push(site, site.builtin(b), false, true, st);
    }

    /// Parses complete requests from the input buffer while the queue has room.
    fn parse(&mut self, site: &Site, st: &mut HttpStats) {
        let mut pos = 0;
        while !self.closing && self.q_len < PIPELINE_DEPTH && pos < self.in_len {
            if self.skip > 0 {
                let k = self.skip.min((self.in_len - pos) as u64);
                self.skip -= k;
                pos += k as usize;
                continue;
            }
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            let parsed = req.parse(&self.inbuf[pos..self.in_len]);
            match parsed {
                Ok(httparse::Status::Complete(n)) => {
                    pos += n;
                    match decide(site, &req, self.max_body) {
                        Ok(d) => {
                            st.requests += 1;
                            self.skip = d.body;
                            self.push(site, d.id, d.head_only, d.close, st);
                        }
                        Err(b) => self.reject(site, b, st),
                    }
                }
                Ok(httparse::Status::Partial) => {
                    if pos == 0 && self.in_len == self.inbuf.len() {
                        self.reject(site, Builtin::HeaderTooLarge, st);
                    }
                    break;
                }
                Err(httparse::Error::TooManyHeaders) => {
                    self.reject(site, Builtin::HeaderTooLarge, st)
                }
                Err(httparse::Error::Version) => {
                    self.reject(site, Builtin::VersionNotSupported, st)
                }
                Err(_) => self.reject(site, Builtin::BadRequest, st),
            }
        }
        if self.closing {
            return;
        }
        self.inbuf.copy_within(pos..self.in_len, 0);
        self.in_len -= pos;
    }
}

struct Decision {
    id: ResponseId,
    head_only: bool,
    close: bool,
    body: u64,
}

/// Chooses the response to a parsed request head; `Err` is a protocol error that closes.
fn decide(
    site: &Site,
    req: &httparse::Request<'_, '_>,
    max_body: u64,
) -> Result<Decision, Builtin> {
    let v11 = match req.version {
        Some(1) => true,
        Some(0) => false,
        _ => return Err(Builtin::VersionNotSupported),
    };
    let mut close = !v11;
    let mut hosts = 0;
    let mut length: Option<u64> = None;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"connection") {
            for token in h.value.split(|&b| b == b',') {
                let t = token.trim_ascii();
                if t.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") && !v11 {
                    close = false;
                }
            }
        } else if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let v = parse_length(h.value).ok_or(Builtin::BadRequest)?;
            if length.is_some_and(|l| l != v) {
                return Err(Builtin::BadRequest);
            }
            length = Some(v);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Chunked request bodies are not decoded (RFC 9112 §6.1: 501 for a coding the
            // server does not understand; then the framing is lost, so the connection closes).
            return Err(Builtin::NotImplemented);
        }
    }
    if v11 && hosts != 1 {
        return Err(Builtin::BadRequest);
    }
    let body = length.unwrap_or(0);
    if body > max_body {
        return Err(Builtin::ContentTooLarge);
    }
    let method = req.method.unwrap_or("");
    let head_only = method == "HEAD";
    let id = if method == "GET" || head_only {
        let path = request_path(req.path.unwrap_or("").as_bytes());
        site.lookup(path).unwrap_or(site.builtin(Builtin::NotFound))
    } else {
        site.builtin(Builtin::MethodNotAllowed)
    };
    Ok(Decision {
        id,
        head_only,
        close,
        body,
    })
}

/// The path of a request target: origin form without the query, or the path of an absolute
/// form (`http://host/path`).
fn request_path(target: &[u8]) -> &[u8] {
    let mut t = target;
    for scheme in [&b"http://"[..], b"https://"] {
        if t.len() > scheme.len() && t[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let rest = &t[scheme.len()..];
            t = rest
                .iter()
                .position(|&b| b == b'/')
                .map_or(&b"/"[..], |i| &rest[i..]);
        }
    }
    match t.iter().position(|&b| b == b'?') {
        Some(i) => &t[..i],
        None => t,
    }
}

/// A Content-Length value: decimal digits only, no overflow.
fn parse_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}
