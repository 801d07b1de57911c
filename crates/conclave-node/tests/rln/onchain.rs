//! With the EVM registry: one node removes the spammer on-chain, the others find it done.

use super::*;

/// With the on-chain registry: memberships are registered through the contract (three of five
/// by Ethereum validators' BLS signatures, and they reach every node's tree), and a double
/// signal removes the member on every node and, once, on-chain — submitted by one node (any
/// account may: the contract checks the revealed secret), the others finding it done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_evm_registry_one_node_removes_the_spammer_on_chain() {
    use conclave_registry::evm::anvil::DEV_KEYS;
    use conclave_registry::evm::validators::SignedRegistration;
    use conclave_registry::evm::OPEN_ENDED;

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Automine: every transaction is a block, and nodes apply blocks at once (0 confirmations).
    // Operators are accounts 1..=5; nodes a..d sign removals with accounts 6..=9, which are no
    // operators. The spammer's node (e) has no chain key.
    let names = &NAMES[..5];
    let RegistryChain {
        anvil,
        gov,
        operators: ops,
    } = RegistryChain::start(&[], &[conclave_node::SLASH_TOPIC], names.len()).await;
    let mut peers = Vec::new();
    let mut ids = Vec::new();
    let mut regs = Vec::new();
    for (i, (n, op)) in names.iter().zip(&ops).enumerate() {
        let peer = keys::generate(&d.join(format!("{n}.key")), KeyType::Ed25519).unwrap();
        op.authorize(&peer, 1, 0, OPEN_ENDED).await.unwrap();
        let id = keys::generate_rln(&d.join(format!("{n}.rln"))).unwrap();
        let rate = id.rate_commitment(LIMIT);
        let commitment = conclave_rln::fr_to_bytes(&rate);
        // Members c, d and e join as Ethereum validators: governance admits each validator key
        // under its operator, the validator signs with BLS, and anyone (here governance's
        // account) submits; the contract and every node check the signature.
        let (_, index) = if i < 2 {
            op.register_rln(commitment, LIMIT).await.unwrap()
        } else {
            let validator = conclave_bls::ValidatorSecret::generate().unwrap();
            gov.assign_validators(
                conclave_core::OperatorId(op.signer().0 .0),
                &[validator.public_key()],
            )
            .await
            .unwrap();
            let signed = SignedRegistration::sign(
                &validator,
                commitment,
                LIMIT,
                gov.chain_id().await.unwrap(),
                gov.contract(),
            );
            gov.register_validator(&signed).await.unwrap()
        };
        regs.push(RlnRegistration {
            index: index as u32,
            rate_commitment: rate,
            limit: LIMIT,
        });
        if i < 4 {
            let key = d.join(format!("{n}.eth"));
            std::fs::write(&key, DEV_KEYS[6 + i]).unwrap();
            std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
        }
        peers.push(peer);
        ids.push(id);
    }
    let contract = gov.contract().to_string();
    let mut nodes = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let mut config = common::node_config(n);
        config.registry.source = "evm".into();
        config.evm = EvmSection {
            rpc_url: Some(anvil.url.clone()),
            contract: Some(contract.clone()),
            confirmations: 0,
            poll_ms: 100,
        };
        config.rln = rln_section(n);
        if i < 4 {
            config.rln.chain_key = Some(format!("{n}.eth").into());
            config.rln.chain_stagger_secs = 2;
        }
        nodes.push(common::start_node(d, n, &config, &[], NodeHooks::default()).await);
    }
    for (i, n) in nodes.iter().enumerate() {
        let addr = listen_addrs(n, 1).await;
        ops[i].set_node_addresses(&peers[i], addr).await.unwrap();
    }
    for n in &nodes {
        until_json(n, "/readyz", "readiness", |r: &ReadyAnswer| r.ready).await;
        until_json(
            n,
            "/v1/rln/status",
            "the RLN tree from the chain",
            |v: &RlnStatusAnswer| v.members == 5,
        )
        .await;
    }
    let v: MembershipAnswer = get_json(&nodes[0], "/v1/membership").await;
    assert_eq!(v.view.rln.len(), 5, "{v:?}");
    let by_validator: Vec<bool> = v.view.rln.iter().map(|l| l.validator.is_some()).collect();
    assert_eq!(
        by_validator,
        [false, false, true, true, true],
        "/v1/membership names the validator of each leaf it registered: {v:?}"
    );

    let spammer = 4;
    let leaf = u64::from(regs[spammer].index);
    mid_epoch().await;
    Forger::new(regs)
        .double_signal(&nodes[spammer], &ids[spammer])
        .await;
    for n in &nodes {
        until_json(
            n,
            "/v1/rln/status",
            "the spammer's removal",
            |v: &RlnStatusAnswer| v.members == 4,
        )
        .await;
    }
    // Every chain-key node finishes its turn: exactly one submitted, the rest found it done.
    let (submitted, already) = eventually("every chain-key node to finish its turn", || async {
        let (mut submitted, mut already) = (0.0, 0.0);
        for n in &nodes {
            let text = get(n, "/metrics").await.1;
            let m = |r| metric(&text, "conclave_rln_onchain_removals_total", r);
            submitted += m("reason=\"submitted\"");
            already += m("reason=\"already_removed\"");
            assert_eq!(m("reason=\"failed\""), 0.0, "a submission failed");
        }
        if submitted + already >= 4.0 {
            Ok((submitted, already))
        } else {
            Err(format!("{submitted} submitted, {already} found it done"))
        }
    })
    .await;
    assert_eq!((submitted, already), (1.0, 3.0));
    assert!(gov.rln_removed(leaf).await.unwrap(), "removed on-chain");
    // The chain's view now leaves the leaf out too, and every node keeps the same root.
    let root = get_json::<RlnStatusAnswer>(&nodes[0], "/v1/rln/status")
        .await
        .root;
    for n in &nodes {
        until_json(
            n,
            "/v1/membership",
            "the chain view without the leaf",
            |v: &MembershipAnswer| v.view.rln.len() == 4,
        )
        .await;
        let status: RlnStatusAnswer = get_json(n, "/v1/rln/status").await;
        assert_eq!((status.members, &status.root), (4, &root), "{status:?}");
    }
    for n in nodes {
        n.shutdown().await;
    }
}
