//! Cross-core TCP through the whole stack: a ferroplane client stack opens many connections
//! to `tcp-echo` whose echo logic runs on an app lcore (`app_lcores`), on its own thread,
//! behind the stack lcore's xcore bridge; every connection streams random bytes and checks
//! that exactly the same bytes come back before the server closes.

mod common;

use common::tcp::{count, many_conns_client, xorshift_bytes, EchoClient, Flows, Server, Stacks};
use ferroplane::stack::tcp::xcore::XCORE_APP_NODE;
use ferroplane::stack::tcp::CloseReason;

#[test]
fn echo_on_an_app_lcore_thread_returns_megabytes_byte_exact_over_many_connections() {
    let conns = 24;
    let payloads: Vec<Vec<u8>> = (0..conns)
        .map(|i| xorshift_bytes(128 * 1024 + i * 7919, 0x9e37_79b9 + i as u64, 40))
        .collect();
    let total: usize = payloads.iter().map(|p| p.len()).sum();
    let st = Flows::new(payloads.clone());
    // The client opens the connections last first, at most 8 at a time.
    let client = EchoClient::new(&st, 0, "198.18.0.1:7", (0..conns).rev().collect(), 8);
    // Small buffers: the cross-core windows and TCP windows fill and drain all the time.
    let mut p = Stacks::new(
        Server::on_app_lcore("name = \"tcp-echo\"\nports = [7]\napp_lcores = [2]\nsend_buffer = 16384\nrecv_buffer = 16384"),
        many_conns_client(Box::new(client)),
    );
    let took = p.run_with_app_thread(|| st.lock().unwrap().flows.iter().all(|f| f.finished()));
    let Stacks {
        server_graph: sgraph,
        app_graph,
        ..
    } = p;
    let s = st.lock().unwrap();
    let done = s.flows.iter().filter(|f| f.finished()).count();
    assert_eq!(done, conns, "{done} connections finished");
    let resets = s
        .flows
        .iter()
        .filter(|f| f.closed.is_some_and(|r| r != CloseReason::Closed));
    assert_eq!(resets.count(), 0);
    let mut echoed = 0;
    for c in &s.flows {
        assert!(c.peer_closed, "a connection ended without the echo's FIN");
        assert_eq!(c.received.len(), c.to_send.len());
        assert!(c.received == c.to_send, "echoed bytes differ");
        echoed += c.received.len();
    }
    assert_eq!(echoed, total);
    assert!(payloads
        .iter()
        .all(|p| s.flows.iter().any(|c| c.to_send == *p)));
    assert_eq!(count(&sgraph, "tcp-input", "conn_accepted"), conns as u64);
    for r in ["bad_checksum", "no_listener", "table_full", "xcore_rx_lost"] {
        assert_eq!(count(&sgraph, "tcp-input", r), 0, "{r}");
    }
    // The bridge's counters are tcp-input events: every byte crossed it both ways.
    assert_eq!(count(&sgraph, "tcp-input", "xcore_sockets"), conns as u64);
    assert_eq!(count(&sgraph, "tcp-input", "xcore_rx_bytes"), total as u64);
    assert_eq!(count(&sgraph, "tcp-input", "xcore_tx_bytes"), total as u64);
    // The app lcore's: its endpoint read and wrote every byte, the echo counted them.
    let ag = app_graph.unwrap();
    for r in ["ep_rx_bytes", "ep_tx_bytes", "echo_bytes"] {
        assert_eq!(count(&ag, XCORE_APP_NODE, r), total as u64, "{r}");
    }
    eprintln!(
        "{conns} connections, {total} bytes echoed through an app lcore thread in {took:?} ({:.0} Mbit/s each way)",
        total as f64 * 8.0 / took.as_secs_f64() / 1e6
    );
}
