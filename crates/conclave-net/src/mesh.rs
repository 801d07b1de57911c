//! Gossipsub mesh degrees derived from the size of the signer set.
//!
//! Gossipsub's defaults (D=6, D_lo=5, D_hi=12, D_out=2) assume an open network of many peers.
//! A signer set is small and known, so the degrees follow the member count; and since gossipsub's
//! builder does not check the default degrees against each other, we do.

use thiserror::Error;

/// The gossipsub heartbeat: how often meshes are repaired and gossip is emitted.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_millis(700);

/// The mesh degrees handed to gossipsub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeshParams {
    /// Target mesh degree (D).
    pub d: usize,
    /// Below this the heartbeat grafts (D_lo).
    pub d_lo: usize,
    /// Above this the heartbeat prunes (D_hi).
    pub d_hi: usize,
    /// Minimum outbound peers kept in the mesh (D_out).
    pub d_out: usize,
    /// Peers gossiped to outside the mesh (D_lazy).
    pub d_lazy: usize,
}

/// A degree combination gossipsub would misbehave with.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid mesh parameters {params:?}: {rule}")]
pub struct MeshParamsError {
    pub params: MeshParams,
    pub rule: &'static str,
}

impl MeshParams {
    /// Degrees for a set of `members` node keys (this node included). Up to 7 members the mesh is
    /// complete, and kept complete (D_lo = D: the heartbeat grafts any member missing from it, so
    /// every message reaches every member in one hop); beyond that D grows slowly to 8,
    /// gossipsub's sweet spot for latency vs. load.
    pub fn for_members(members: usize) -> Self {
        let others = members.saturating_sub(1).max(1);
        let d = others.min(if others <= 6 {
            6
        } else {
            6 + (others - 6).min(2)
        });
        let d_lo = if others <= 6 {
            d
        } else {
            (d * 2).div_ceil(3).max(1)
        };
        let d_out = (d / 3).min(2);
        MeshParams {
            d,
            d_lo,
            d_hi: (d * 2).max(d + 1),
            d_out,
            d_lazy: d,
        }
    }

    /// Sets these degrees and Conclave's heartbeat on a gossipsub config. The benchmark's plain
    /// gossipsub baseline uses it too, so the two differ only in what Conclave adds.
    pub fn configure<'a>(
        &self,
        b: &'a mut libp2p::gossipsub::ConfigBuilder,
    ) -> &'a mut libp2p::gossipsub::ConfigBuilder {
        b.mesh_n(self.d)
            .mesh_n_low(self.d_lo)
            .mesh_n_high(self.d_hi)
            .mesh_outbound_min(self.d_out)
            .gossip_lazy(self.d_lazy)
            .heartbeat_interval(HEARTBEAT)
    }

    /// Checks the invariants gossipsub relies on but does not enforce for the default degrees.
    pub fn validate(&self) -> Result<(), MeshParamsError> {
        let err = |rule| {
            Err(MeshParamsError {
                params: *self,
                rule,
            })
        };
        if self.d == 0 {
            return err("D must be at least 1");
        }
        if !(self.d_lo <= self.d && self.d <= self.d_hi) {
            return err("D_lo <= D <= D_hi must hold");
        }
        if self.d_out > self.d_lo {
            return err("D_out must not exceed D_lo");
        }
        if self.d_out * 2 > self.d {
            return err("D_out must be at most D/2");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_params_are_valid_for_every_size() {
        for n in 0..=1000 {
            let p = MeshParams::for_members(n);
            p.validate().unwrap_or_else(|e| panic!("n={n}: {e}"));
            assert!(
                p.d <= n.saturating_sub(1).max(1),
                "n={n}: D larger than peers"
            );
        }
        assert_eq!(MeshParams::for_members(7).d, 6, "7 members: full mesh");
        assert_eq!(MeshParams::for_members(6).d_lo, 5, "and it is kept full");
        assert_eq!(MeshParams::for_members(100).d, 8);
    }

    #[test]
    fn broken_params_are_named() {
        let bad = MeshParams {
            d: 4,
            d_lo: 5,
            d_hi: 8,
            d_out: 1,
            d_lazy: 4,
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("D_lo <= D"));
        let bad = MeshParams {
            d: 4,
            d_lo: 3,
            d_hi: 8,
            d_out: 3,
            d_lazy: 4,
        };
        assert!(bad.validate().unwrap_err().to_string().contains("D/2"));
    }
}
