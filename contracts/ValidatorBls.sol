// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title ValidatorBls
/// @notice Checks an Ethereum validator's BLS12-381 signature on its Conclave RLN registration
///         with the EIP-2537 precompiles: the SSZ signing root under Conclave's application domain,
///         RFC 9380 hash-to-G2 (expand_message_xmd with SHA-256, then the precompile's SSWU map,
///         which clears the cofactor), and one pairing check e(pk, H(m)) = e(g1, sig).
/// @dev    Points are in EIP-2537 encoding: each base-field element 64 bytes (16 zero bytes, then
///         48 big-endian), G1 = x ‖ y, G2 = x.c0 ‖ x.c1 ‖ y.c0 ‖ y.c1. The pairing precompile checks
///         that its inputs are on the curve and in the subgroup.
library ValidatorBls {
    /// @notice compute_domain("CNV" | DOMAIN_APPLICATION_MASK, genesis fork 0x00000000, zero root).
    bytes32 internal constant DOMAIN = 0x434e5601f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a9;
    /// @notice Ethereum's BLS ciphersuite (proof of possession).
    bytes internal constant DST = "BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

    /// @dev The base field modulus p: its high 16 bytes and its low 32.
    uint256 private constant P_HI = 0x1a0111ea397fe69a4b1ba7b6434bacd7;
    uint256 private constant P_LO = 0x64774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab;
    /// @dev The negated G1 generator, EIP-2537 encoded.
    bytes private constant NEG_G1 =
        hex"0000000000000000000000000000000017f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb00000000000000000000000000000000114d1d6855d545a8aa7d76c8cf2e21f267816aef1db507c96655b9d5caac42364e6f38ba0ecb751bad54dcd6b939c2ca";

    address private constant MODEXP = address(0x05);
    address private constant G2ADD = address(0x0d);
    address private constant PAIRING = address(0x0f);
    address private constant MAP_FP2_TO_G2 = address(0x11);

    /// @notice Whether `point` (EIP-2537 G1) is the key `pubkey` (48 bytes, compressed) encodes:
    ///         same x, y on the side the sign flag says, not the identity.
    function keyMatches(bytes calldata pubkey, bytes calldata point) internal pure returns (bool) {
        if (pubkey.length != 48 || point.length != 128) return false;
        uint8 flags = uint8(pubkey[0]);
        if (flags & 0x80 == 0 || flags & 0x40 != 0) return false; // compressed, not infinity
        uint256 xHi = uint256(uint128(bytes16(pubkey[0:16]))) & ~(uint256(0xe0) << 120);
        uint256 xLo = uint256(bytes32(pubkey[16:48]));
        if (uint256(bytes32(point[0:32])) != xHi || uint256(bytes32(point[32:64])) != xLo) return false;
        uint256 yHi = uint256(bytes32(point[64:96]));
        uint256 yLo = uint256(bytes32(point[96:128]));
        if (yHi == 0 && yLo == 0) return false;
        if (yHi > P_HI || (yHi == P_HI && yLo >= P_LO)) return false;
        // p - y, in two words.
        uint256 nLo;
        uint256 nHi;
        unchecked {
            nLo = P_LO - yLo;
            nHi = P_HI - yHi - (yLo > P_LO ? 1 : 0);
        }
        bool larger = yHi > nHi || (yHi == nHi && yLo > nLo);
        return larger == (flags & 0x20 != 0);
    }

    /// @notice The signing root of a registration (see the README for the byte layout).
    function signingRoot(bytes calldata pubkey, uint256 rateCommitment, uint64 limit, uint64 chainId, address registry)
        internal
        pure
        returns (bytes32)
    {
        bytes32 pk = sha256(abi.encodePacked(pubkey, bytes16(0)));
        bytes32 left = sha256(
            abi.encodePacked(
                sha256(abi.encodePacked(pk, rateCommitment)),
                sha256(abi.encodePacked(bytes32(_le64(limit)), bytes32(_le64(chainId))))
            )
        );
        bytes32 right = sha256(
            abi.encodePacked(
                sha256(abi.encodePacked(bytes32(bytes20(registry)), bytes32(0))),
                sha256(abi.encodePacked(bytes32(0), bytes32(0)))
            )
        );
        return sha256(abi.encodePacked(sha256(abi.encodePacked(left, right)), DOMAIN));
    }

    /// @notice Checks `signature` (EIP-2537 G2) on `root` by the key at `point` (EIP-2537 G1).
    ///         `wellFormed` is false when a precompile refused its input (a point off the curve or
    ///         outside the subgroup); `valid` is the pairing check's answer.
    function verify(bytes calldata point, bytes calldata signature, bytes32 root)
        internal
        view
        returns (bool wellFormed, bool valid)
    {
        if (point.length != 128 || signature.length != 256) return (false, false);
        (bool ok, bytes memory h) = hashToG2(abi.encodePacked(root), DST);
        if (!ok) return (false, false);
        bytes memory out;
        (ok, out) = PAIRING.staticcall(abi.encodePacked(point, h, NEG_G1, signature));
        if (!ok || out.length != 32) return (false, false);
        return (true, uint256(bytes32(out)) == 1);
    }

    /// @notice RFC 9380 hash_to_curve to G2 (SHA-256, SSWU, random oracle) of `message` under
    ///         `dst`, as an EIP-2537 point. `ok` is false if a precompile failed.
    function hashToG2(bytes memory message, bytes memory dst) internal view returns (bool ok, bytes memory point) {
        bytes memory uniform = _expandMessageXmd(message, dst);
        // u0 = (e0, e1), u1 = (e2, e3), each element as its two EIP-2537 words.
        bytes32[8] memory e;
        for (uint256 i = 0; i < 4; i++) {
            (ok, e[2 * i], e[2 * i + 1]) = _modP(uniform, i * 64);
            if (!ok) return (false, "");
        }
        bytes memory q0;
        bytes memory q1;
        (ok, q0) = MAP_FP2_TO_G2.staticcall(abi.encodePacked(e[0], e[1], e[2], e[3]));
        if (!ok || q0.length != 256) return (false, "");
        (ok, q1) = MAP_FP2_TO_G2.staticcall(abi.encodePacked(e[4], e[5], e[6], e[7]));
        if (!ok || q1.length != 256) return (false, "");
        (ok, point) = G2ADD.staticcall(abi.encodePacked(q0, q1));
        if (!ok || point.length != 256) return (false, "");
    }

    /// @dev expand_message_xmd(msg, dst, 256) with SHA-256 (RFC 9380 §5.3.1): eight blocks.
    function _expandMessageXmd(bytes memory message, bytes memory dst) private pure returns (bytes memory out) {
        bytes memory dstPrime = abi.encodePacked(dst, uint8(dst.length));
        bytes32 b0 = sha256(abi.encodePacked(bytes32(0), bytes32(0), message, uint16(256), uint8(0), dstPrime));
        bytes32 b = sha256(abi.encodePacked(b0, uint8(1), dstPrime));
        out = new bytes(256);
        for (uint256 i = 1; i <= 8; i++) {
            if (i > 1) b = sha256(abi.encodePacked(b0 ^ b, uint8(i), dstPrime));
            assembly {
                mstore(add(add(out, 32), mul(sub(i, 1), 32)), b)
            }
        }
    }

    /// @dev 64 bytes of `data` at `offset`, as a big-endian integer, reduced mod p: the field
    ///      element as EIP-2537 encodes it, in two words (16 zero bytes and the top 16, the rest).
    function _modP(bytes memory data, uint256 offset) private view returns (bool ok, bytes32 hi, bytes32 lo) {
        bytes32 a;
        bytes32 b;
        assembly {
            a := mload(add(add(data, 32), offset))
            b := mload(add(add(data, 64), offset))
        }
        bytes memory out;
        (ok, out) = MODEXP.staticcall(
            abi.encodePacked(uint256(64), uint256(1), uint256(48), a, b, uint8(1), uint128(P_HI), P_LO)
        );
        if (!ok || out.length != 48) return (false, 0, 0);
        assembly {
            hi := shr(128, mload(add(out, 32)))
            lo := mload(add(out, 48))
        }
    }

    /// @dev SSZ's uint64: little-endian, so the bytes reversed.
    function _le64(uint64 v) private pure returns (bytes8) {
        v = ((v & 0xFF00FF00FF00FF00) >> 8) | ((v & 0x00FF00FF00FF00FF) << 8);
        v = ((v & 0xFFFF0000FFFF0000) >> 16) | ((v & 0x0000FFFF0000FFFF) << 16);
        v = (v >> 32) | (v << 32);
        return bytes8(v);
    }
}
