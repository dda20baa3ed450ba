//! The identity of compiled content: [`VersionId`] and the stable hash it carries.

/// The exact compiled content a flow version holds: the flow id, the registry's revision
/// (0 until published) and a content hash of the source and the compiler.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct VersionId {
    /// The flow id.
    pub flow: String,
    /// Revision number within the flow (1, 2, ...; 0 before it is published).
    pub revision: u64,
    /// Content hash (16 hex digits).
    pub hash: String,
}

impl std::fmt::Display for VersionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}#{}", self.flow, self.revision, self.hash)
    }
}

/// A stable 64-bit FNV-1a hash (the same on every platform and release of Rust).
#[must_use]
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // separate the parts so that ("ab","c") and ("a","bc") differ
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
