//! Tests of the drivers on Linux interfaces: `af_packet`, `af_xdp` and `tap`.

use std::path::PathBuf;

use super::*;

/// One port `p0` with the given driver lines, polled by one lcore.
fn one_port(driver: &str) -> String {
    format!(
        "[[memory.pools]]\nname = \"default\"\n\n[[ports]]\nname = \"p0\"\n{driver}\n\n[[lcores]]\nid = 1\nrx = [\"p0\"]\n"
    )
}

/// [`env`] with the interface check on, against a directory holding only `names` (like
/// `/sys/class/net`). The directory lives as long as the returned guard.
fn env_with_ifaces(names: &[&str]) -> (Env, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for name in names {
        std::fs::create_dir(dir.path().join(name)).unwrap();
    }
    let env = Env {
        net_dir: Some(dir.path().to_path_buf()),
        ..env()
    };
    (env, dir)
}

/// [`env`] with the interface check on, against this machine's interfaces.
fn system_env() -> Env {
    Env {
        net_dir: Some(PathBuf::from("/sys/class/net")),
        ..env()
    }
}

const IFACE_HINT: &str =
    "a Linux interface name: 1 to 15 bytes, without '/', ':' or whitespace, and not \".\" or \"..\"";

const NO_IFACE_HINT: &str =
    "check `ip link`, or create it (e.g. a veth pair: ip link add A type veth peer name B)";

#[test]
fn af_packet_defaults() {
    let c = ok(&one_port("driver = \"af_packet\"\niface = \"fpa0\""));
    let p = &c.ports[0];
    assert_eq!(
        p.driver,
        DriverConfig::AfPacket {
            iface: "fpa0".into(),
            qdisc_bypass: true,
            block_size: 1 << 18,
            blocks: 64,
            tx_frames: 1024,
        }
    );
    assert_eq!(p.driver.name(), "af_packet");
    assert_eq!((p.rx_queues, p.tx_queues, p.mtu), (1, 1, 1500));
    assert_eq!(p.mac, None, "the driver uses the interface's MAC");
}

#[test]
fn af_xdp_defaults() {
    let c = ok(&one_port("driver = \"af_xdp\"\niface = \"fpa0\""));
    let p = &c.ports[0];
    assert_eq!(
        p.driver,
        DriverConfig::AfXdp {
            iface: "fpa0".into(),
            queue: 0,
            mode: XdpMode::Auto,
            zero_copy: ZeroCopy::Auto,
            ring_size: 2048,
        }
    );
    assert_eq!(p.driver.name(), "af_xdp");
    assert_eq!(p.mac, None, "the driver uses the interface's MAC");
}

#[test]
fn tap_defaults() {
    let c = ok(&one_port("driver = \"tap\"\niface = \"fp-tap0\""));
    let p = &c.ports[0];
    assert_eq!(
        p.driver,
        DriverConfig::Tap {
            iface: "fp-tap0".into(),
            up: true,
        }
    );
    assert_eq!(p.driver.name(), "tap");
    assert_eq!((p.rx_queues, p.tx_queues), (1, 1));
    assert_eq!(p.mac, None, "the driver uses the interface's MAC");
}

#[test]
fn mac_is_filled_in_only_for_drivers_without_an_interface() {
    let text = r#"
[[memory.pools]]
name = "default"
[[ports]]
name = "n"
driver = "null"
[[ports]]
name = "r"
driver = "ring"
peer = "r"
[[ports]]
name = "c"
driver = "pcap"
tx = "/tmp/o.pcap"
[[ports]]
name = "a"
driver = "af_packet"
iface = "fpa0"
[[ports]]
name = "x"
driver = "af_xdp"
iface = "fpb0"
mac = "02:00:00:00:aa:01"
[[ports]]
name = "t"
driver = "tap"
iface = "fp-tap0"
[[lcores]]
id = 1
rx = ["n", "r", "c", "a", "x", "t"]
"#;
    let c = ok(text);
    let macs: Vec<_> = c.ports.iter().map(|p| p.mac).collect();
    assert_eq!(
        macs,
        vec![
            Some([2, 0, 0, 0, 0, 1]),
            Some([2, 0, 0, 0, 0, 2]),
            Some([2, 0, 0, 0, 0, 3]),
            None,
            Some([2, 0, 0, 0, 0xaa, 1]),
            None,
        ]
    );
    // Absent MACs are not printed, so they stay absent when the output is parsed back.
    let printed = toml::to_string(&c).unwrap();
    assert_eq!(printed.matches("mac = ").count(), 4, "{printed}");
    assert_eq!(c, ok(&printed));
    // A given MAC is checked as for the other drivers.
    let e = errs(&one_port(
        "driver = \"af_packet\"\niface = \"fpa0\"\nmac = \"01:00:5e:00:00:01\"",
    ));
    assert_eq!(
        at(&e, "ports[0].mac").message,
        "port MAC 01:00:5e:00:00:01 is a multicast address"
    );
}

#[test]
fn every_option_is_read_and_survives_a_round_trip() {
    let text = r#"
[[memory.pools]]
name = "default"
[[ports]]
name = "a"
driver = "af_packet"
iface = "fpa0"
qdisc_bypass = false
block_size = 4096
blocks = 1024
tx_frames = 65536
[[ports]]
name = "x"
driver = "af_xdp"
iface = "enp1s0f1"
rx_queues = 2
tx_queues = 2
queue = 255
mode = "generic"
zero_copy = "off"
ring_size = 64
[[ports]]
name = "n"
driver = "af_xdp"
iface = "fpb0"
mode = "native"
zero_copy = "on"
ring_size = 16384
[[ports]]
name = "t"
driver = "tap"
iface = "fp-tap-15-bytes"
up = false
[[lcores]]
id = 1
rx = ["a", "x:0", "x:1", "n", "t"]
"#;
    let c = ok(text);
    let drivers: Vec<_> = c.ports.iter().map(|p| p.driver.clone()).collect();
    assert_eq!(
        drivers,
        vec![
            DriverConfig::AfPacket {
                iface: "fpa0".into(),
                qdisc_bypass: false,
                block_size: 4096,
                blocks: 1024,
                tx_frames: 65536,
            },
            DriverConfig::AfXdp {
                iface: "enp1s0f1".into(),
                queue: 255,
                mode: XdpMode::Generic,
                zero_copy: ZeroCopy::Off,
                ring_size: 64,
            },
            DriverConfig::AfXdp {
                iface: "fpb0".into(),
                queue: 0,
                mode: XdpMode::Native,
                zero_copy: ZeroCopy::On,
                ring_size: 16384,
            },
            DriverConfig::Tap {
                iface: "fp-tap-15-bytes".into(),
                up: false,
            },
        ]
    );
    let printed = toml::to_string(&c).unwrap();
    for line in [
        "driver = \"af_packet\"",
        "qdisc_bypass = false",
        "driver = \"af_xdp\"",
        "mode = \"generic\"",
        "zero_copy = \"off\"",
        "mode = \"native\"",
        "zero_copy = \"on\"",
        "driver = \"tap\"",
        "up = false",
    ] {
        assert!(printed.contains(line), "`{line}` not in:\n{printed}");
    }
    assert_eq!(c, ok(&printed), "round trip changed the config:\n{printed}");
}

#[test]
fn iface_is_required() {
    for driver in ["af_packet", "af_xdp", "tap"] {
        let text = one_port(&format!("driver = \"{driver}\""));
        let e = errs(&text);
        let m = at(&e, "ports[0].iface");
        assert_eq!(m.message, "missing required field `iface`", "{driver}");
        assert!(m.hint.contains("iface = \""), "{driver}: {}", m.hint);
        assert_eq!(m.line, Some(line_of(&text, "[[ports]]")), "{driver}");
        assert_eq!(e.len(), 1, "{driver}: {}", ConfigErrors(e.clone()));
    }
    let e = errs(&one_port("driver = \"tap\""));
    assert_eq!(
        at(&e, "ports[0].iface").hint,
        "name the TAP interface (created if missing), like iface = \"fp-tap0\""
    );
}

#[test]
fn iface_must_be_a_linux_interface_name() {
    for (name, message) in [
        ("", "interface name must not be empty".to_string()),
        (
            "abcdefghijklmnop",
            "interface name \"abcdefghijklmnop\" is 16 bytes long; Linux allows at most 15"
                .to_string(),
        ),
        (
            "ééééééééé",
            "interface name \"ééééééééé\" is 18 bytes long; Linux allows at most 15".to_string(),
        ),
        (
            "veth/0",
            "invalid interface name \"veth/0\": it contains '/'".to_string(),
        ),
        (
            "eth0:1",
            "invalid interface name \"eth0:1\": it contains ':'".to_string(),
        ),
        (
            "fp a0",
            "invalid interface name \"fp a0\": it contains whitespace".to_string(),
        ),
        (
            "fpa0\t",
            "invalid interface name \"fpa0\\t\": it contains whitespace".to_string(),
        ),
        ("..", "\"..\" is not a valid interface name".to_string()),
        (".", "\".\" is not a valid interface name".to_string()),
    ] {
        for driver in ["af_packet", "af_xdp", "tap"] {
            let text = one_port(&format!(
                "driver = \"{driver}\"\niface = {}",
                toml::Value::String(name.into())
            ));
            let e = errs(&text);
            let m = at(&e, "ports[0].iface");
            assert_eq!(m.message, message, "{driver}");
            assert_eq!(m.hint, IFACE_HINT);
            assert_eq!(m.line, Some(line_of(&text, "iface = ")));
            assert_eq!(e.len(), 1, "{driver}: {}", ConfigErrors(e.clone()));
        }
    }
    // 15 bytes is the longest name.
    ok(&one_port("driver = \"tap\"\niface = \"abcdefghijklmno\""));
    let e = errs(&one_port("driver = \"af_xdp\"\niface = 3"));
    let m = at(&e, "ports[0].iface");
    assert_eq!(m.message, "expected a string, got integer 3");
    assert_eq!(m.hint, IFACE_HINT);
}

#[test]
fn af_packet_and_af_xdp_interfaces_must_exist() {
    let (env, _dir) = env_with_ifaces(&["fpa0", "lo"]);
    for driver in ["af_packet", "af_xdp"] {
        let text = one_port(&format!(
            "driver = \"{driver}\"\niface = \"fp-nonexistent0\""
        ));
        let e = parse_with(&text, &env).unwrap_err().0;
        assert_eq!(e.len(), 1, "{driver}: {}", ConfigErrors(e.clone()));
        let m = at(&e, "ports[0].iface");
        assert_eq!(
            m.message,
            "interface `fp-nonexistent0` does not exist on this machine"
        );
        assert_eq!(m.hint, NO_IFACE_HINT);
        assert_eq!(m.line, Some(line_of(&text, "iface = ")));
        // The same against this machine's /sys/class/net.
        let e = parse_with(&text, &system_env()).unwrap_err().0;
        assert_eq!(
            at(&e, "ports[0].iface").message,
            "interface `fp-nonexistent0` does not exist on this machine"
        );
        // An existing interface is fine.
        let text = one_port(&format!("driver = \"{driver}\"\niface = \"fpa0\""));
        parse_with(&text, &env).unwrap_or_else(|e| panic!("{driver}: {e}"));
        if std::path::Path::new("/sys/class/net/lo").exists() {
            let text = one_port(&format!("driver = \"{driver}\"\niface = \"lo\""));
            parse_with(&text, &system_env()).unwrap_or_else(|e| panic!("{driver}: {e}"));
        }
    }
    // A tap interface is created when missing.
    let text = one_port("driver = \"tap\"\niface = \"fp-nonexistent0\"");
    parse_with(&text, &env).unwrap_or_else(|e| panic!("{e}"));
    parse_with(&text, &system_env()).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn two_ports_cannot_share_an_interface() {
    let text = r#"
[[memory.pools]]
name = "default"
[[ports]]
name = "a"
driver = "af_packet"
iface = "fpa0"
[[ports]]
name = "x"
driver = "af_xdp"
iface = "fpa0"
[[ports]]
name = "t"
driver = "tap"
iface = "fp-tap0"
[[ports]]
name = "t2"
driver = "tap"
iface = "fp-tap0"
[[ports]]
name = "n"
driver = "null"
[[ports]]
name = "b"
driver = "af_packet"
iface = "fpa0"
[[lcores]]
id = 1
rx = ["a", "x", "t", "t2", "n", "b"]
"#;
    let e = errs(text);
    assert_eq!(e.len(), 3, "{}", ConfigErrors(e.clone()));
    let m = at(&e, "ports[1].iface");
    assert_eq!(
        m.message,
        "interface `fpa0` is used by both port `a` (ports[0]) and port `x`"
    );
    assert_eq!(
        m.hint,
        "a port owns its interface: give each port its own `iface` (one port can have several queues)"
    );
    assert_eq!(m.line, Some(11));
    assert_eq!(
        at(&e, "ports[3].iface").message,
        "interface `fp-tap0` is used by both port `t` (ports[2]) and port `t2`"
    );
    assert_eq!(
        at(&e, "ports[5].iface").message,
        "interface `fpa0` is used by both port `a` (ports[0]) and port `b`"
    );
}

#[test]
fn af_xdp_has_as_many_tx_queues_as_rx_queues() {
    let text = one_port("driver = \"af_xdp\"\niface = \"fpa0\"\nrx_queues = 2\ntx_queues = 1")
        .replace("rx = [\"p0\"]", "rx = [\"p0:0\", \"p0:1\"]");
    let e = errs(&text);
    assert_eq!(e.len(), 1, "{}", ConfigErrors(e.clone()));
    let m = at(&e, "ports[0].tx_queues");
    assert_eq!(
        m.message,
        "af_xdp ports have as many tx queues as rx queues, got rx_queues = 2 and tx_queues = 1"
    );
    assert_eq!(
        m.hint,
        "each queue is one AF_XDP socket, used both ways: give both the same count, like tx_queues = 2 or rx_queues = 1"
    );
    assert_eq!(m.line, Some(line_of(&text, "tx_queues = 1")));
    // Without `tx_queues` (1), the error is at `rx_queues`.
    let text = text.replace("tx_queues = 1\n", "");
    let e = errs(&text);
    let m = at(&e, "ports[0].rx_queues");
    assert_eq!(
        m.hint,
        "each queue is one AF_XDP socket, used both ways: give both the same count, like rx_queues = 1 or tx_queues = 2"
    );
    // Equal counts are fine; the lcore gets tx queue 0 automatically.
    let c = ok(&text.replace("rx_queues = 2", "rx_queues = 2\ntx_queues = 2"));
    assert_eq!(c.ports[0].tx_queues, 2);
    assert_eq!(c.lcores[0].tx, vec![qr("p0", 0)]);
}

#[test]
fn af_xdp_pool_buffers_hold_a_frame_after_the_xdp_headroom() {
    // headroom + data_room = 1152 < 256 + 1500 + 18 = 1774: one error, at the port's pool, even
    // though data_room < mtu + 18 too.
    let text = one_port("driver = \"af_xdp\"\niface = \"fpa0\"")
        .replace("name = \"default\"", "name = \"default\"\ndata_room = 1024");
    let e = errs(&text);
    assert_eq!(e.len(), 1, "{}", ConfigErrors(e.clone()));
    let m = at(&e, "ports[0].pool");
    assert_eq!(
        m.message,
        "pool `default` is too small for af_xdp: 1518-byte frames (mtu 1500 + 18) after the 256-byte XDP headroom need headroom + data_room >= 1774, but it has headroom = 128 + data_room = 1024 = 1152"
    );
    assert_eq!(
        m.hint,
        "raise memory.pools[0].data_room to at least 1646, or lower mtu to at most 878"
    );
    assert_eq!(m.line, Some(line_of(&text, "[[ports]]")));

    // data_room holds mtu + 18 but not the XDP headroom as well; `pool` given: the error is
    // on it.
    let text = format!(
        "[[memory.pools]]\nname = \"default\"\n[[memory.pools]]\nname = \"small\"\ndata_room = 1500\n{}",
        one_port("driver = \"af_xdp\"\niface = \"fpa0\"\npool = \"small\"\nmtu = 1400")
            .replace("[[memory.pools]]\nname = \"default\"\n", "")
    );
    let e = errs(&text);
    assert_eq!(e.len(), 1, "{}", ConfigErrors(e.clone()));
    let m = at(&e, "ports[0].pool");
    assert!(
        m.message
            .starts_with("pool `small` is too small for af_xdp: 1418-byte frames (mtu 1400 + 18)"),
        "{}",
        m.message
    );
    assert!(m
        .message
        .ends_with(">= 1674, but it has headroom = 128 + data_room = 1500 = 1628"));
    assert_eq!(
        m.hint,
        "raise memory.pools[1].data_room to at least 1546, or lower mtu to at most 1354"
    );
    assert_eq!(m.line, Some(line_of(&text, "pool = \"small\"")));
    // Exactly enough.
    ok(&text.replace("data_room = 1500", "data_room = 1546"));
    ok(&text.replace("data_room = 1500", "headroom = 0\ndata_room = 1674"));
    // The same pool is fine for the other drivers.
    ok(&text.replace("driver = \"af_xdp\"", "driver = \"af_packet\""));

    // A headroom above 256 counts, but the frame must still fit in data_room.
    let text = one_port("driver = \"af_xdp\"\niface = \"fpa0\"").replace(
        "name = \"default\"",
        "name = \"default\"\nheadroom = 512\ndata_room = 1400",
    );
    let e = errs(&text);
    assert_eq!(e.len(), 1, "{}", ConfigErrors(e.clone()));
    assert_eq!(
        at(&e, "ports[0].mtu").message,
        "mtu 1500 needs 1518-byte frames, but pool `default` has data_room = 1400"
    );
    // Where not even mtu 68 fits, only data_room is suggested.
    let text = one_port("driver = \"af_xdp\"\niface = \"fpa0\"\nmtu = 68").replace(
        "name = \"default\"",
        "name = \"default\"\nheadroom = 0\ndata_room = 300",
    );
    let e = errs(&text);
    assert_eq!(
        at(&e, "ports[0].pool").hint,
        "raise memory.pools[0].data_room to at least 342"
    );
}

#[test]
fn tap_ports_have_one_queue_each_way() {
    let text = one_port("driver = \"tap\"\niface = \"fp-tap0\"\nrx_queues = 2\ntx_queues = 2")
        .replace("rx = [\"p0\"]", "rx = [\"p0:0\", \"p0:1\"]");
    let e = errs(&text);
    assert_eq!(e.len(), 2, "{}", ConfigErrors(e.clone()));
    let m = at(&e, "ports[0].rx_queues");
    assert_eq!(
        m.message,
        "tap ports have exactly one queue each way, got rx_queues = 2"
    );
    assert_eq!(m.hint, "set rx_queues = 1 or remove it");
    assert_eq!(m.line, Some(line_of(&text, "rx_queues = 2")));
    assert_eq!(
        at(&e, "ports[0].tx_queues").message,
        "tap ports have exactly one queue each way, got tx_queues = 2"
    );
}

#[test]
fn driver_keys_are_only_valid_for_their_driver() {
    let text = one_port("driver = \"af_packet\"\niface = \"fpa0\"\nring_size = 2048\nup = true");
    let e = errs(&text);
    assert_eq!(e.len(), 2, "{}", ConfigErrors(e.clone()));
    let m = at(&e, "ports[0].ring_size");
    assert_eq!(m.message, "`ring_size` is only valid for driver \"af_xdp\"");
    assert_eq!(
        m.hint,
        "this port has driver = \"af_packet\"; remove `ring_size` or change the driver"
    );
    assert_eq!(m.line, Some(line_of(&text, "ring_size")));
    assert_eq!(
        at(&e, "ports[0].up").message,
        "`up` is only valid for driver \"tap\""
    );
    // A key shared by several drivers names them all, once.
    let e = errs(&one_port("driver = \"null\"\niface = \"fpa0\""));
    assert_eq!(e.len(), 1, "{}", ConfigErrors(e.clone()));
    assert_eq!(
        at(&e, "ports[0].iface").message,
        "`iface` is only valid for drivers \"af_packet\", \"af_xdp\", \"tap\""
    );
    // Keys of the new drivers on each other and on the old ones, and the reverse.
    for (driver, key, owner) in [
        ("af_xdp", "blocks = 8", "driver \"af_packet\""),
        ("af_xdp", "qdisc_bypass = true", "driver \"af_packet\""),
        ("tap", "queue = 1", "driver \"af_xdp\""),
        ("tap", "mode = \"native\"", "driver \"af_xdp\""),
        ("af_packet", "zero_copy = \"on\"", "driver \"af_xdp\""),
        ("af_xdp", "block_size = 4096", "driver \"af_packet\""),
        ("tap", "tx_frames = 64", "driver \"af_packet\""),
        ("af_packet", "depth = 1024", "driver \"ring\""),
        ("af_xdp", "size = 64", "driver \"null\""),
        ("tap", "rx = \"in.pcap\"", "driver \"pcap\""),
    ] {
        let e = errs(&one_port(&format!(
            "driver = \"{driver}\"\niface = \"fpa0\"\n{key}"
        )));
        let k = key.split(' ').next().unwrap();
        assert_eq!(e.len(), 1, "{driver} {key}: {}", ConfigErrors(e.clone()));
        assert_eq!(
            at(&e, &format!("ports[0].{k}")).message,
            format!("`{k}` is only valid for {owner}")
        );
    }
    // A misspelt key is unknown, with the closest key as a suggestion.
    let e = errs(&one_port(
        "driver = \"af_xdp\"\niface = \"fpa0\"\nzerocopy = \"on\"",
    ));
    let m = at(&e, "ports[0].zerocopy");
    assert_eq!(m.message, "unknown field `zerocopy`");
    assert!(
        m.hint.starts_with("did you mean `zero_copy`?"),
        "{}",
        m.hint
    );
}

#[test]
fn driver_options_are_range_checked() {
    for (driver, line, path, message, hint) in [
        (
            "af_packet",
            "block_size = 2048",
            "block_size",
            "must be between 4096 and 67108864, got 2048",
            "bytes per TPACKET_V3 rx block: a power of two from 4096 (4 KiB) to 67108864 (64 MiB), like block_size = 262144",
        ),
        (
            "af_packet",
            "block_size = 1000000",
            "block_size",
            "block_size must be a power of two, got 1000000",
            "use 524288 or 1048576",
        ),
        (
            "af_packet",
            "blocks = 0",
            "blocks",
            "must be between 1 and 1024, got 0",
            "rx blocks per queue, 1 to 1024",
        ),
        (
            "af_packet",
            "tx_frames = 100",
            "tx_frames",
            "tx_frames must be a power of two, got 100",
            "use 64 or 128",
        ),
        (
            "af_packet",
            "tx_frames = 131072",
            "tx_frames",
            "must be between 16 and 65536, got 131072",
            "frames of the tx ring per queue: a power of two from 16 to 65536, like tx_frames = 1024",
        ),
        (
            "af_packet",
            "qdisc_bypass = \"yes\"",
            "qdisc_bypass",
            "expected a boolean, got string \"yes\"",
            "write true or false (without quotes)",
        ),
        (
            "af_xdp",
            "queue = 256",
            "queue",
            "must be between 0 and 255, got 256",
            "the first NIC queue, 0 to 255: port queue q uses NIC queue `queue` + q",
        ),
        (
            "af_xdp",
            "mode = \"natve\"",
            "mode",
            "unknown value \"natve\"",
            "did you mean \"native\"? (expected one of \"auto\", \"native\", \"generic\")",
        ),
        (
            "af_xdp",
            "zero_copy = true",
            "zero_copy",
            "expected a string, got boolean true",
            "expected one of \"auto\", \"on\", \"off\"",
        ),
        (
            "af_xdp",
            "ring_size = 3000",
            "ring_size",
            "ring_size must be a power of two, got 3000",
            "use 2048 or 4096",
        ),
        (
            "af_xdp",
            "ring_size = 32",
            "ring_size",
            "must be between 64 and 16384, got 32",
            "descriptors per AF_XDP ring: a power of two from 64 to 16384, like ring_size = 2048",
        ),
        (
            "tap",
            "up = 1",
            "up",
            "expected a boolean, got integer 1",
            "write true or false (without quotes)",
        ),
    ] {
        let text = one_port(&format!("driver = \"{driver}\"\niface = \"fpa0\"\n{line}"));
        let e = errs(&text);
        assert_eq!(e.len(), 1, "{line}: {}", ConfigErrors(e.clone()));
        let m = at(&e, &format!("ports[0].{path}"));
        assert_eq!((m.message.as_str(), m.hint.as_str()), (message, hint), "{line}");
        assert_eq!(m.line, Some(line_of(&text, line)), "{line}");
    }
    // A misspelt driver name.
    let e = errs(&one_port("driver = \"af-xdp\"\niface = \"fpa0\""));
    let m = at(&e, "ports[0].driver");
    assert_eq!(m.message, "unknown value \"af-xdp\"");
    assert_eq!(
        m.hint,
        "did you mean \"af_xdp\"? (expected one of \"null\", \"ring\", \"pcap\", \"af_packet\", \"af_xdp\", \"tap\")"
    );
    assert_eq!(e.len(), 1, "{}", ConfigErrors(e.clone()));
}

#[test]
fn every_error_of_a_bad_port_is_reported_at_once() {
    let text = r#"
[[memory.pools]]
name = "default"
data_room = 1024
[[ports]]
name = "x"
driver = "af_xdp"
iface = "fp-nonexistent0"
rx_queues = 2
ring_size = 100
blocks = 8
[[ports]]
name = "t"
driver = "tap"
iface = "fp-nonexistent0"
mtu = 1000
tx_queues = 2
[[lcores]]
id = 1
rx = ["x:0", "x:1", "t"]
"#;
    let (env, _dir) = env_with_ifaces(&[]);
    let e = parse_with(text, &env).unwrap_err().0;
    let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "ports[0].pool",
            "ports[0].iface",
            "ports[0].rx_queues",
            "ports[0].ring_size",
            "ports[0].blocks",
            "ports[1].iface",
            "ports[1].tx_queues",
        ],
        "{}",
        ConfigErrors(e.clone())
    );
}

#[test]
fn interface_samples_only_lack_their_interfaces() {
    // With the interfaces the samples name, they are valid.
    let (env, _dir) = env_with_ifaces(&["fpa0", "fpb0"]);
    for name in [
        "l3fwd-af_xdp.toml",
        "l3fwd-af_packet.toml",
        "udp-echo-tap.toml",
    ] {
        parse_with(&sample(name), &env).unwrap_or_else(|e| panic!("configs/{name}:\n{e}"));
    }
    // On this machine, the only possible errors are the missing interfaces.
    for name in ["l3fwd-af_xdp.toml", "l3fwd-af_packet.toml"] {
        if let Err(e) = parse_with(&sample(name), &system_env()) {
            for err in e.iter() {
                assert!(
                    err.path.ends_with(".iface")
                        && err.message.ends_with("` does not exist on this machine"),
                    "configs/{name}: {err}"
                );
            }
        }
    }
    parse_with(&sample("udp-echo-tap.toml"), &system_env()).unwrap();

    // What the samples set up.
    for (name, driver) in [
        ("l3fwd-af_xdp.toml", "af_xdp"),
        ("l3fwd-af_packet.toml", "af_packet"),
    ] {
        let c = ok(&sample(name));
        assert_eq!(c.app, AppConfig::L3fwd(L3fwdConfig {}), "{name}");
        let ports: Vec<_> =
            c.ports
                .iter()
                .map(|p| {
                    let iface = match &p.driver {
                        DriverConfig::AfPacket { iface, .. }
                        | DriverConfig::AfXdp { iface, .. } => iface.as_str(),
                        other => panic!("{name}: unexpected driver {other:?}"),
                    };
                    (p.driver.name(), iface, p.ipv4[0].to_string(), p.mac)
                })
                .collect();
        assert_eq!(
            ports,
            vec![
                (driver, "fpa0", "198.18.0.1/24".to_string(), None),
                (driver, "fpb0", "198.18.1.1/24".to_string(), None),
            ],
            "{name}"
        );
        assert!(matches!(c.run.idle, IdlePolicy::Adaptive { .. }), "{name}");
        assert_eq!(c.metrics.listen, SocketAddr::from(([127, 0, 0, 1], 9100)));
        assert!(sample(name).contains("tests/netns.sh setup-l3"), "{name}");
    }
    let c = ok(&sample("udp-echo-tap.toml"));
    assert_eq!(
        c.ports[0].driver,
        DriverConfig::Tap {
            iface: "fp-tap0".into(),
            up: true
        }
    );
    assert_eq!(c.ports[0].ipv4[0].to_string(), "198.18.10.2/24");
    assert_eq!(
        c.app,
        AppConfig::UdpEcho(UdpEchoConfig {
            port: 7,
            address: None
        })
    );
}
