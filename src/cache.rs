//! Cache hints for the packet path.

/// Asks the CPU to start loading the cache line holding `at` (a hint: no
/// effect on results, nothing on other architectures). Any address will
/// do: nothing is read through it.
#[inline(always)]
#[allow(unsafe_code)]
pub fn prefetch(at: *const u8) {
    // SAFETY: a prefetch reads nothing the program sees and never faults,
    // whatever the address; SSE is part of the x86_64 baseline.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// [`prefetch`] for every cache line of `value`.
#[inline(always)]
pub fn prefetch_all<T>(value: &T) {
    let base: *const u8 = std::ptr::from_ref(value).cast();
    for off in (0..std::mem::size_of::<T>()).step_by(64) {
        prefetch(base.wrapping_add(off));
    }
}

/// Bytes at the start of a frame that decoding reads: link, network and
/// transport headers with options (Ethernet, two VLAN tags, IPv4 with
/// options or IPv6, TCP with options).
const HEADER_BYTES: usize = 128;

/// [`prefetch`] for the cache lines holding a frame's headers.
#[inline(always)]
pub fn prefetch_headers(frame: &[u8]) {
    let start = frame.as_ptr();
    let len = frame.len().min(HEADER_BYTES);
    prefetch(start);
    // The following lines start where the first one ends.
    let mut off = 64 - (start as usize & 63);
    while off < len {
        prefetch(start.wrapping_add(off));
        off += 64;
    }
}
