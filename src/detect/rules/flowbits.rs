//! Flowbits: named flags a rule sets on a flow and later rules test
//! (`flowbits:set,name` ... `flowbits:isset,name`).
//!
//! Names are numbered once when rules load; a flow keeps the numbers of its
//! set bits in a small sorted vector allocated when a rule first sets one
//! (8 bytes in every [`Flow`], nothing more until then). A flow holds at
//! most [`MAX_PER_FLOW`] bits; setting one more is refused and counted.
//!
//! [`Flow`]: crate::flow::Flow

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::HashMap;

/// Bits one flow can hold at once.
pub const MAX_PER_FLOW: usize = 32;

/// The flowbits set on one flow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowBits {
    // A box (one thin pointer) rather than the Vec itself (three words): this
    // field is in every flow, and few flows ever hold a flowbit.
    #[allow(clippy::box_collection)]
    set: Option<Box<Vec<u16>>>,
}

impl FlowBits {
    pub fn is_set(&self, bit: u16) -> bool {
        self.set
            .as_ref()
            .is_some_and(|s| s.binary_search(&bit).is_ok())
    }

    /// Sets `bit`; false when the flow already holds [`MAX_PER_FLOW`] bits.
    pub fn set(&mut self, bit: u16) -> bool {
        let set = self.set.get_or_insert_with(Default::default);
        match set.binary_search(&bit) {
            Ok(_) => true,
            Err(_) if set.len() >= MAX_PER_FLOW => false,
            Err(i) => {
                set.insert(i, bit);
                true
            }
        }
    }

    pub fn unset(&mut self, bit: u16) {
        if let Some(set) = &mut self.set
            && let Ok(i) = set.binary_search(&bit)
        {
            set.remove(i);
        }
    }

    pub fn len(&self) -> usize {
        self.set.as_ref().map_or(0, |s| s.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Flowbit names and their numbers, filled while rules load.
#[derive(Clone, Debug, Default)]
pub struct Names {
    ids: HashMap<String, u16>,
    names: Vec<String>,
}

impl Names {
    /// The number of `name`, assigned on first use; None past 65536 names.
    pub fn intern(&mut self, name: &str) -> Option<u16> {
        if let Some(&i) = self.ids.get(name) {
            return Some(i);
        }
        let i = u16::try_from(self.names.len()).ok()?;
        self.ids.insert(name.to_string(), i);
        self.names.push(name.to_string());
        Some(i)
    }

    pub fn name(&self, bit: u16) -> Option<&str> {
        self.names.get(usize::from(bit)).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_unset_and_the_cap() {
        let mut b = FlowBits::default();
        assert!(!b.is_set(3));
        assert!(b.set(3) && b.set(1) && b.set(3));
        assert!(b.is_set(1) && b.is_set(3) && b.len() == 2);
        b.unset(3);
        assert!(!b.is_set(3) && b.is_set(1));
        for i in 0..100 {
            let ok = b.set(i);
            assert_eq!(ok, usize::from(i) < MAX_PER_FLOW || i == 1, "{i}");
        }
        assert_eq!(b.len(), MAX_PER_FLOW);
    }

    #[test]
    fn names_are_numbered_once() {
        let mut n = Names::default();
        assert_eq!(n.intern("ET.Evil"), Some(0));
        assert_eq!(n.intern("x"), Some(1));
        assert_eq!(n.intern("ET.Evil"), Some(0));
        assert_eq!(n.name(1), Some("x"));
    }
}
