//! Sequence numbers: 32-bit values compared modulo 2^32 (RFC 9293 §3.4, RFC 1982 style).

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// A TCP sequence (or acknowledgment) number.
///
/// Comparisons are modular: `a.lt(b)` means `b` is ahead of `a` by less than 2^31. There is
/// deliberately no `Ord` impl, because modular order is not transitive over the whole space.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Seq(pub u32);

impl Seq {
    /// `self < other` modulo 2^32.
    #[inline]
    pub const fn lt(self, other: Seq) -> bool {
        (self.0.wrapping_sub(other.0) as i32) < 0
    }

    /// `self <= other` modulo 2^32.
    #[inline]
    pub const fn le(self, other: Seq) -> bool {
        (self.0.wrapping_sub(other.0) as i32) <= 0
    }

    /// `self > other` modulo 2^32.
    #[inline]
    pub const fn gt(self, other: Seq) -> bool {
        other.lt(self)
    }

    /// `self >= other` modulo 2^32.
    #[inline]
    pub const fn ge(self, other: Seq) -> bool {
        other.le(self)
    }

    /// `lo <= self < hi` modulo 2^32 (an empty range when `lo == hi`).
    #[inline]
    pub const fn in_range(self, lo: Seq, hi: Seq) -> bool {
        self.0.wrapping_sub(lo.0) < hi.0.wrapping_sub(lo.0)
    }

    /// The later of two numbers.
    #[inline]
    pub const fn max(self, other: Seq) -> Seq {
        if self.lt(other) {
            other
        } else {
            self
        }
    }

    /// The earlier of two numbers.
    #[inline]
    pub const fn min(self, other: Seq) -> Seq {
        if self.lt(other) {
            self
        } else {
            other
        }
    }

    /// The distance from `earlier` to `self` (`self - earlier`, wrapping); meaningful when
    /// `earlier.le(self)`.
    #[inline]
    pub const fn since(self, earlier: Seq) -> u32 {
        self.0.wrapping_sub(earlier.0)
    }
}

impl Add<u32> for Seq {
    type Output = Seq;
    #[inline]
    fn add(self, n: u32) -> Seq {
        Seq(self.0.wrapping_add(n))
    }
}

impl AddAssign<u32> for Seq {
    #[inline]
    fn add_assign(&mut self, n: u32) {
        self.0 = self.0.wrapping_add(n);
    }
}

impl Sub<u32> for Seq {
    type Output = Seq;
    #[inline]
    fn sub(self, n: u32) -> Seq {
        Seq(self.0.wrapping_sub(n))
    }
}

impl fmt::Debug for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seq({})", self.0)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modular_comparisons() {
        let a = Seq(u32::MAX - 5);
        let b = a + 10; // wrapped to 4
        assert_eq!(b, Seq(4));
        assert!(a.lt(b) && a.le(b) && b.gt(a) && b.ge(a));
        assert!(!b.lt(a) && !a.gt(b));
        assert!(a.le(a) && a.ge(a) && !a.lt(a));
        assert_eq!(b.since(a), 10);
        assert_eq!(b - 10, a);
        assert_eq!(a.max(b), b);
        assert_eq!(a.min(b), a);
        // Half the space away flips the order.
        assert!(Seq(0).lt(Seq(0x7fff_ffff)));
        assert!(!Seq(0).lt(Seq(0x8000_0001)));
        assert!(Seq(3).in_range(a, b) && a.in_range(a, b) && !b.in_range(a, b));
        assert!(!a.in_range(a, a));
        let mut c = a;
        c += 6;
        assert_eq!(c, Seq(0));
        assert_eq!(format!("{c} {c:?}"), "0 Seq(0)");
    }
}
