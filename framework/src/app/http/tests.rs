use super::*;
use proptest::prelude::*;

fn site() -> Site {
    let mut b = SiteBuilder::new("ferroplane");
    b.route("/", "text/html", b"<h1>hello</h1>\n".to_vec());
    b.route("/big", "application/octet-stream", big_body());
    b.build().unwrap()
}

fn big_body() -> Vec<u8> {
    (0..1_000_003u32).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// One parsed response.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits a response stream; `head_only[i]` says whether response i answers a HEAD.
fn parse_responses(mut out: &[u8], head_only: &[bool]) -> Vec<Resp> {
    let mut v = Vec::new();
    while !out.is_empty() {
        let mut h = [httparse::EMPTY_HEADER; 16];
        let mut r = httparse::Response::new(&mut h);
        let n = match r.parse(out).expect("valid response head") {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => panic!("truncated response head"),
        };
        let headers: Vec<(String, String)> = r
            .headers
            .iter()
            .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into()))
            .collect();
        let status = r.code.unwrap();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .expect("content-length")
            .1
            .parse()
            .unwrap();
        let len = if head_only.get(v.len()).copied().unwrap_or(false) {
            0
        } else {
            len
        };
        assert!(out.len() >= n + len, "truncated body");
        v.push(Resp {
            status,
            headers,
            body: out[n..n + len].to_vec(),
        });
        out = &out[n + len..];
    }
    v
}

/// Feeds `input` in chunks of `chunk` bytes and drains with a sink taking `cap` bytes per
/// call; returns the output and the final flush state.
fn run(site: &Site, input: &[u8], chunk: usize, cap: usize) -> (Vec<u8>, Flush, HttpStats) {
    let mut s = HttpSession::new(HttpLimits::default());
    let date = DateLine::new(784_111_777);
    let mut st = HttpStats::default();
    let mut out = Vec::new();
    let mut pending: &[u8] = input;
    let mut flush = Flush::Idle;
    for _ in 0..1_000_000 {
        let n = pending.len().min(chunk);
        let took = s.receive(site, &pending[..n], &mut st);
        pending = &pending[took..];
        flush = s.write(site, &date, &mut st, |b| {
            let k = b.len().min(cap);
            out.extend_from_slice(&b[..k]);
            k
        });
        if flush == Flush::Close || (pending.is_empty() && flush == Flush::Idle) {
            break;
        }
    }
    (out, flush, st)
}

#[test]
fn date_line_is_imf_fixdate() {
    assert_eq!(
        DateLine::new(784_111_777).bytes(),
        b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
    );
    assert_eq!(
        DateLine::new(0).bytes(),
        b"Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
    );
    assert_eq!(
        DateLine::new(951_782_400 + 86_399).bytes(),
        b"Date: Tue, 29 Feb 2000 23:59:59 GMT\r\n"
    );
    assert_eq!(
        DateLine::new(1_795_651_200).bytes(),
        b"Date: Thu, 26 Nov 2026 00:00:00 GMT\r\n"
    );
    let mut d = DateLine::new(0);
    d.update(86_400 * 365);
    assert_eq!(d.bytes(), b"Date: Fri, 01 Jan 1971 00:00:00 GMT\r\n");
}

#[test]
fn get_returns_the_body_with_exact_headers() {
    let site = site();
    let (out, flush, st) = run(
        &site,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        4096,
        usize::MAX,
    );
    assert_eq!(flush, Flush::Idle);
    let r = parse_responses(&out, &[]);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, 200);
    assert_eq!(r[0].body, b"<h1>hello</h1>\n");
    assert_eq!(r[0].header("content-length"), Some("15"));
    assert_eq!(r[0].header("content-type"), Some("text/html"));
    assert_eq!(r[0].header("connection"), Some("keep-alive"));
    assert_eq!(r[0].header("server"), Some("ferroplane"));
    assert_eq!(r[0].header("date"), Some("Sun, 06 Nov 1994 08:49:37 GMT"));
    assert_eq!(st.requests, 1);
    assert_eq!(st.status_2xx, 1);
    assert_eq!(st.bytes_out, out.len() as u64);
}

#[test]
fn pipelined_requests_answer_in_order_whatever_the_chunking() {
    let site = site();
    let mut input = Vec::new();
    let mut head = Vec::new();
    for i in 0..40 {
        let (m, p) = match i % 4 {
            0 => ("GET", "/"),
            1 => ("HEAD", "/big"),
            2 => ("GET", "/missing?x=1"),
            _ => ("GET", "/?q=a b"),
        };
        // The last target has a space: invalid only in the last, closing request.
        let p = if i % 4 == 3 { "/?q=ab" } else { p };
        input.extend_from_slice(format!("{m} {p} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
        head.push(m == "HEAD");
    }
    let (reference, _, _) = run(&site, &input, input.len(), usize::MAX);
    for (chunk, cap) in [(1, usize::MAX), (7, 3), (100, 1000), (5000, 1)] {
        let (out, flush, st) = run(&site, &input, chunk, cap);
        assert_eq!(flush, Flush::Idle, "chunk {chunk} cap {cap}");
        assert_eq!(out, reference, "chunk {chunk} cap {cap}");
        assert_eq!(st.requests, 40);
    }
    let r = parse_responses(&reference, &head);
    assert_eq!(r.len(), 40);
    for (i, r) in r.iter().enumerate() {
        match i % 4 {
            0 | 3 => assert_eq!(
                (r.status, r.body.as_slice()),
                (200, &b"<h1>hello</h1>\n"[..])
            ),
            1 => {
                assert_eq!(r.status, 200);
                assert!(r.body.is_empty());
                assert_eq!(r.header("content-length"), Some("1000003"));
            }
            _ => assert_eq!(r.status, 404),
        }
    }
}

#[test]
fn a_large_body_goes_out_intact_through_a_small_sink() {
    let site = site();
    let (out, flush, _) = run(
        &site,
        b"GET /big HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        64,
        1448,
    );
    assert_eq!(flush, Flush::Close);
    let r = parse_responses(&out, &[]);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].header("connection"), Some("close"));
    assert_eq!(r[0].body, big_body());
}

#[test]
fn http_1_0_closes_unless_keep_alive() {
    let site = site();
    let (out, flush, _) = run(
        &site,
        b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n",
        4096,
        9999,
    );
    assert_eq!(flush, Flush::Close);
    let r = parse_responses(&out, &[]);
    assert_eq!(r.len(), 1, "nothing after the closing response");
    assert_eq!(r[0].header("connection"), Some("close"));

    let (out, flush, _) = run(
        &site,
        b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
        4096,
        9999,
    );
    assert_eq!(flush, Flush::Close);
    let r = parse_responses(&out, &[]);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].header("connection"), Some("keep-alive"));
    assert_eq!(r[1].header("connection"), Some("close"));
}

#[test]
fn other_methods_get_405_and_their_body_is_skipped() {
    let site = site();
    let input = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello worldGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    for chunk in [1, 5, 4096] {
        let (out, flush, st) = run(&site, input, chunk, 9999);
        assert_eq!(flush, Flush::Idle);
        let r = parse_responses(&out, &[]);
        assert_eq!(r.len(), 2, "chunk {chunk}");
        assert_eq!(r[0].status, 405);
        assert_eq!(r[0].header("allow"), Some("GET, HEAD"));
        assert_eq!(r[1].status, 200);
        assert_eq!(st.status_4xx, 1);
    }
}

/// Each malformed request gets its status and the connection closes after it.
#[test]
fn protocol_errors_answer_and_close() {
    let site = site();
    let many_headers: String = (0..40).map(|i| format!("X-{i}: v\r\n")).collect();
    let long_head = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"\x16\x03\x01\x02\x00garbage\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(),
            400,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n".to_vec(),
            400,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n".to_vec(),
            400,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n".to_vec(),
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n".to_vec(),
            413,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
            501,
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: h\r\n{many_headers}\r\n").into_bytes(),
            431,
        ),
        (long_head.into_bytes(), 431),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n".to_vec(), 505),
    ];
    for (input, status) in cases {
        let mut with_tail = input.clone();
        with_tail.extend_from_slice(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        let (out, flush, st) = run(&site, &with_tail, 1000, 9999);
        let shown = String::from_utf8_lossy(&input[..input.len().min(60)]).into_owned();
        assert_eq!(flush, Flush::Close, "{shown}");
        let r = parse_responses(&out, &[]);
        assert_eq!(r.len(), 1, "{shown}: nothing answered after the error");
        assert_eq!(r[0].status, status, "{shown}");
        assert_eq!(r[0].header("connection"), Some("close"), "{shown}");
        assert_eq!(st.malformed, 1, "{shown}");
    }
}

#[test]
fn the_pipeline_depth_bounds_queued_responses() {
    let site = site();
    let mut s = HttpSession::new(HttpLimits::default());
    let mut st = HttpStats::default();
    let req = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let input: Vec<u8> = req.iter().copied().cycle().take(req.len() * 1000).collect();
    let mut taken = 0;
    // Nothing written: the session stops parsing at the pipeline depth and stops taking input
    // once its buffer is full.
    for _ in 0..10 {
        taken += s.receive(&site, &input[taken..], &mut st);
    }
    assert_eq!(s.queued(), PIPELINE_DEPTH);
    assert!(taken < input.len());
    assert!(taken <= PIPELINE_DEPTH * req.len() + HttpLimits::default().max_head);
    // Draining lets it continue.
    let date = DateLine::new(0);
    let mut out = Vec::new();
    while taken < input.len() || s.queued() > 0 {
        taken += s.receive(&site, &input[taken..], &mut st);
        let f = s.write(&site, &date, &mut st, |b| {
            out.extend_from_slice(b);
            b.len()
        });
        assert_eq!(f, Flush::Idle);
    }
    assert_eq!(parse_responses(&out, &[]).len(), 1000);
    assert_eq!(st.requests, 1000);
}

#[test]
fn reset_session_serves_a_new_connection() {
    let site = site();
    let mut s = HttpSession::new(HttpLimits::default());
    let mut st = HttpStats::default();
    s.receive(&site, b"garbage\r\n\r\n", &mut st);
    assert!(s.is_closing());
    s.reset();
    assert!(!s.is_closing());
    s.receive(&site, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &mut st);
    let mut out = Vec::new();
    let f = s.write(&site, &DateLine::new(0), &mut st, |b| {
        out.extend_from_slice(b);
        b.len()
    });
    assert_eq!(f, Flush::Idle);
    assert_eq!(parse_responses(&out, &[])[0].status, 200);
}

#[test]
fn builtin_ids_follow_the_table() {
    let site = site();
    for (i, &(b, status, _)) in site::BUILTINS.iter().enumerate() {
        assert_eq!(site.builtin(b) as usize, i);
        assert_eq!(site.status(site.builtin(b)), status);
    }
}

#[test]
fn site_rejects_bad_routes() {
    let mut b = SiteBuilder::new("x");
    b.route("nope", "text/plain", b"".to_vec());
    assert_eq!(b.build().unwrap_err(), SiteError::BadPath("nope".into()));
    let mut b = SiteBuilder::new("x");
    b.route("/a", "text/plain", b"".to_vec());
    b.route("/a", "text/plain", b"".to_vec());
    assert_eq!(
        b.build().unwrap_err(),
        SiteError::DuplicatePath("/a".into())
    );
    let mut b = SiteBuilder::new("x");
    b.route("/a", "text/plain\r\nX: y", b"".to_vec());
    assert!(matches!(b.build(), Err(SiteError::BadContentType(_))));
}

proptest! {
    /// Arbitrary bytes never panic, take at most what was offered, and whatever comes out is
    /// a well-formed sequence of responses.
    #[test]
    fn arbitrary_input_is_safe(
        parts in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..64),
                Just(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()),
                Just(b"HEAD /big HTTP/1.0\r\n\r\n".to_vec()),
                Just(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n".to_vec()),
            ],
            0..12,
        ),
        cap in 1usize..2000,
    ) {
        let site = site();
        let input: Vec<u8> = parts.concat();
        let mut s = HttpSession::new(HttpLimits { max_head: 256, max_body: 100 });
        let mut st = HttpStats::default();
        let date = DateLine::new(0);
        let mut out = Vec::new();
        let mut pos = 0;
        for _ in 0..10_000 {
            let took = s.receive(&site, &input[pos..], &mut st);
            prop_assert!(took <= input.len() - pos);
            pos += took;
            let f = s.write(&site, &date, &mut st, |b| {
                let k = b.len().min(cap);
                out.extend_from_slice(&b[..k]);
                k
            });
            if f == Flush::Close || (pos == input.len() && f == Flush::Idle) {
                break;
            }
        }
        // Every response head parses (HEAD responses make body lengths unknowable here, so
        // only the status lines are checked).
        let text = String::from_utf8_lossy(&out).into_owned();
        prop_assert_eq!(text.matches("HTTP/1.1 ").count() as u64, st.status_2xx + st.status_4xx + st.status_5xx);
    }
}
