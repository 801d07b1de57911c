//! Rust bindings generated from the committed contract artifact (ABI + bytecode).

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    ConclaveRegistry,
    "../../contracts/out/ConclaveRegistry.json"
);
