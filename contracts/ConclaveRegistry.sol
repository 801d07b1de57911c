// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Poseidon} from "./Poseidon.sol";
import {ValidatorBls} from "./ValidatorBls.sol";

/// @title ConclaveRegistry
/// @notice Who may be on a Conclave network. Governance (the owner) admits operators (cold EVM
///         addresses) and defines scopes and signing groups; each operator authorizes the hot node
///         keys that act for it, each limited to some scopes and a block window, and revokes them
///         with one transaction. Also holds node address hints and RLN memberships.
///         Every operator action also exists signed (`…BySig`): the operator signs EIP-712 typed
///         data offline and anyone submits it, so a cold key never sends a transaction; an
///         operator that is a contract (a multisig, a smart account) signs through ERC-1271.
/// @dev    Every state change emits an event carrying everything needed to rebuild the state, so
///         nodes sync from logs alone (`eth_getLogs` from `deployBlock`). Getters exist for all of it.
contract ConclaveRegistry {
    /// @notice `validUntil` of a delegation with no end.
    uint64 public constant OPEN_ENDED = type(uint64).max;
    /// @notice At most this many address hints per node.
    uint256 public constant MAX_ADDRESSES = 8;
    /// @notice At most this many seats per group.
    uint256 public constant MAX_SEATS = 1024;
    /// @notice The largest RLN leaf index: the anonymous channel's tree has depth 20.
    uint256 public constant MAX_RLN_INDEX = 2 ** 20 - 1;
    /// @notice The largest RLN membership cap governance may give an operator: each membership
    ///         adds its limit to the operator's quota, so the cap is bounded (nodes hold the same).
    uint32 public constant MAX_RLN_CAP = 16;

    /// @notice A node key's authorization. Valid at block h iff its operator is registered in the
    ///         same generation (removing an operator voids its keys for good, even if it is added
    ///         again), validFrom <= h < validUntil, and (revokedAt == 0 or h < revokedAt).
    struct Delegation {
        address operator;
        uint32 generation;
        uint64 scopes;
        uint64 validFrom;
        uint64 validUntil;
        uint64 revokedAt;
    }

    /// @notice How many live RLN memberships an operator may hold (`cap`) and holds (`live`).
    struct RlnQuota {
        uint32 cap;
        uint32 live;
    }

    /// @notice An RLN membership: the rate commitment Poseidon(idCommitment, limit) and the limit.
    struct RlnMembership {
        address operator;
        uint256 rateCommitment;
        uint32 limit;
        bool removed;
    }

    /// @notice The signature on an operator action, and what it is bound to. `chainId` and
    ///         `registry` repeat the EIP-712 domain, so a signature meant for another chain or
    ///         registry is refused as such rather than as a wrong signer.
    struct OperatorSignature {
        address operator;
        uint256 nonce;
        uint256 deadline;
        uint256 chainId;
        address registry;
        bytes signature;
    }

    /// @notice An Ethereum validator's RLN registration: its key (compressed, and the same point
    ///         uncompressed, which the contract cannot derive cheaply), its BLS signature over the
    ///         registration's signing root, and what it signed. `chainId` and `registry` are part of
    ///         the signed message; they are repeated here so that a registration meant for another
    ///         chain or registry is refused as such.
    struct ValidatorRegistration {
        bytes pubkey;
        bytes pubkeyPoint;
        bytes signature;
        uint256 rateCommitment;
        uint32 limit;
        uint256 chainId;
        address registry;
    }

    /// @notice A validator key governance admitted, the operator it counts under, and whether it
    ///         has registered (once per key, ever: a slashed validator cannot come back).
    struct ValidatorSlot {
        address operator;
        bool registered;
    }

    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 public constant AUTHORIZE_TYPEHASH = keccak256(
        "Authorize(address operator,bytes peerId,uint64 scopes,uint64 validFrom,uint64 validUntil,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant REVOKE_TYPEHASH =
        keccak256("Revoke(address operator,bytes peerId,uint64 effectiveBlock,uint256 nonce,uint256 deadline)");
    bytes32 public constant ROTATE_TYPEHASH = keccak256(
        "Rotate(address operator,bytes oldPeerId,bytes newPeerId,uint64 scopes,uint64 validUntil,uint64 revokeOldAt,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant SET_NODE_ADDRESSES_TYPEHASH = keccak256(
        "SetNodeAddresses(address operator,bytes peerId,string[] addresses,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant REGISTER_RLN_TYPEHASH = keccak256(
        "RegisterRln(address operator,uint256 rateCommitment,uint32 limit,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant REMOVE_RLN_TYPEHASH =
        keccak256("RemoveRln(address operator,uint256 index,uint256 nonce,uint256 deadline)");
    /// @dev ERC-1271's magic value: `isValidSignature(bytes32,bytes)`'s selector.
    bytes4 private constant ERC1271_MAGIC = 0x1626ba7e;
    /// @dev Half the secp256k1 order: a signature with a larger s has a twin and is refused.
    uint256 private constant HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    address public owner;
    /// @notice The block this registry was deployed in: where log sync starts.
    uint64 public immutable deployBlock;
    /// @notice zerokit's Poseidon, deployed with the registry: checks revealed RLN secrets.
    Poseidon public immutable poseidon;

    mapping(address => bool) public isOperator;
    /// @notice Incremented each time an operator is added; delegations carry the value.
    mapping(address => uint32) public operatorGeneration;
    address[] private operatorList;
    mapping(uint8 => string) private scopeNames;
    mapping(bytes32 => Delegation) private delegations;
    mapping(bytes32 => bytes) private peerIds;
    bytes32[] private nodeList;
    mapping(bytes32 => string[]) private nodeAddresses;
    mapping(bytes20 => address[]) private groupSeats;
    bytes20[] private groupList;
    RlnMembership[] private rlnMemberships;
    /// @dev One slot per operator, read once by `registerRln`. cap 0 = never set = 1.
    mapping(address => RlnQuota) private rlnQuotas;
    /// @notice The nonce the operator's next signed action must carry (each is usable once).
    mapping(address => uint256) public nonces;
    /// @dev Validator keys by keccak256 of their 48 bytes.
    mapping(bytes32 => ValidatorSlot) private validators;
    /// @dev Every rate commitment ever registered: one identity, one leaf.
    mapping(uint256 => bool) private usedRateCommitments;

    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event OperatorAdded(address indexed operator);
    event OperatorRemoved(address indexed operator);
    event ScopeDefined(uint8 indexed bit, string name);
    event NodeAuthorized(
        address indexed operator, bytes peerId, uint64 scopes, uint64 validFrom, uint64 validUntil
    );
    event NodeRevoked(address indexed operator, bytes peerId, uint64 effectiveBlock);
    event NodeAddressesSet(address indexed operator, bytes peerId, string[] addresses);
    event GroupSet(bytes20 indexed groupId, address[] seats);
    event GroupRemoved(bytes20 indexed groupId);
    event RlnRegistered(uint256 indexed index, address indexed operator, uint256 rateCommitment, uint32 limit);
    event RlnRemoved(uint256 indexed index, address indexed by);
    /// @notice A membership removed because its secret was revealed (by a double signal): the
    ///         secret is public from here on, so late joiners learn it from the chain too.
    event RlnSlashed(uint256 indexed index, address indexed by, uint256 idSecret);
    /// @notice Governance let `operator` hold up to `cap` live RLN memberships.
    event RlnCapSet(address indexed operator, uint32 cap);
    /// @notice A signed action of `operator` was carried out, submitted by `submitter`.
    event ValidatorAssigned(bytes pubkey, address indexed operator);
    /// @notice Follows the `RlnRegistered` of the same leaf: the validator that signed it.
    event RlnValidatorRegistered(uint256 indexed index, bytes pubkey, bytes signature);
    event SignedActionUsed(address indexed operator, uint256 nonce, address indexed submitter);

    error NotOwner(address caller);
    error NotOperator(address caller);
    error ZeroAddress();
    error AlreadyOperator(address operator);
    error UnknownOperator(address operator);
    error EmptyName();
    error UndefinedScope(uint64 scopes);
    error NoScopes();
    error EmptyPeerId();
    error AlreadyAuthorized(bytes peerId, address operator);
    error UnknownNode(bytes peerId);
    error NotYourNode(bytes peerId, address operator);
    error AlreadyRevoked(bytes peerId, uint64 effectiveBlock);
    error InvalidWindow(uint64 validFrom, uint64 validUntil, uint64 currentBlock);
    error InvalidRevocationBlock(uint64 effectiveBlock, uint64 currentBlock);
    error TooManyAddresses(uint256 count, uint256 max);
    error EmptyGroup(bytes20 groupId);
    error TooManySeats(uint256 count, uint256 max);
    error SeatNotOperator(bytes20 groupId, address seat);
    error UnknownGroup(bytes20 groupId);
    error InvalidRlnMembership(uint256 rateCommitment, uint32 limit);
    error UnknownRlnIndex(uint256 index);
    error RlnAlreadyRemoved(uint256 index);
    error NotRlnOwner(uint256 index, address caller);
    error RlnTreeFull(uint256 maxIndex);
    error WrongRlnSecret(uint256 index);
    error RlnCapReached(address operator, uint32 cap);
    error InvalidRlnCap(address operator, uint32 cap);
    error WrongChain(uint256 signedFor, uint256 chainId);
    error WrongRegistry(address signedFor, address registry);
    error SignatureExpired(uint256 deadline, uint256 timestamp);
    error NonceUsed(address operator, uint256 nonce);
    error NonceTooHigh(address operator, uint256 nonce, uint256 expected);
    error MalformedSignature(uint256 length);
    error MalleableSignature();
    error WrongSigner(address operator, address recovered);
    error ContractSignatureRefused(address operator);
    error MalformedValidatorKey(bytes pubkey);
    error ValidatorNotAssigned(bytes pubkey);
    error ValidatorAlreadyRegistered(bytes pubkey);
    error RlnCommitmentUsed(uint256 rateCommitment);
    error MalformedValidatorSignature();
    error WrongValidatorSignature(bytes pubkey);

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    modifier onlyOperator() {
        if (!isOperator[msg.sender]) revert NotOperator(msg.sender);
        _;
    }

    constructor() {
        owner = msg.sender;
        deployBlock = uint64(block.number);
        poseidon = new Poseidon();
        emit OwnershipTransferred(address(0), msg.sender);
    }

    // ---------------------------------------------------------------- governance

    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    function addOperator(address operator) external onlyOwner {
        if (operator == address(0)) revert ZeroAddress();
        if (isOperator[operator]) revert AlreadyOperator(operator);
        isOperator[operator] = true;
        operatorGeneration[operator] += 1;
        operatorList.push(operator);
        emit OperatorAdded(operator);
    }

    /// @notice Removes an operator; all its node keys stop being valid in the same block.
    function removeOperator(address operator) external onlyOwner {
        if (!isOperator[operator]) revert UnknownOperator(operator);
        isOperator[operator] = false;
        uint256 n = operatorList.length;
        for (uint256 i = 0; i < n; i++) {
            if (operatorList[i] == operator) {
                operatorList[i] = operatorList[n - 1];
                operatorList.pop();
                break;
            }
        }
        emit OperatorRemoved(operator);
    }

    /// @notice Names scope bit `bit` (a topic name such as "signers"); renaming is allowed.
    function defineScope(uint8 bit, string calldata name) external onlyOwner {
        if (bit >= 64) revert UndefinedScope(0);
        if (bytes(name).length == 0) revert EmptyName();
        scopeNames[bit] = name;
        emit ScopeDefined(bit, name);
    }

    /// @notice Sets (or replaces) a group's ordered seats; an operator may hold several seats.
    function setGroup(bytes20 groupId, address[] calldata seatList) external onlyOwner {
        if (seatList.length == 0) revert EmptyGroup(groupId);
        if (seatList.length > MAX_SEATS) revert TooManySeats(seatList.length, MAX_SEATS);
        for (uint256 i = 0; i < seatList.length; i++) {
            if (!isOperator[seatList[i]]) revert SeatNotOperator(groupId, seatList[i]);
        }
        if (groupSeats[groupId].length == 0) groupList.push(groupId);
        groupSeats[groupId] = seatList;
        emit GroupSet(groupId, seatList);
    }

    function removeGroup(bytes20 groupId) external onlyOwner {
        if (groupSeats[groupId].length == 0) revert UnknownGroup(groupId);
        delete groupSeats[groupId];
        uint256 n = groupList.length;
        for (uint256 i = 0; i < n; i++) {
            if (groupList[i] == groupId) {
                groupList[i] = groupList[n - 1];
                groupList.pop();
                break;
            }
        }
        emit GroupRemoved(groupId);
    }

    /// @notice Lets `operator` hold up to `cap` live RLN memberships (1..MAX_RLN_CAP; default 1).
    ///         Lowering a cap removes nothing: nodes use the operator's first `cap` live leaves.
    function setRlnCap(address operator, uint32 cap) external onlyOwner {
        if (operator == address(0)) revert ZeroAddress();
        if (cap == 0 || cap > MAX_RLN_CAP) revert InvalidRlnCap(operator, cap);
        rlnQuotas[operator].cap = cap;
        emit RlnCapSet(operator, cap);
    }

    // ---------------------------------------------------------------- operators' node keys

    /// @notice Authorizes a node key (libp2p PeerId bytes) to act for the caller with `scopes`
    ///         in blocks [validFrom, validUntil). validFrom 0 means the current block.
    function authorize(bytes calldata peerId, uint64 scopes, uint64 validFrom, uint64 validUntil)
        external
        onlyOperator
    {
        _authorize(msg.sender, peerId, scopes, validFrom, validUntil);
    }

    /// @notice Revokes a node key of the caller from block `effectiveBlock` on (0 = this block).
    function revoke(bytes calldata peerId, uint64 effectiveBlock) external onlyOperator {
        _revoke(msg.sender, peerId, effectiveBlock);
    }

    /// @notice Rotation in one transaction: authorizes `newPeerId` now and revokes `oldPeerId`
    ///         from `revokeOldAt` (0 = this block), so the operator's node keeps a valid key
    ///         throughout the swap.
    function rotate(
        bytes calldata oldPeerId,
        bytes calldata newPeerId,
        uint64 scopes,
        uint64 validUntil,
        uint64 revokeOldAt
    ) external onlyOperator {
        _authorize(msg.sender, newPeerId, scopes, 0, validUntil);
        _revoke(msg.sender, oldPeerId, revokeOldAt);
    }

    /// @notice Where the caller's node can be reached (multiaddrs); replaces earlier hints.
    function setNodeAddresses(bytes calldata peerId, string[] calldata addresses) external onlyOperator {
        _setNodeAddresses(msg.sender, peerId, addresses);
    }

    // ---------------------------------------------------------------- signed operator actions

    /// @notice The EIP-712 domain separator: name "ConclaveRegistry", version "1", this chain
    ///         and this contract.
    function domainSeparator() public view returns (bytes32) {
        return keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256("ConclaveRegistry"), keccak256("1"), block.chainid, address(this))
        );
    }

    /// @notice `authorize`, signed by the operator and submitted by anyone.
    function authorizeBySig(
        bytes calldata peerId,
        uint64 scopes,
        uint64 validFrom,
        uint64 validUntil,
        OperatorSignature calldata sig
    ) external {
        _useSignature(
            sig,
            keccak256(
                abi.encode(
                    AUTHORIZE_TYPEHASH, sig.operator, keccak256(peerId), scopes, validFrom, validUntil, sig.nonce,
                    sig.deadline
                )
            )
        );
        _authorize(sig.operator, peerId, scopes, validFrom, validUntil);
    }

    /// @notice `revoke`, signed by the operator and submitted by anyone.
    function revokeBySig(bytes calldata peerId, uint64 effectiveBlock, OperatorSignature calldata sig) external {
        _useSignature(
            sig,
            keccak256(
                abi.encode(REVOKE_TYPEHASH, sig.operator, keccak256(peerId), effectiveBlock, sig.nonce, sig.deadline)
            )
        );
        _revoke(sig.operator, peerId, effectiveBlock);
    }

    /// @notice `rotate`, signed by the operator and submitted by anyone.
    function rotateBySig(
        bytes calldata oldPeerId,
        bytes calldata newPeerId,
        uint64 scopes,
        uint64 validUntil,
        uint64 revokeOldAt,
        OperatorSignature calldata sig
    ) external {
        _useSignature(
            sig,
            keccak256(
                abi.encode(
                    ROTATE_TYPEHASH,
                    sig.operator,
                    keccak256(oldPeerId),
                    keccak256(newPeerId),
                    scopes,
                    validUntil,
                    revokeOldAt,
                    sig.nonce,
                    sig.deadline
                )
            )
        );
        _authorize(sig.operator, newPeerId, scopes, 0, validUntil);
        _revoke(sig.operator, oldPeerId, revokeOldAt);
    }

    /// @notice `setNodeAddresses`, signed by the operator and submitted by anyone.
    function setNodeAddressesBySig(
        bytes calldata peerId,
        string[] calldata addresses,
        OperatorSignature calldata sig
    ) external {
        bytes32[] memory hashes = new bytes32[](addresses.length);
        for (uint256 i = 0; i < addresses.length; i++) {
            hashes[i] = keccak256(bytes(addresses[i]));
        }
        _useSignature(
            sig,
            keccak256(
                abi.encode(
                    SET_NODE_ADDRESSES_TYPEHASH,
                    sig.operator,
                    keccak256(peerId),
                    keccak256(abi.encodePacked(hashes)),
                    sig.nonce,
                    sig.deadline
                )
            )
        );
        _setNodeAddresses(sig.operator, peerId, addresses);
    }

    /// @notice `registerRln`, signed by the operator and submitted by anyone.
    function registerRlnBySig(uint256 rateCommitment, uint32 limit, OperatorSignature calldata sig)
        external
        returns (uint256)
    {
        _useSignature(
            sig, keccak256(abi.encode(REGISTER_RLN_TYPEHASH, sig.operator, rateCommitment, limit, sig.nonce, sig.deadline))
        );
        return _registerRln(sig.operator, rateCommitment, limit);
    }

    /// @notice `removeRln` by the operator that registered the membership, signed by it.
    function removeRlnBySig(uint256 index, OperatorSignature calldata sig) external {
        _useSignature(sig, keccak256(abi.encode(REMOVE_RLN_TYPEHASH, sig.operator, index, sig.nonce, sig.deadline)));
        RlnMembership storage m = _liveRln(index);
        if (sig.operator != m.operator) revert NotRlnOwner(index, sig.operator);
        _markRemoved(m);
        emit RlnRemoved(index, sig.operator);
    }

    /// @dev Checks what the signature is bound to, then the signature over `structHash` in this
    ///      domain (ERC-1271 for a contract operator, else ecrecover with low s and the exact
    ///      signer), and spends the nonce.
    function _useSignature(OperatorSignature calldata sig, bytes32 structHash) private {
        if (sig.chainId != block.chainid) revert WrongChain(sig.chainId, block.chainid);
        if (sig.registry != address(this)) revert WrongRegistry(sig.registry, address(this));
        if (block.timestamp > sig.deadline) revert SignatureExpired(sig.deadline, block.timestamp);
        if (!isOperator[sig.operator]) revert NotOperator(sig.operator);
        uint256 expected = nonces[sig.operator];
        if (sig.nonce < expected) revert NonceUsed(sig.operator, sig.nonce);
        if (sig.nonce > expected) revert NonceTooHigh(sig.operator, sig.nonce, expected);
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
        _checkSigner(sig.operator, digest, sig.signature);
        nonces[sig.operator] = expected + 1;
        emit SignedActionUsed(sig.operator, expected, msg.sender);
    }

    function _checkSigner(address operator, bytes32 digest, bytes calldata signature) private view {
        if (operator.code.length > 0) {
            (bool ok, bytes memory answer) =
                operator.staticcall(abi.encodeWithSelector(ERC1271_MAGIC, digest, signature));
            if (!ok || answer.length != 32 || bytes32(answer) != bytes32(ERC1271_MAGIC)) {
                revert ContractSignatureRefused(operator);
            }
            return;
        }
        if (signature.length != 65) revert MalformedSignature(signature.length);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) > HALF_ORDER) revert MalleableSignature();
        if (v != 27 && v != 28) revert MalformedSignature(signature.length);
        address recovered = ecrecover(digest, v, r, s);
        if (recovered != operator) revert WrongSigner(operator, recovered);
    }

    function _setNodeAddresses(address operator, bytes calldata peerId, string[] calldata addresses) private {
        if (addresses.length > MAX_ADDRESSES) revert TooManyAddresses(addresses.length, MAX_ADDRESSES);
        bytes32 key = keccak256(peerId);
        if (delegations[key].operator != operator) {
            if (delegations[key].operator == address(0)) revert UnknownNode(peerId);
            revert NotYourNode(peerId, operator);
        }
        nodeAddresses[key] = addresses;
        emit NodeAddressesSet(operator, peerId, addresses);
    }

    function _authorize(address operator, bytes calldata peerId, uint64 scopes, uint64 validFrom, uint64 validUntil)
        private
    {
        if (peerId.length == 0) revert EmptyPeerId();
        if (scopes == 0) revert NoScopes();
        for (uint8 bit = 0; bit < 64; bit++) {
            if ((scopes >> bit) & 1 == 1 && bytes(scopeNames[bit]).length == 0) revert UndefinedScope(scopes);
        }
        uint64 current = uint64(block.number);
        if (validFrom == 0) validFrom = current;
        if (validUntil <= validFrom || validUntil <= current) revert InvalidWindow(validFrom, validUntil, current);
        bytes32 key = keccak256(peerId);
        Delegation storage d = delegations[key];
        // A key may be authorized again only once its previous delegation can no longer become valid.
        if (_operatorCurrent(d) && _mayBecomeValid(d, current)) {
            revert AlreadyAuthorized(peerId, d.operator);
        }
        if (d.operator == address(0)) {
            nodeList.push(key);
            peerIds[key] = peerId;
        }
        delegations[key] = Delegation(operator, operatorGeneration[operator], scopes, validFrom, validUntil, 0);
        delete nodeAddresses[key];
        emit NodeAuthorized(operator, peerId, scopes, validFrom, validUntil);
    }

    function _revoke(address operator, bytes calldata peerId, uint64 effectiveBlock) private {
        bytes32 key = keccak256(peerId);
        Delegation storage d = delegations[key];
        if (d.operator == address(0)) revert UnknownNode(peerId);
        if (d.operator != operator || !_operatorCurrent(d)) revert NotYourNode(peerId, operator);
        uint64 current = uint64(block.number);
        if (d.revokedAt != 0 && d.revokedAt <= current) revert AlreadyRevoked(peerId, d.revokedAt);
        if (effectiveBlock == 0) effectiveBlock = current;
        if (effectiveBlock < current) revert InvalidRevocationBlock(effectiveBlock, current);
        // A pending revocation may only be brought forward, never pushed back.
        if (d.revokedAt != 0 && effectiveBlock > d.revokedAt) revert AlreadyRevoked(peerId, d.revokedAt);
        d.revokedAt = effectiveBlock;
        emit NodeRevoked(operator, peerId, effectiveBlock);
    }

    function _operatorCurrent(Delegation storage d) private view returns (bool) {
        return d.operator != address(0) && isOperator[d.operator] && operatorGeneration[d.operator] == d.generation;
    }

    function _mayBecomeValid(Delegation storage d, uint64 h) private view returns (bool) {
        bool notExpired = h < d.validUntil;
        bool notRevoked = d.revokedAt == 0 || h < d.revokedAt;
        return notExpired && notRevoked;
    }

    // ---------------------------------------------------------------- RLN memberships

    /// @notice Registers an RLN membership for the caller; its leaf index is the returned index.
    ///         The rate commitment must be a BN254 field element (nodes could not use it otherwise),
    ///         and the caller may hold at most `rlnCap` live memberships (each adds to its quota).
    function registerRln(uint256 rateCommitment, uint32 limit) external onlyOperator returns (uint256) {
        return _registerRln(msg.sender, rateCommitment, limit);
    }

    function _registerRln(address operator, uint256 rateCommitment, uint32 limit) private returns (uint256 index) {
        if (rateCommitment == 0 || rateCommitment >= poseidon.Q() || limit == 0) {
            revert InvalidRlnMembership(rateCommitment, limit);
        }
        if (usedRateCommitments[rateCommitment]) revert RlnCommitmentUsed(rateCommitment);
        usedRateCommitments[rateCommitment] = true;
        RlnQuota storage q = rlnQuotas[operator];
        uint32 cap = q.cap == 0 ? 1 : q.cap;
        if (q.live >= cap) revert RlnCapReached(operator, cap);
        index = rlnMemberships.length;
        if (index > MAX_RLN_INDEX) revert RlnTreeFull(MAX_RLN_INDEX);
        q.live += 1;
        rlnMemberships.push(RlnMembership(operator, rateCommitment, limit, false));
        emit RlnRegistered(index, operator, rateCommitment, limit);
    }

    // ---------------------------------------------------------------- validators

    /// @notice Admits Ethereum validator keys (48 bytes, compressed) to register RLN memberships,
    ///         each counted under `operator` (its cap applies). Governance stands in for the
    ///         beacon state here: which validators are eligible is its decision.
    function assignValidators(address operator, bytes[] calldata pubkeys) external onlyOwner {
        if (!isOperator[operator]) revert UnknownOperator(operator);
        for (uint256 i = 0; i < pubkeys.length; i++) {
            if (pubkeys[i].length != 48) revert MalformedValidatorKey(pubkeys[i]);
            ValidatorSlot storage v = validators[keccak256(pubkeys[i])];
            if (v.registered) revert ValidatorAlreadyRegistered(pubkeys[i]);
            v.operator = operator;
            emit ValidatorAssigned(pubkeys[i], operator);
        }
    }

    /// @notice Registers the RLN membership a validator signed with its BLS key; anyone may
    ///         submit it. Refused: another chain or registry, a malformed key, a key governance did
    ///         not admit, a second registration of a key, a reused rate commitment, a signature
    ///         that is not a valid point or not the validator's.
    function registerRlnValidator(ValidatorRegistration calldata r) external returns (uint256 index) {
        if (r.chainId != block.chainid) revert WrongChain(r.chainId, block.chainid);
        if (r.registry != address(this)) revert WrongRegistry(r.registry, address(this));
        if (!ValidatorBls.keyMatches(r.pubkey, r.pubkeyPoint)) revert MalformedValidatorKey(r.pubkey);
        ValidatorSlot storage v = validators[keccak256(r.pubkey)];
        if (v.operator == address(0)) revert ValidatorNotAssigned(r.pubkey);
        if (v.registered) revert ValidatorAlreadyRegistered(r.pubkey);
        if (!isOperator[v.operator]) revert UnknownOperator(v.operator);
        if (usedRateCommitments[r.rateCommitment]) revert RlnCommitmentUsed(r.rateCommitment);
        bytes32 root = validatorSigningRoot(r.pubkey, r.rateCommitment, r.limit);
        (bool wellFormed, bool valid) = ValidatorBls.verify(r.pubkeyPoint, r.signature, root);
        if (!wellFormed) revert MalformedValidatorSignature();
        if (!valid) revert WrongValidatorSignature(r.pubkey);
        v.registered = true;
        index = _registerRln(v.operator, r.rateCommitment, r.limit);
        emit RlnValidatorRegistered(index, r.pubkey, r.signature);
    }

    /// @notice What a validator signs to register here (`ValidatorBls.signingRoot` on this chain
    ///         and registry), for tools to check against their own computation.
    function validatorSigningRoot(bytes calldata pubkey, uint256 rateCommitment, uint32 limit)
        public
        view
        returns (bytes32)
    {
        return ValidatorBls.signingRoot(pubkey, rateCommitment, limit, uint64(block.chainid), address(this));
    }

    /// @notice The domain registrations are signed in.
    function validatorDomain() external pure returns (bytes32) {
        return ValidatorBls.DOMAIN;
    }

    /// @notice RFC 9380 hash-to-G2 as the contract computes it (EIP-2537 encoding), for checking
    ///         against other implementations.
    function hashToG2(bytes calldata message, bytes calldata dst) external view returns (bytes memory point) {
        bool ok;
        (ok, point) = ValidatorBls.hashToG2(message, dst);
        if (!ok) revert MalformedValidatorSignature();
    }

    /// @notice The operator a validator key counts under (zero if not admitted) and whether it
    ///         has registered.
    function validator(bytes calldata pubkey) external view returns (ValidatorSlot memory) {
        return validators[keccak256(pubkey)];
    }

    /// @notice Removes an RLN membership (governance, or the operator that registered it).
    function removeRln(uint256 index) external {
        RlnMembership storage m = _liveRln(index);
        if (msg.sender != owner && msg.sender != m.operator) revert NotRlnOwner(index, msg.sender);
        _markRemoved(m);
        emit RlnRemoved(index, msg.sender);
    }

    /// @notice Removes the membership whose secret is `idSecret`. Anyone may call: knowing the
    ///         secret is the proof (a member that signals twice in an epoch reveals it), checked
    ///         here as Poseidon(Poseidon(idSecret), limit) == the registered rate commitment.
    function slashRln(uint256 index, uint256 idSecret) external {
        RlnMembership storage m = _liveRln(index);
        if (idSecret >= poseidon.Q() || rlnRateCommitment(idSecret, m.limit) != m.rateCommitment) {
            revert WrongRlnSecret(index);
        }
        _markRemoved(m);
        emit RlnSlashed(index, msg.sender, idSecret);
    }

    /// @notice The rate commitment of secret `idSecret` with `limit`, as zerokit computes it.
    function rlnRateCommitment(uint256 idSecret, uint32 limit) public view returns (uint256) {
        return poseidon.hash2(poseidon.hash1(idSecret), limit);
    }

    function _markRemoved(RlnMembership storage m) private {
        m.removed = true;
        rlnQuotas[m.operator].live -= 1;
    }

    function _liveRln(uint256 index) private view returns (RlnMembership storage m) {
        if (index >= rlnMemberships.length) revert UnknownRlnIndex(index);
        m = rlnMemberships[index];
        if (m.removed) revert RlnAlreadyRemoved(index);
    }

    // ---------------------------------------------------------------- views

    function operators() external view returns (address[] memory) {
        return operatorList;
    }

    function scopeName(uint8 bit) external view returns (string memory) {
        return scopeNames[bit];
    }

    function delegation(bytes calldata peerId) external view returns (Delegation memory) {
        return delegations[keccak256(peerId)];
    }

    /// @notice Every node key ever authorized (check `delegation` for its current state).
    function nodes() external view returns (bytes[] memory out) {
        out = new bytes[](nodeList.length);
        for (uint256 i = 0; i < nodeList.length; i++) {
            out[i] = peerIds[nodeList[i]];
        }
    }

    function addressesOf(bytes calldata peerId) external view returns (string[] memory) {
        return nodeAddresses[keccak256(peerId)];
    }

    /// @notice Whether `peerId` may sign every scope in `scopes` at block `h`.
    function isAuthorized(bytes calldata peerId, uint64 scopes, uint64 h) external view returns (bool) {
        Delegation storage d = delegations[keccak256(peerId)];
        return _operatorCurrent(d) && d.validFrom <= h && _mayBecomeValid(d, h) && (d.scopes & scopes) == scopes;
    }

    function groups() external view returns (bytes20[] memory) {
        return groupList;
    }

    function seats(bytes20 groupId) external view returns (address[] memory) {
        return groupSeats[groupId];
    }

    /// @notice How many live RLN memberships `operator` may hold: 1 unless governance set a cap.
    function rlnCap(address operator) external view returns (uint32) {
        uint32 cap = rlnQuotas[operator].cap;
        return cap == 0 ? 1 : cap;
    }

    /// @notice How many live (not removed) RLN memberships `operator` holds.
    function rlnLive(address operator) external view returns (uint32) {
        return rlnQuotas[operator].live;
    }

    function rlnCount() external view returns (uint256) {
        return rlnMemberships.length;
    }

    function rlnMembership(uint256 index) external view returns (RlnMembership memory) {
        if (index >= rlnMemberships.length) revert UnknownRlnIndex(index);
        return rlnMemberships[index];
    }
}
