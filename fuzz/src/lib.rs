//! Fixtures shared by the fuzz targets and the seed generator (`examples/make_seeds.rs`): a
//! small membership view with one signing member, an RLN channel with two members, a header
//! anchor, fixed clocks, and a per-process scratch folder for the decoders that read files.
//! Everything is deterministic, so the committed seeds stay valid against these fixtures.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use conclave_core::{
    MembershipView, Moment, NodeAuthorization, OperatorId, PeerId, TopicName, ViewBuilder,
    ViewSource,
};
use conclave_rln::{
    EpochRules, Fr, NullifierLog, RlnChannel, RlnIdentifier, RlnIdentity, RlnMembership,
    RlnRegistration,
};
use libp2p_identity::Keypair;

/// The receiver's clock for signed envelopes (ms since the Unix epoch).
pub const NOW_MS: u64 = 1_700_000_000_000;
/// The moment membership is judged at.
pub const AT: Moment = Moment {
    unix_secs: NOW_MS / 1000,
    block: Some(100),
};
/// The signed topic the member may publish on.
pub const SIGNED_TOPIC: &str = "signers";
/// Envelope size limit and timestamp tolerance of the validator.
pub const LIMITS: conclave_net::ValidationLimits = conclave_net::ValidationLimits {
    max_message_bytes: 4096,
    timestamp_tolerance_ms: 30_000,
};

/// The member's node key (ed25519, fixed secret).
pub fn member_key() -> Keypair {
    match Keypair::ed25519_from_bytes([7u8; 32]) {
        Ok(k) => k,
        Err(e) => panic!("fixed ed25519 secret: {e}"),
    }
}

/// The member's PeerId (computed once).
pub fn member_peer() -> PeerId {
    static PEER: OnceLock<PeerId> = OnceLock::new();
    *PEER.get_or_init(|| member_key().public().to_peer_id())
}

/// A member whose PeerId is a SHA-256 multihash (no inline key: its signatures cannot verify).
pub fn hashed_member() -> PeerId {
    let mut bytes = vec![0x12, 0x20];
    bytes.extend_from_slice(&[9u8; 32]);
    match PeerId::from_bytes(&bytes) {
        Ok(p) => p,
        Err(e) => panic!("fixed sha256 PeerId: {e}"),
    }
}

/// A node key nobody registered.
pub fn stranger() -> PeerId {
    static PEER: OnceLock<PeerId> = OnceLock::new();
    *PEER.get_or_init(|| match Keypair::ed25519_from_bytes([8u8; 32]) {
        Ok(k) => k.public().to_peer_id(),
        Err(e) => panic!("fixed ed25519 secret: {e}"),
    })
}

fn topic(name: &str) -> TopicName {
    match name.parse() {
        Ok(t) => t,
        Err(e) => panic!("fixed topic {name}: {e}"),
    }
}

/// The signed topic as a [`TopicName`].
pub fn signed_topic() -> TopicName {
    topic(SIGNED_TOPIC)
}

/// A topic no member is scoped for.
pub fn other_topic() -> TopicName {
    topic("other")
}

/// One operator with two node keys: [`member_key`] and [`hashed_member`], both scoped for
/// [`SIGNED_TOPIC`].
pub fn signed_view() -> &'static MembershipView {
    static VIEW: OnceLock<MembershipView> = OnceLock::new();
    VIEW.get_or_init(|| {
        let op = OperatorId([7; 20]);
        let mut b = ViewBuilder::new(ViewSource::Empty);
        let auth = || NodeAuthorization {
            operator: op,
            scopes: [signed_topic()].into(),
            valid_from_block: None,
            expiry: None,
            addresses: vec![],
        };
        let built = b
            .operator(op)
            .and_then(|()| b.node(member_peer(), auth()))
            .and_then(|()| b.node(hashed_member(), auth()));
        if let Err(e) = built {
            panic!("fixed view: {e}");
        }
        b.build()
    })
}

/// The receiver's clock for RLN messages.
pub const RLN_NOW_MS: u64 = 1_800_000_000_000;
/// The anonymous topic.
pub const RLN_TOPIC: &str = "anon";
/// Messages per epoch of each RLN member.
pub const RLN_LIMIT: u32 = 2;
/// The network's RLN identifier name.
pub const RLN_IDENTIFIER: &str = "conclave/fuzz";

/// The two RLN members' identities (secrets 1001 and 1002).
pub fn rln_identities() -> [RlnIdentity; 2] {
    [1001u64, 1002].map(|n| {
        let secret = conclave_rln::fr_to_bytes(&Fr::from(n));
        match RlnIdentity::from_secret_bytes(&secret) {
            Ok(id) => id,
            Err(e) => panic!("fixed RLN secret: {e}"),
        }
    })
}

/// A fresh channel with both members at leaves 1 and 4 and an empty nullifier log.
pub fn new_rln_channel() -> RlnChannel {
    let mut membership = RlnMembership::new(3);
    let regs = rln_identities()
        .iter()
        .zip([1u32, 4])
        .map(|(id, index)| RlnRegistration {
            index,
            rate_commitment: id.rate_commitment(RLN_LIMIT),
            limit: RLN_LIMIT,
        })
        .collect::<Vec<_>>();
    if let Err(e) = membership.apply(regs) {
        panic!("fixed RLN registrations: {e}");
    }
    RlnChannel::new(
        EpochRules::default(),
        RlnIdentifier::new(RLN_IDENTIFIER),
        membership,
        NullifierLog::new(1000, 1 << 20),
    )
}

/// The channel the RLN targets judge messages with (built once per process).
pub fn rln_channel() -> &'static RlnChannel {
    static CHANNEL: OnceLock<RlnChannel> = OnceLock::new();
    CHANNEL.get_or_init(new_rln_channel)
}

/// Our last good header: the header targets link answers to it.
pub const HEADER_ANCHOR_NUMBER: u64 = 1000;
/// The anchor's hash.
pub const HEADER_ANCHOR_HASH: [u8; 32] = [0xab; 32];

/// What every accepted header range must be: its headers re-hash to its hashes, and each links
/// to the one before it, the first to `anchor`.
pub fn assert_linked(anchor: (u64, conclave_altnet::B256), range: &conclave_altnet::AcceptedRange) {
    assert_eq!(range.headers.len(), range.hashes.len());
    let mut parent = anchor;
    for (header, hash) in range.headers.iter().zip(&range.hashes) {
        assert_eq!(header.hash_slow(), *hash, "accepted header re-hashes");
        assert_eq!(
            (header.number, header.parent_hash),
            (parent.0 + 1, parent.1)
        );
        parent = (header.number, *hash);
    }
}

/// `name` inside a folder of this process under the temporary directory (scripts/fuzz.sh
/// points TMPDIR at a folder it removes afterwards).
pub fn scratch_file(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("conclave-fuzz-{}", std::process::id()));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create scratch folder {}: {e}", dir.display());
        }
        dir
    });
    dir.join(name)
}

/// Writes `bytes` to `path`, created with mode 0600 (what secret files need) and truncated.
pub fn write_private(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes));
    if let Err(e) = written {
        panic!("cannot write scratch file {}: {e}", path.display());
    }
}

/// Splits input into records for the targets that take several items (logs, store rows):
/// each is a tag byte, then two byte strings each prefixed by its length (u16, big-endian).
/// A truncated last record is dropped.
pub fn records(mut data: &[u8]) -> Vec<(u8, &[u8], &[u8])> {
    fn take<'a>(data: &mut &'a [u8]) -> Option<&'a [u8]> {
        let (len, rest) = data.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        let (item, rest) = (rest.get(..len)?, &rest[len..]);
        *data = rest;
        Some(item)
    }
    let mut out = Vec::new();
    while let Some((&tag, mut rest)) = data.split_first() {
        let (Some(a), Some(b)) = (take(&mut rest), take(&mut rest)) else {
            break;
        };
        out.push((tag, a, b));
        data = rest;
    }
    out
}

/// The inverse of [`records`] (for the seed generator).
pub fn join_records<'a>(items: impl IntoIterator<Item = (u8, &'a [u8], &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (tag, a, b) in items {
        out.push(tag);
        for part in [a, b] {
            let len = u16::try_from(part.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&part[..usize::from(len)]);
        }
    }
    out
}

/// A validator's BLS key (fixed secret), `n` picking one of several.
pub fn validator_key(n: u8) -> conclave_bls::ValidatorSecret {
    match conclave_bls::ValidatorSecret::from_bytes(&[n; 32]) {
        Ok(k) => k,
        Err(e) => panic!("fixed BLS secret {n}: {e}"),
    }
}
