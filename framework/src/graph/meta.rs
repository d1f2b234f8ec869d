//! Per-packet metadata that nodes pass along in the mbuf's scratch space (VPP's
//! `vnet_buffer(b)` opaque area).

use crate::mem::{Mbuf, SCRATCH_LEN};

/// What graph nodes know about a packet besides its bytes. Lives in the mbuf scratch words; it
/// is not cleared on allocation, so `eth-input` (or whichever node creates a packet) initialises
/// it.
///
/// Data-offset convention: after `eth-input` the mbuf data starts at the L3 header (the Ethernet
/// header was removed with `adj`, its bytes are still in the headroom); L4 nodes see the L4
/// header; `ipv4-rewrite` prepends a fresh Ethernet header.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PktMeta {
    /// Port the packet arrived on.
    pub rx_port: u16,
    /// Port chosen for transmission (set by `ipv4-lookup`, used by rewrite, arp and tx).
    pub tx_port: u16,
    /// Length of the L2 header that `eth-input` removed (14, 18 or 22).
    pub l2_len: u8,
    /// Length of the IPv4 header (set by `ipv4-input`).
    pub l3_len: u8,
    /// ICMP type for `icmp-error` to send.
    pub icmp_type: u8,
    /// ICMP code for `icmp-error` to send.
    pub icmp_code: u8,
    /// VLAN id of the received frame (0: untagged).
    pub vlan: u16,
    /// Bit flags (the `F_*` constants).
    pub flags: u16,
    /// An IPv4 address handed between nodes (host order): the local source address chosen by
    /// an L4 sender before `ipv4-lookup`; the neighbour to resolve (gateway or destination)
    /// after it.
    pub addr: u32,
    /// Trace id while the packet is traced (see `Mbuf::is_traced`).
    pub trace_id: u32,
    /// Drop reason id while the packet travels to the drop node.
    pub drop_reason: u16,
    /// Next-hop MTU for ICMP "fragmentation needed".
    pub mtu: u16,
    /// Words for node-specific results (e.g. UDP: remote address and ports).
    pub aux: [u32; 2],
}

const _: () = assert!(std::mem::size_of::<PktMeta>() == SCRATCH_LEN);
const _: () = assert!(std::mem::align_of::<PktMeta>() <= std::mem::align_of::<u64>());

impl PktMeta {
    /// The packet is addressed to one of our own addresses.
    pub const F_LOCAL: u16 = 1;
    /// The packet was generated locally (reply, error, socket send).
    pub const F_LOCAL_ORIGIN: u16 = 2;
    /// The L2 destination was broadcast or multicast.
    pub const F_L2_MULTICAST: u16 = 4;
    /// `ipv4-rewrite` found no neighbour: the `arp` node must resolve `addr` on `tx_port`.
    pub const F_NEEDS_ARP: u16 = 8;
    /// The packet is a reassembled datagram.
    pub const F_REASSEMBLED: u16 = 16;
}

/// Reads the metadata of a packet.
#[inline]
pub fn meta(m: &Mbuf) -> &PktMeta {
    // SAFETY: PktMeta is plain integers (every bit pattern valid), exactly SCRATCH_LEN bytes, and
    // needs at most 8-byte alignment, which the scratch words have.
    unsafe { &*(m.scratch_words().as_ptr() as *const PktMeta) }
}

/// Writes the metadata of a packet.
#[inline]
pub fn meta_mut(m: &mut Mbuf) -> &mut PktMeta {
    // SAFETY: as in `meta`; the borrow is exclusive through `&mut Mbuf`.
    unsafe { &mut *(m.scratch_words_mut().as_mut_ptr() as *mut PktMeta) }
}
