//! The HTTP/1.1 server application's protocol side: a [`Site`] of responses built once at
//! start-up (fixed bodies and files loaded into memory), and an [`HttpSession`] per
//! connection that parses requests with `httparse` and writes responses with keep-alive and
//! pipelining. Both are sans-IO; the socket glue feeds them bytes and drains them into the
//! send side, so they are tested here without a network. The glue exists twice over one
//! shared per-connection step: [`HttpServer`] on the stack lcore (same-core callbacks) and
//! [`XcoreHttp`] on an app lcore (`app_lcores`, through the cross-core endpoint).
//!
//! Behaviour, as an nginx user would expect it:
//! * `GET` and `HEAD` of a routed path → `200` with the exact `Content-Length` (HEAD without
//!   the body); the query string is ignored; absolute-form targets are accepted.
//! * unknown path → `404`; other methods → `405` with `Allow: GET, HEAD` (the body of such a
//!   request is skipped by its `Content-Length`, so the connection stays usable).
//! * unparsable request → `400`, an HTTP/1.1 request without exactly one `Host` → `400`,
//!   conflicting `Content-Length`s → `400`, a head larger than the input buffer or with more
//!   than [`MAX_HEADERS`] headers → `431`, a chunked request body → `501`, a version other
//!   than 1.0/1.1 → `505`, a body over the limit → `413`; each of these closes the
//!   connection after the response.
//! * HTTP/1.1 keeps the connection open unless `Connection: close`; HTTP/1.0 closes unless
//!   `Connection: keep-alive`. Every response carries `Date`, `Server`, `Content-Type`,
//!   `Content-Length` and `Connection`.

mod conn;
mod server;
mod session;
mod site;
mod xcore;

#[cfg(test)]
mod tests;

pub use server::HttpServer;
pub use session::{Flush, HttpLimits, HttpSession, HttpStats, MAX_HEADERS, PIPELINE_DEPTH};
pub use site::{Builtin, DateLine, ResponseId, Site, SiteBuilder, SiteError};
pub use xcore::XcoreHttp;

use crate::config::{HttpBody, HttpConfig};

/// Builds the site of an `http` config: reads every route's file into memory.
pub fn load_site(cfg: &HttpConfig) -> Result<Site, String> {
    let mut b = SiteBuilder::new(&cfg.server);
    for r in &cfg.routes {
        let body: Vec<u8> = match &r.body {
            HttpBody::Text(t) => t.clone().into_bytes(),
            HttpBody::File(f) => std::fs::read(f)
                .map_err(|e| format!("route {}: cannot read {}: {e}", r.path, f.display()))?,
        };
        b.route(&r.path, &r.content_type, body);
    }
    b.build().map_err(|e| e.to_string())
}
