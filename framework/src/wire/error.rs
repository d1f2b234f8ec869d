//! [`WireError`]: why a checked view or a `Repr::parse` refused a buffer.

use std::fmt;

/// Why a buffer was rejected by a checked constructor (`new_checked`) or a `Repr::parse`.
///
/// Every variant doubles as a drop-reason name for counters ([`WireError::as_str`]), so a node
/// can count `drops{reason="bad_ihl"}` straight from the error. The enum is `Copy` and
/// allocation-free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WireError {
    /// The buffer is shorter than the fixed header (or than a length the header itself
    /// announces, such as the IPv4 header length or a VLAN tag).
    Truncated,
    /// IPv4: the version field is not 4.
    BadVersion,
    /// IPv4: the header length field (IHL) is below 5.
    BadIhl,
    /// IPv4: the total length is shorter than the header or longer than the buffer.
    BadTotalLength,
    /// A checksum does not verify. No constructor or `parse` returns it — checksums are
    /// checked separately with the views' `verify_checksum` — but nodes use it to name the
    /// drop when that check fails.
    BadChecksum,
    /// TCP: the data offset is below 5 or the header it announces does not fit the buffer.
    BadDataOffset,
    /// An IPv4 or TCP option is malformed (length below 2, past the end of the options, or
    /// wrong for its kind).
    BadOption,
    /// UDP: the length field is below 8 or longer than the buffer.
    BadLength,
    /// ARP: the hardware type is not Ethernet (1).
    BadHardwareType,
    /// ARP: the protocol type is not IPv4 (0x0800).
    BadProtocolType,
    /// ARP: the hardware or protocol address length is not 6 / 4.
    BadAddressLength,
    /// ARP: the operation is neither request (1) nor reply (2).
    BadOperation,
    /// ICMP: an error message whose quoted packet is not an IPv4 header.
    BadQuote,
    /// A well-formed message of a kind the `Repr` does not model (an ICMP type other than
    /// echo, destination unreachable and time exceeded; a QinQ frame for `EthernetRepr`).
    Unsupported,
}

impl WireError {
    /// Every variant, in declaration order (for registering drop counters up front).
    pub const ALL: [WireError; 14] = [
        WireError::Truncated,
        WireError::BadVersion,
        WireError::BadIhl,
        WireError::BadTotalLength,
        WireError::BadChecksum,
        WireError::BadDataOffset,
        WireError::BadOption,
        WireError::BadLength,
        WireError::BadHardwareType,
        WireError::BadProtocolType,
        WireError::BadAddressLength,
        WireError::BadOperation,
        WireError::BadQuote,
        WireError::Unsupported,
    ];

    /// The drop-reason name: lower-case `snake_case`, stable, usable as a metric label value.
    pub const fn as_str(&self) -> &'static str {
        match self {
            WireError::Truncated => "truncated",
            WireError::BadVersion => "bad_version",
            WireError::BadIhl => "bad_ihl",
            WireError::BadTotalLength => "bad_total_length",
            WireError::BadChecksum => "bad_checksum",
            WireError::BadDataOffset => "bad_data_offset",
            WireError::BadOption => "bad_option",
            WireError::BadLength => "bad_length",
            WireError::BadHardwareType => "bad_hardware_type",
            WireError::BadProtocolType => "bad_protocol_type",
            WireError::BadAddressLength => "bad_address_length",
            WireError::BadOperation => "bad_operation",
            WireError::BadQuote => "bad_quote",
            WireError::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for WireError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for e in WireError::ALL {
            let s = e.as_str();
            assert!(seen.insert(s), "duplicate name {s}");
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
            assert_eq!(e.to_string(), s);
        }
    }
}
