//! Reader of the `http` keys of `[app]`: `[[app.routes]]`, `server`, `max_request_head` (the
//! TCP server keys are read as for `tcp-echo`).

use super::table_array;
use crate::config::reader::{string, Diag, Table};
use crate::config::{HttpBody, HttpRouteConfig};

/// The largest file a route may serve (it is held in memory).
pub(in crate::config) const MAX_FILE: u64 = 1 << 30;

/// The `http` keys as read; `None` fields were invalid (errors recorded).
#[derive(Debug)]
pub(in crate::config) struct RawHttp {
    pub(in crate::config) routes: Option<Vec<HttpRouteConfig>>,
    pub(in crate::config) server: Option<String>,
    pub(in crate::config) max_request_head: Option<u32>,
}

const ROUTES_HINT: &str = "add [[app.routes]] tables like { path = \"/\", body = \"hello\\n\" } or { path = \"/f\", file = \"page.html\", content_type = \"text/html\" }";

fn header_text(
    d: &mut Diag,
    t: &mut Table<'_, '_>,
    key: &'static str,
    hint: &str,
) -> Option<Option<String>> {
    let got = t.with(d, key, |d, v, p| {
        let s = string(d, v, p, hint)?;
        if s.is_empty() || s.bytes().any(|b| b < b' ' || b == 0x7f) {
            d.error(
                p,
                &Some(v.span()),
                format!("{s:?} is empty or contains control characters"),
                hint,
            );
            return None;
        }
        Some(s.to_string())
    });
    got.optional()
}

/// Reads the `http` keys of `[app]` (the caller finishes the table).
pub(in crate::config) fn read_http(d: &mut Diag, t: &mut Table<'_, '_>) -> RawHttp {
    let server = header_text(
        d,
        t,
        "server",
        "the Server header, printable text like \"ferroplane\"",
    )
    .map(|s| s.unwrap_or_else(|| "ferroplane".to_string()));
    let max_request_head = t
        .int(
            d,
            "max_request_head",
            256u32,
            65536,
            "bytes of the largest request head (request line and headers), 256 to 65536, like 8192",
        )
        .or(t.dflt("max_request_head", 8192))
        .map(|v| v.v);

    let mut routes = Some(Vec::new());
    match table_array(d, t, "routes", ROUTES_HINT) {
        None => {
            d.error(
                t.child("routes"),
                &t.span,
                "the http app needs at least one route",
                ROUTES_HINT,
            );
            routes = None;
        }
        Some((tables, complete)) => {
            if !complete {
                routes = None;
            }
            if tables.is_empty() && complete {
                d.error(
                    t.child("routes"),
                    &t.value_span("routes"),
                    "`routes` is empty",
                    ROUTES_HINT,
                );
                routes = None;
            }
            let mut seen: Vec<(String, String)> = Vec::new();
            for (_, mut rt) in tables {
                let r = read_route(d, &mut rt, &mut seen);
                rt.finish(d);
                match (r, &mut routes) {
                    (Some(r), Some(list)) => list.push(r),
                    _ => routes = None,
                }
            }
        }
    }
    RawHttp {
        routes,
        server,
        max_request_head,
    }
}

fn read_route(
    d: &mut Diag,
    t: &mut Table<'_, '_>,
    seen: &mut Vec<(String, String)>,
) -> Option<HttpRouteConfig> {
    const PATH_HINT: &str = "a request path starting with '/', without spaces, control characters or '?', like \"/index.html\"";
    let path = t.with(d, "path", |d, v, p| {
        let s = string(d, v, p, PATH_HINT)?;
        let ok = s.starts_with('/') && !s.contains('?') && s.bytes().all(|b| b > b' ' && b != 0x7f);
        if !ok {
            d.error(
                p,
                &Some(v.span()),
                format!("{s:?} is not a request path"),
                PATH_HINT,
            );
            return None;
        }
        if let Some((_, first)) = seen.iter().find(|(x, _)| x == s) {
            d.error(
                p,
                &Some(v.span()),
                format!("path {s:?} is routed twice (also at {first})"),
                "give each path one route",
            );
            return None;
        }
        seen.push((s.to_string(), p.to_string()));
        Some(s.to_string())
    });
    let path = t.required(d, "path", path, PATH_HINT);
    let content_type = header_text(d, t, "content_type", "a media type like \"text/html\"")
        .map(|c| c.unwrap_or_else(|| "text/plain".to_string()));
    let body = t
        .with(d, "body", |d, v, p| {
            string(d, v, p, "the response body as a string").map(str::to_string)
        })
        .optional();
    let file = t
        .with(d, "file", |d, v, p| {
            const FILE_HINT: &str = "the path of a readable regular file of at most 1 GiB";
            let s = string(d, v, p, FILE_HINT)?;
            match std::fs::metadata(s) {
                Ok(m) if m.is_file() && m.len() <= MAX_FILE => {
                    if let Err(e) = std::fs::File::open(s) {
                        d.error(
                            p,
                            &Some(v.span()),
                            format!("cannot read {s:?}: {e}"),
                            FILE_HINT,
                        );
                        return None;
                    }
                    Some(std::path::PathBuf::from(s))
                }
                Ok(m) if m.is_file() => {
                    d.error(
                        p,
                        &Some(v.span()),
                        format!("{s:?} is {} bytes, above the 1 GiB limit", m.len()),
                        FILE_HINT,
                    );
                    None
                }
                Ok(_) => {
                    d.error(
                        p,
                        &Some(v.span()),
                        format!("{s:?} is not a regular file"),
                        FILE_HINT,
                    );
                    None
                }
                Err(e) => {
                    d.error(
                        p,
                        &Some(v.span()),
                        format!("cannot read {s:?}: {e}"),
                        FILE_HINT,
                    );
                    None
                }
            }
        })
        .optional();
    let body = match (body, file) {
        (Some(Some(_)), Some(Some(_))) => {
            d.error(
                t.child("file"),
                &t.key_span("file"),
                "a route has either `body` or `file`, not both",
                "remove one of them",
            );
            None
        }
        (Some(Some(b)), Some(None)) => Some(HttpBody::Text(b)),
        (Some(None), Some(Some(f))) => Some(HttpBody::File(f)),
        (Some(None), Some(None)) => {
            d.error(
                t.child("body"),
                &t.span,
                "a route needs `body` or `file`",
                "add body = \"text\" or file = \"path\"",
            );
            None
        }
        _ => None,
    };
    Some(HttpRouteConfig {
        path: path?.v,
        content_type: content_type?,
        body: body?,
    })
}
