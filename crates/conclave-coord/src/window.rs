//! Coordination windows (RFC 12 as keep-core v2.1.0 runs it): every `frequency` blocks a window
//! opens; for `active` blocks the leader proposes and followers listen, then `passive` blocks
//! let the action run. The seed comes from a block `safe_shift` blocks before the window, deep
//! enough that every member sees the same hash.

use serde::{Deserialize, Serialize};

/// Window parameters; the defaults are keep-core v2.1.0's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowParams {
    /// A window starts at every block divisible by this.
    pub frequency: u64,
    /// Blocks during which the leader proposes and followers accept.
    pub active: u64,
    /// Blocks after the active phase before the window is over.
    pub passive: u64,
    /// The seed's block: this many blocks before the coordination block.
    pub safe_shift: u64,
}

impl Default for WindowParams {
    fn default() -> Self {
        WindowParams {
            frequency: 900,
            active: 80,
            passive: 20,
            safe_shift: 32,
        }
    }
}

/// Why window parameters cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowParamsError {
    #[error("frequency must be positive")]
    ZeroFrequency,
    #[error("active phase must be positive")]
    ZeroActive,
    #[error(
        "active ({active}) + passive ({passive}) blocks must fit in the frequency ({frequency})"
    )]
    Overlap {
        active: u64,
        passive: u64,
        frequency: u64,
    },
    #[error("safe_shift ({safe_shift}) must be below the frequency ({frequency}) so the seed block lies after the previous window")]
    ShiftTooLarge { safe_shift: u64, frequency: u64 },
}

/// Where a block stands relative to its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Proposals are sent and accepted until (excluding) `ends_at`.
    Active { ends_at: u64 },
    /// The action runs; no proposals.
    Passive { ends_at: u64 },
    /// Between windows.
    Idle,
}

/// A coordination window, identified by its coordination block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub index: u64,
    pub coordination_block: u64,
}

impl WindowParams {
    /// Refuses geometry under which windows would overlap or seed from the previous window.
    pub fn validate(&self) -> Result<(), WindowParamsError> {
        if self.frequency == 0 {
            return Err(WindowParamsError::ZeroFrequency);
        }
        if self.active == 0 {
            return Err(WindowParamsError::ZeroActive);
        }
        if self.active.saturating_add(self.passive) > self.frequency {
            return Err(WindowParamsError::Overlap {
                active: self.active,
                passive: self.passive,
                frequency: self.frequency,
            });
        }
        if self.safe_shift >= self.frequency {
            return Err(WindowParamsError::ShiftTooLarge {
                safe_shift: self.safe_shift,
                frequency: self.frequency,
            });
        }
        Ok(())
    }

    /// The window whose coordination block is `block`, if any. Block 0 (index 0) never is.
    pub fn window_at(&self, block: u64) -> Option<Window> {
        (block > 0 && block.is_multiple_of(self.frequency)).then(|| Window {
            index: block / self.frequency,
            coordination_block: block,
        })
    }

    /// Whether a member whose chain head is `head` can still take part in `w`: its active phase
    /// has not ended. A member whose head jumped past a whole active phase (it was behind, or
    /// switched to a fallback tip) saw none of the leader's messages and must not judge the
    /// leader idle for it.
    pub fn joinable(&self, w: Window, head: u64) -> bool {
        head < w.coordination_block + self.active
    }

    /// The seed block of a window.
    pub fn safe_block(&self, w: Window) -> u64 {
        w.coordination_block - self.safe_shift
    }

    /// The phase of `w` at `block`.
    pub fn phase(&self, w: Window, block: u64) -> Phase {
        let active_end = w.coordination_block + self.active;
        let passive_end = active_end + self.passive;
        if block < w.coordination_block {
            Phase::Idle
        } else if block < active_end {
            Phase::Active {
                ends_at: active_end,
            }
        } else if block < passive_end {
            Phase::Passive {
                ends_at: passive_end,
            }
        } else {
            Phase::Idle
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_start_at_multiples_of_the_frequency_except_zero() {
        let p = WindowParams::default();
        assert_eq!(p.window_at(0), None, "index 0 is invalid");
        assert_eq!(p.window_at(899), None);
        assert_eq!(
            p.window_at(900),
            Some(Window {
                index: 1,
                coordination_block: 900
            })
        );
        assert_eq!(p.window_at(1800).unwrap().index, 2);
        assert_eq!(p.safe_block(p.window_at(900).unwrap()), 868);
    }

    #[test]
    fn phases_are_half_open() {
        let p = WindowParams::default();
        let w = p.window_at(900).unwrap();
        assert_eq!(p.phase(w, 899), Phase::Idle);
        assert_eq!(p.phase(w, 900), Phase::Active { ends_at: 980 });
        assert_eq!(p.phase(w, 979), Phase::Active { ends_at: 980 });
        assert_eq!(p.phase(w, 980), Phase::Passive { ends_at: 1000 });
        assert_eq!(p.phase(w, 999), Phase::Passive { ends_at: 1000 });
        assert_eq!(p.phase(w, 1000), Phase::Idle);
    }

    #[test]
    fn a_window_is_joinable_until_its_active_phase_ends() {
        let p = WindowParams::default();
        let w = p.window_at(900).unwrap();
        assert!(p.joinable(w, 899), "opened ahead of its start");
        assert!(p.joinable(w, 979), "the last active block");
        assert!(
            !p.joinable(w, 980),
            "a head past the active phase saw none of it"
        );
    }

    #[test]
    fn unworkable_parameters_are_named() {
        let ok = WindowParams::default();
        assert_eq!(ok.validate(), Ok(()));
        let bad = |f: fn(&mut WindowParams)| {
            let mut p = ok;
            f(&mut p);
            p.validate().unwrap_err().to_string()
        };
        assert!(bad(|p| p.frequency = 0).contains("frequency"));
        assert!(bad(|p| p.active = 0).contains("active"));
        assert!(bad(|p| p.passive = 900).contains("must fit"));
        assert!(bad(|p| p.safe_shift = 900).contains("safe_shift"));
        // The tightest workable set: a window every block would have no room for phases.
        let tight = WindowParams {
            frequency: 2,
            active: 1,
            passive: 1,
            safe_shift: 1,
        };
        assert_eq!(tight.validate(), Ok(()));
    }
}
