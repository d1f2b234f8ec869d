//! The `pcap` port (being written).
