//! `[app]` of the `http` application.

use super::*;

fn http_app(extra: &str) -> String {
    format!(
        r#"
[[memory.pools]]
name = "pool"

[[ports]]
name = "p0"
driver = "null"
ipv4 = ["198.18.0.1/24"]

[[lcores]]
id = 1
rx = ["p0"]

[app]
name = "http"
{extra}
"#
    )
}

#[test]
fn http_routes_defaults_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("page.html");
    std::fs::write(&f, b"<p>hi</p>").unwrap();
    let c = ok(&http_app(&format!(
        "[[app.routes]]\npath = \"/\"\nbody = \"hello\"\n[[app.routes]]\npath = \"/page\"\nfile = \"{}\"\ncontent_type = \"text/html\"",
        f.display()
    )));
    let AppConfig::Http(h) = &c.app else {
        panic!("{:?}", c.app)
    };
    assert_eq!(h.tcp.ports, vec![80]);
    assert_eq!(h.tcp.max_connections, 4096);
    assert_eq!(h.server, "ferroplane");
    assert_eq!(h.max_request_head, 8192);
    assert_eq!(h.routes.len(), 2);
    assert_eq!(h.routes[0].content_type, "text/plain");
    assert_eq!(h.routes[0].body, HttpBody::Text("hello".into()));
    assert_eq!(h.routes[1].body, HttpBody::File(f.clone()));
    // The site loads the file.
    let site = crate::app::http::load_site(h).unwrap();
    assert_eq!(site.body(site.lookup(b"/page").unwrap()), b"<p>hi</p>");
    // A small table defaults max_time_wait under max_connections.
    let c = ok(&http_app(
        "max_connections = 16\n[[app.routes]]\npath = \"/\"\nbody = \"x\"",
    ));
    let AppConfig::Http(h) = &c.app else {
        panic!("{:?}", c.app)
    };
    assert_eq!(h.tcp.max_time_wait, 16);
}

#[test]
fn http_route_errors_name_the_field() {
    let e = errs(&http_app(""));
    assert!(at(&e, "app.routes").hint.contains("[[app.routes]]"));
    let e = errs(&http_app(
        "max_request_head = 10\n[[app.routes]]\npath = \"nope\"\nbody = \"x\"\n[[app.routes]]\npath = \"/a\"\n[[app.routes]]\npath = \"/b\"\nbody = \"x\"\nfile = \"/etc/hostname\"\n[[app.routes]]\npath = \"/c\"\nfile = \"/nonexistent/file\"\n[[app.routes]]\npath = \"/d\"\nbody = \"x\"\ncontent_type = \"a\\nb\"\n[[app.routes]]\npath = \"/d\"\nbody = \"y\"\nbogus = 1",
    ));
    assert_eq!(
        at(&e, "app.max_request_head").message,
        "must be between 256 and 65536, got 10"
    );
    assert!(at(&e, "app.routes[0].path")
        .message
        .contains("not a request path"));
    assert!(at(&e, "app.routes[1].body")
        .message
        .contains("needs `body` or `file`"));
    assert!(at(&e, "app.routes[2].file").message.contains("not both"));
    assert!(at(&e, "app.routes[3].file").message.contains("cannot read"));
    assert!(at(&e, "app.routes[4].content_type")
        .message
        .contains("control characters"));
    assert!(at(&e, "app.routes[5].path")
        .message
        .contains("routed twice"));
    assert!(at(&e, "app.routes[5].bogus").message.contains("unknown"));
    // tcp-echo keys are shared; http keys are not valid for tcp-echo.
    let e = errs(
        &http_app("ports = [0]\n[[app.routes]]\npath = \"/\"\nbody = \"x\"")
            .replace("name = \"http\"", "name = \"tcp-echo\""),
    );
    assert!(at(&e, "app.routes")
        .message
        .contains("only valid for app \"http\""));
}

#[test]
fn http_runs_on_several_lcores_each_with_its_queue_and_a_tx_queue() {
    let text = http_app("[[app.routes]]\npath = \"/\"\nbody = \"hello\"")
        .replace(
            "ipv4 = [\"198.18.0.1/24\"]",
            "ipv4 = [\"198.18.0.1/24\"]\nrx_queues = 2\ntx_queues = 2",
        )
        .replace(
            "[[lcores]]\nid = 1\nrx = [\"p0\"]",
            "[[lcores]]\nid = 1\nrx = [\"p0:0\"]\n[[lcores]]\nid = 2\nrx = [\"p0:1\"]",
        );
    let c = ok(&text);
    assert_eq!(crate::app::tcp_lcores(&c), vec![1, 2]);
    for lc in &c.lcores {
        assert_eq!(lc.tx.len(), 1, "lcore {} sends on p0", lc.id);
    }
    assert_ne!(c.lcores[0].tx[0].queue, c.lcores[1].tx[0].queue);
    assert_eq!(c.stack.handoff_ring, 1024);
    // Both queues must be polled: one lcore on queue 0 alone is an error naming the other.
    let e = errs(&text.replace("[[lcores]]\nid = 2\nrx = [\"p0:1\"]", ""));
    assert!(e.iter().any(|x| x.message.contains("p0:1")), "{e:?}");
}
