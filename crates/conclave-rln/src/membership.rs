//! The membership tree: every registered rate commitment at its registry index, minus the
//! members removed for double signalling, in a depth-20 Poseidon tree kept in memory (Waku's
//! lesson: a local tree is cheap and never out of sync). Recent roots form the window a proof's
//! root must be in, so a proof made just before a tree change still verifies.

use std::collections::{BTreeMap, VecDeque};

use rln::prelude::{Fr, Hasher, PoseidonHash, RLNMerkleProof, DEFAULT_TREE_DEPTH};
use thiserror::Error;
use zerokit_utils::merkle_tree::{OptimalMerkleTree, ZerokitMerkleTree};

use crate::identity::{rate_commitment, RlnIdentity};

/// One registration as the registry lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RlnRegistration {
    pub index: u32,
    pub rate_commitment: Fr,
    /// Messages per epoch.
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MembershipError {
    #[error("leaf index {index} is outside the depth-20 tree (at most {max})")]
    IndexOutOfRange { index: u32, max: u32 },
    #[error("leaf index {0} is not a current member")]
    NotAMember(u32),
    #[error("the tree refused an update: {0}")]
    Tree(String),
}

/// The tree, its leaves and the recent-root window.
pub struct RlnMembership {
    tree: OptimalMerkleTree<PoseidonHash>,
    /// The registry's registrations as last applied (removals are re-applied over them).
    registered: Vec<RlnRegistration>,
    /// Current leaves by index: (rate commitment, limit).
    leaves: BTreeMap<u32, (Fr, u32)>,
    /// Id commitments of removed (slashed) members; their registrations stay out of the tree.
    removed: Vec<Fr>,
    roots: VecDeque<Fr>,
    window: usize,
}

impl RlnMembership {
    /// An empty tree; `window` recent roots are accepted (at least 1: the window is never empty).
    pub fn new(window: usize) -> Self {
        let tree = OptimalMerkleTree::<PoseidonHash>::default(DEFAULT_TREE_DEPTH)
            .expect("depth 20 is supported");
        let mut roots = VecDeque::new();
        roots.push_back(tree.root());
        RlnMembership {
            tree,
            registered: Vec::new(),
            leaves: BTreeMap::new(),
            removed: Vec::new(),
            roots,
            window: window.max(1),
        }
    }

    /// Largest index a depth-20 tree holds (the registry checks the same bound).
    pub const MAX_INDEX: u32 = conclave_core::RLN_MAX_INDEX;

    /// Brings the tree to `registrations` minus the removed members; returns whether the root
    /// changed. Only changed leaves are rewritten.
    pub fn apply(
        &mut self,
        registrations: impl IntoIterator<Item = RlnRegistration>,
    ) -> Result<bool, MembershipError> {
        let registrations: Vec<RlnRegistration> = registrations.into_iter().collect();
        let mut want: BTreeMap<u32, (Fr, u32)> = BTreeMap::new();
        for &r in &registrations {
            if r.index > Self::MAX_INDEX {
                return Err(MembershipError::IndexOutOfRange {
                    index: r.index,
                    max: Self::MAX_INDEX,
                });
            }
            if !self.is_removed(&r) {
                want.insert(r.index, (r.rate_commitment, r.limit));
            }
        }
        let before = self.tree.root();
        let gone: Vec<u32> = self
            .leaves
            .keys()
            .filter(|i| !want.contains_key(i))
            .copied()
            .collect();
        for i in gone {
            self.set_leaf(i, Fr::from(0u64))?;
        }
        for (&i, &(rate, _)) in &want {
            if self.leaves.get(&i).map(|l| l.0) != Some(rate) {
                self.set_leaf(i, rate)?;
            }
        }
        // A root that holds a leaf no longer in the tree would let that member keep proving:
        // when any leaf goes or changes, only the new root is acceptable. Additions keep the
        // window, so proofs made just before a member joined still verify.
        let dropped = self
            .leaves
            .iter()
            .any(|(i, (rate, _))| want.get(i).map(|w| w.0) != Some(*rate));
        self.leaves = want;
        self.registered = registrations;
        let after = self.tree.root();
        if dropped {
            self.roots.clear();
        }
        if after != before || dropped {
            self.roots.push_back(after);
            while self.roots.len() > self.window {
                self.roots.pop_front();
            }
        }
        Ok(after != before)
    }

    fn set_leaf(&mut self, index: u32, leaf: Fr) -> Result<(), MembershipError> {
        self.tree
            .set(index as usize, leaf)
            .map_err(|e| MembershipError::Tree(e.to_string()))
    }

    fn is_removed(&self, r: &RlnRegistration) -> bool {
        // A removal is kept as the id commitment; it excludes the registration whose leaf it makes.
        self.removed
            .iter()
            .any(|idc| rate_commitment(*idc, r.limit) == r.rate_commitment)
    }

    /// Removes a slashed identity now and for every later [`apply`](Self::apply); returns
    /// whether a leaf was dropped.
    pub fn remove(&mut self, identity: &RlnIdentity) -> bool {
        let idc = identity.id_commitment();
        if !self.removed.contains(&idc) {
            self.removed.push(idc);
        }
        let registered = std::mem::take(&mut self.registered);
        self.apply(registered)
            .expect("these registrations were applied before")
    }

    /// The current member leaf an identity occupies, if any: (index, limit).
    pub fn leaf_of(&self, identity: &RlnIdentity) -> Option<(u32, u32)> {
        let idc = identity.id_commitment();
        let mut by_limit: BTreeMap<u32, Fr> = BTreeMap::new();
        self.leaves.iter().find_map(|(&i, &(rate, limit))| {
            let mine = *by_limit.entry(limit).or_insert_with(|| {
                Hasher::<PoseidonHash>::hash_pair(idc, Fr::from(u64::from(limit)))
            });
            (mine == rate).then_some((i, limit))
        })
    }

    pub fn root(&self) -> Fr {
        self.tree.root()
    }

    /// Recent roots, oldest first; never empty.
    pub fn roots(&self) -> Vec<Fr> {
        self.roots.iter().copied().collect()
    }

    pub fn members(&self) -> usize {
        self.leaves.len()
    }

    /// The authentication path of a member leaf, for proving.
    pub fn merkle_proof(&self, index: u32) -> Result<RLNMerkleProof, MembershipError> {
        if !self.leaves.contains_key(&index) {
            return Err(MembershipError::NotAMember(index));
        }
        let p = self
            .tree
            .proof(index as usize)
            .map_err(|e| MembershipError::Tree(e.to_string()))?;
        Ok(RLNMerkleProof::from(&p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(index: u32, id: &RlnIdentity, limit: u32) -> RlnRegistration {
        RlnRegistration {
            index,
            rate_commitment: id.rate_commitment(limit),
            limit,
        }
    }

    #[test]
    fn same_registrations_same_root_in_any_order_and_window_bounded() {
        let ids: Vec<RlnIdentity> = (0..4).map(|_| RlnIdentity::generate()).collect();
        let regs: Vec<RlnRegistration> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| reg(i as u32 * 7, id, 3))
            .collect();
        let mut a = RlnMembership::new(2);
        let empty = a.root();
        assert!(a.apply(regs.clone()).unwrap());
        let mut b = RlnMembership::new(2);
        assert!(b.apply(regs.iter().rev().copied()).unwrap());
        assert_eq!(a.root(), b.root());
        assert_ne!(a.root(), empty);
        assert!(!a.apply(regs.clone()).unwrap(), "no change, no new root");
        assert_eq!(a.roots(), vec![empty, a.root()]);

        // Removal drops exactly that leaf; a late joiner with the removal reaches the same root.
        assert!(a.remove(&ids[1]));
        assert!(!a.remove(&ids[1]), "already removed");
        assert!(
            !a.apply(regs.clone()).unwrap(),
            "the removal persists across registry updates"
        );
        assert_eq!(a.leaf_of(&ids[1]), None);
        assert_eq!(a.leaf_of(&ids[2]), Some((14, 3)));
        assert_eq!(
            a.roots(),
            vec![a.root()],
            "roots holding the removed leaf are no longer accepted"
        );
        let mut late = RlnMembership::new(2);
        assert!(!late.remove(&ids[1]));
        late.apply(regs.clone()).unwrap();
        assert_eq!(late.root(), a.root());
        // An addition keeps the previous root acceptable.
        let newcomer = RlnIdentity::generate();
        let before = a.root();
        let mut more = regs.clone();
        more.push(reg(40, &newcomer, 1));
        assert!(a.apply(more).unwrap());
        assert_eq!(a.roots(), vec![before, a.root()]);
        assert!(matches!(
            a.merkle_proof(7),
            Err(MembershipError::NotAMember(7))
        ));
        assert!(a.merkle_proof(14).is_ok());
    }

    #[test]
    fn index_out_of_range_is_refused() {
        let id = RlnIdentity::generate();
        let mut m = RlnMembership::new(3);
        let e = m.apply([reg(1 << 20, &id, 1)]).unwrap_err();
        assert!(matches!(e, MembershipError::IndexOutOfRange { .. }), "{e}");
    }
}
