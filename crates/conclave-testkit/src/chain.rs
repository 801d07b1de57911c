//! A real chain for a test: anvil with the Conclave registry deployed by governance (dev
//! account 0), its scopes defined, and dev accounts 1..=n admitted as operators.

use conclave_core::OperatorId;
use conclave_registry::evm::admin;
use conclave_registry::evm::anvil::{Anvil, DEV_KEYS};
use conclave_registry::evm::RegistryAdmin;

/// anvil, the deployed registry and its operators. Dropping it stops anvil.
pub struct RegistryChain {
    pub anvil: Anvil,
    /// Governance: deploys, defines scopes, admits operators.
    pub gov: RegistryAdmin,
    /// Operator `i` is dev account `i + 1`, already admitted.
    pub operators: Vec<RegistryAdmin>,
}

impl RegistryChain {
    /// Starts anvil with `anvil_args`, deploys the registry, defines `scopes` as bits 0, 1, …
    /// and admits `operators` dev accounts.
    pub async fn start(anvil_args: &[&str], scopes: &[&str], operators: usize) -> RegistryChain {
        assert!(
            operators < DEV_KEYS.len(),
            "anvil has {} dev accounts; account 0 governs",
            DEV_KEYS.len()
        );
        let anvil = Anvil::spawn(anvil_args).expect("anvil (run scripts/install-deps.sh tests)");
        let (gov, _) =
            RegistryAdmin::deploy(&anvil.url, admin::parse_eth_key(DEV_KEYS[0]).unwrap())
                .await
                .unwrap();
        for (bit, scope) in scopes.iter().enumerate() {
            gov.define_scope(bit as u8, scope).await.unwrap();
        }
        let mut ops = Vec::with_capacity(operators);
        for key in &DEV_KEYS[1..=operators] {
            let op = RegistryAdmin::connect(
                &anvil.url,
                gov.contract(),
                admin::parse_eth_key(key).unwrap(),
            )
            .unwrap();
            gov.add_operator(Self::id_of(&op)).await.unwrap();
            ops.push(op);
        }
        RegistryChain {
            anvil,
            gov,
            operators: ops,
        }
    }

    /// The operator id of an admin handle's account.
    pub fn id_of(op: &RegistryAdmin) -> OperatorId {
        OperatorId(op.signer().0 .0)
    }

    /// The RPC URL of the chain.
    pub fn url(&self) -> &str {
        &self.anvil.url
    }
}
