//! The content an HTTP server serves: every response is built once at start-up and shared by
//! all lcores, so answering a request copies bytes into the send buffer and allocates nothing.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Index of a response in a [`Site`].
pub type ResponseId = u16;

/// A response built at start-up: the status line and fixed headers (everything up to the
/// `Date` header) and the body. `Date` and `Connection` are added per response.
#[derive(Debug)]
struct Prebuilt {
    head: Box<[u8]>,
    body: Arc<[u8]>,
    status: u16,
}

/// An error building a [`Site`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteError {
    /// A route path that does not start with `/` or contains spaces or control bytes.
    BadPath(String),
    /// The same path twice.
    DuplicatePath(String),
    /// More routes than a [`ResponseId`] can number.
    TooManyRoutes,
    /// A content type with control bytes.
    BadContentType(String),
}

impl fmt::Display for SiteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SiteError::BadPath(p) => write!(
                f,
                "route path {p:?} must start with '/' and contain no spaces or control characters"
            ),
            SiteError::DuplicatePath(p) => write!(f, "route path {p:?} is given twice"),
            SiteError::TooManyRoutes => write!(f, "too many routes (at most 60000)"),
            SiteError::BadContentType(t) => {
                write!(f, "content type {t:?} contains control characters")
            }
        }
    }
}

impl std::error::Error for SiteError {}

/// The fixed responses every site has (their ids in a [`Site`] are their discriminants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// 400 Bad Request: the request could not be parsed.
    BadRequest,
    /// 404 Not Found: no route for the path.
    NotFound,
    /// 405 Method Not Allowed: only GET and HEAD are served.
    MethodNotAllowed,
    /// 413 Content Too Large: a request body beyond the limit.
    ContentTooLarge,
    /// 431 Request Header Fields Too Large: the head does not fit the input buffer.
    HeaderTooLarge,
    /// 501 Not Implemented: a transfer coding the server does not decode.
    NotImplemented,
    /// 505 HTTP Version Not Supported.
    VersionNotSupported,
}

/// The built-in responses, in the order of [`Builtin`]'s variants.
pub(super) const BUILTINS: [(Builtin, u16, &str); 7] = [
    (Builtin::BadRequest, 400, "Bad Request"),
    (Builtin::NotFound, 404, "Not Found"),
    (Builtin::MethodNotAllowed, 405, "Method Not Allowed"),
    (Builtin::ContentTooLarge, 413, "Content Too Large"),
    (
        Builtin::HeaderTooLarge,
        431,
        "Request Header Fields Too Large",
    ),
    (Builtin::NotImplemented, 501, "Not Implemented"),
    (
        Builtin::VersionNotSupported,
        505,
        "HTTP Version Not Supported",
    ),
];

/// Builds a [`Site`] from routes.
#[derive(Debug)]
pub struct SiteBuilder {
    server: String,
    routes: Vec<(String, String, Arc<[u8]>)>,
}

impl SiteBuilder {
    /// A site whose responses carry `Server: <server>`.
    pub fn new(server: &str) -> SiteBuilder {
        SiteBuilder {
            server: server.to_string(),
            routes: Vec::new(),
        }
    }

    /// Serves `body` with `content_type` at `path` (exact match; the query string is ignored).
    pub fn route(
        &mut self,
        path: &str,
        content_type: &str,
        body: impl Into<Arc<[u8]>>,
    ) -> &mut Self {
        self.routes
            .push((path.to_string(), content_type.to_string(), body.into()));
        self
    }

    /// Checks the routes and builds every response.
    pub fn build(&self) -> Result<Site, SiteError> {
        if self.routes.len() + BUILTINS.len() > 60_000 {
            return Err(SiteError::TooManyRoutes);
        }
        let mut responses = Vec::with_capacity(self.routes.len() + BUILTINS.len());
        for &(_, status, reason) in &BUILTINS {
            let body: Arc<[u8]> = format!("{status} {reason}\n").into_bytes().into();
            responses.push(self.prebuild(status, reason, "text/plain", body, status == 405));
        }
        let mut by_path = HashMap::with_capacity(self.routes.len());
        for (path, ctype, body) in &self.routes {
            let ok_path = path.starts_with('/')
                && path.bytes().all(|b| b > b' ' && b != 0x7f)
                && !path.contains('?');
            if !ok_path {
                return Err(SiteError::BadPath(path.clone()));
            }
            if ctype.bytes().any(|b| b < b' ' || b == 0x7f) {
                return Err(SiteError::BadContentType(ctype.clone()));
            }
            let id = responses.len() as ResponseId;
            if by_path.insert(path.as_bytes().to_vec(), id).is_some() {
                return Err(SiteError::DuplicatePath(path.clone()));
            }
            responses.push(self.prebuild(200, "OK", ctype, body.clone(), false));
        }
        Ok(Site { responses, by_path })
    }

    fn prebuild(
        &self,
        status: u16,
        reason: &str,
        ctype: &str,
        body: Arc<[u8]>,
        allow: bool,
    ) -> Prebuilt {
        let mut head = format!(
            "HTTP/1.1 {status} {reason}\r\nServer: {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n",
            self.server,
            body.len()
        );
        if allow {
            head.push_str("Allow: GET, HEAD\r\n");
        }
        Prebuilt {
            head: head.into_bytes().into(),
            body,
            status,
        }
    }
}

/// Every response a server can send, built once and shared read-only by all lcores.
#[derive(Debug)]
pub struct Site {
    responses: Vec<Prebuilt>,
    by_path: HashMap<Vec<u8>, ResponseId>,
}

impl Site {
    /// The response for a request path (the query string already removed), if routed.
    pub fn lookup(&self, path: &[u8]) -> Option<ResponseId> {
        self.by_path.get(path).copied()
    }

    /// The id of a built-in error response.
    pub fn builtin(&self, b: Builtin) -> ResponseId {
        // The built-in responses are built first, in the order of `BUILTINS`, which is the
        // order of the enum.
        b as ResponseId
    }

    /// The status code of a response.
    pub fn status(&self, id: ResponseId) -> u16 {
        self.responses.get(id as usize).map_or(500, |r| r.status)
    }

    /// The fixed head (status line and headers before `Date`) of a response.
    pub(crate) fn head(&self, id: ResponseId) -> &[u8] {
        self.responses.get(id as usize).map_or(&[], |r| &r.head)
    }

    /// The body of a response.
    pub fn body(&self, id: ResponseId) -> &[u8] {
        self.responses.get(id as usize).map_or(&[], |r| &r.body)
    }

    /// How many routes (not counting the built-in responses).
    pub fn routes(&self) -> usize {
        self.by_path.len()
    }
}

/// The `Date: …\r\n` line, in the IMF-fixdate format of RFC 9110 §5.6.7, refreshed once a
/// second by the owner (one per lcore, so refreshing needs no synchronisation).
#[derive(Debug, Clone)]
pub struct DateLine {
    line: [u8; DATE_LINE_LEN],
    second: u64,
}

/// `Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n`.
const DATE_LINE_LEN: usize = 6 + 29 + 2;

impl DateLine {
    /// The line for `unix_secs` seconds since 1970.
    pub fn new(unix_secs: u64) -> DateLine {
        let mut d = DateLine {
            line: [0; DATE_LINE_LEN],
            second: u64::MAX,
        };
        d.update(unix_secs);
        d
    }

    /// The line for the current wall-clock time.
    pub fn now() -> DateLine {
        DateLine::new(unix_now())
    }

    /// Sets the time; does nothing when the second has not changed.
    pub fn update(&mut self, unix_secs: u64) {
        if unix_secs == self.second {
            return;
        }
        self.second = unix_secs;
        const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
        const MONTHS: [&[u8; 3]; 12] = [
            b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
            b"Dec",
        ];
        let days = unix_secs / 86_400;
        let secs = unix_secs % 86_400;
        let (y, m, d) = civil_from_days(days as i64);
        let l = &mut self.line;
        l[..6].copy_from_slice(b"Date: ");
        l[6..9].copy_from_slice(DAYS[(days % 7) as usize]);
        l[9..11].copy_from_slice(b", ");
        two(&mut l[11..13], d);
        l[13] = b' ';
        l[14..17].copy_from_slice(MONTHS[(m - 1) as usize]);
        l[17] = b' ';
        let y = y.clamp(0, 9999) as u32;
        two(&mut l[18..20], y / 100);
        two(&mut l[20..22], y % 100);
        l[22] = b' ';
        two(&mut l[23..25], (secs / 3600) as u32);
        l[25] = b':';
        two(&mut l[26..28], (secs / 60 % 60) as u32);
        l[28] = b':';
        two(&mut l[29..31], (secs % 60) as u32);
        l[31..35].copy_from_slice(b" GMT");
        l[35..37].copy_from_slice(b"\r\n");
    }

    /// Refreshes from the wall clock (a vDSO call, no syscall); cheap enough once per turn.
    pub fn refresh(&mut self) {
        self.update(unix_now());
    }

    /// The bytes of the line, CRLF included.
    pub fn bytes(&self) -> &[u8] {
        &self.line
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn two(out: &mut [u8], v: u32) {
    out[0] = b'0' + (v / 10 % 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

/// Year, month (1–12) and day (1–31) of a day count since 1970-01-01 (proleptic Gregorian;
/// the era arithmetic of Howard Hinnant's public-domain `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
