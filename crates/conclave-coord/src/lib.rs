//! Coordination windows — the sans-IO core.
//!
//! Place in the data flow: the chain source gives block heights and hashes; this crate turns them
//! into **windows → seed → leader → checklist → proposal**, and defines the message a leader sends
//! on the group's signed topic (byte-compatible with keep-core). The executor that runs windows
//! over the network builds on these functions; nothing here does I/O.
//!
//! `data/go-rng-cooked.txt` is Go's `rngCooked` table (BSD-3-Clause, The Go Authors).

pub mod gorand;
pub mod leader;
pub mod proposal;
pub mod round;
pub mod window;
pub mod wire;

pub use leader::{checklist, leader, leader_order, seed, ChecklistPolicy};
pub use proposal::{
    default_proposal, AcceptAll, DefaultGenerator, ProposalGenerator, ProposalValidator,
};
pub use round::{
    DropReason, Fault, FaultKind, Round, SignedCopy, Verdict, WindowOutcome, WindowSetup,
};
pub use window::{Phase, Window, WindowParams, WindowParamsError};
pub use wire::{ActionType, CoordinationMessage, Proposal, WireError};
