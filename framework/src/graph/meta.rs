//! Per-packet metadata that nodes pass along in the mbuf's scratch space (VPP's
//! `vnet_buffer(b)` opaque area).

use crate::mem::{Mbuf, SCRATCH_LEN};

/// What graph nodes know about a packet besides its bytes. Lives in the mbuf scratch words; it
/// is not cleared on allocation, so the entry node initialises the fields it owns.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PktMeta {
    /// Port the packet arrived on.
    pub rx_port: u16,
    /// Port chosen for transmission (set by lookup / rewrite nodes).
    pub tx_port: u16,
    /// Length of the L2 header that `eth-input` stripped (14, 18 or 22).
    pub l2_len: u16,
    /// VLAN id of the received frame (0: untagged).
    pub vlan: u16,
    /// Next-hop (adjacency) index chosen by the route lookup.
    pub next_hop: u32,
    /// Drop reason id while the packet travels to the drop node.
    pub drop_reason: u16,
    /// Bit flags owned by nodes (see the `F_*` constants).
    pub flags: u16,
    /// Trace id while the packet is traced (see `Mbuf::is_traced`).
    pub trace_id: u32,
    /// Free words for node-specific results (e.g. L4 offsets, socket ids).
    pub aux: [u32; 3],
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
