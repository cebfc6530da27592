//! Cache hints for the packet path.
//!
//! The per-packet cost is dominated by memory latency: a frame's headers
//! were written by the reader's core, a flow's slot was last touched many
//! packets ago. These hints start loading them a few packets ahead. They
//! change no result.

/// Asks the CPU to start loading the cache lines of `v` (at most the first
/// four). Nothing on other architectures than x86_64.
#[inline(always)]
#[allow(unsafe_code)]
pub fn prefetch<T: ?Sized>(v: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = (v as *const T).cast::<i8>();
        let len = std::mem::size_of_val(v).min(256);
        for off in (0..len.max(1)).step_by(64) {
            // SAFETY: a prefetch reads nothing the program sees and never
            // faults, whatever the address; `wrapping_add` computes an
            // address without dereferencing it. SSE is part of the x86_64
            // baseline.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}
