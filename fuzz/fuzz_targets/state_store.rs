//! The node's state store on disk (`conclave_node::store::StateStore`, redb): the value
//! decoders behind every read — peer-store address lists, settled coordination windows (JSON),
//! RLN removals, the RLN message-id counter and delivered-message ids. Rows are written with
//! redb directly into a fresh database in a scratch folder (the tables as store.rs defines
//! them), then the store is opened and read through its public API. redb's own file format is
//! not fuzzed here.
//!
//! Input: records (`conclave_fuzz::records`): tag % 5 picks the table, then key and value.
//! Properties: nothing panics; damaged rows are skipped or refused with an error; addresses
//! read back re-record without error.
#![no_main]

use conclave_fuzz::{records, scratch_file};
use conclave_node::store::StateStore;
use libfuzzer_sys::fuzz_target;
use redb::{Database, TableDefinition};

// Must match crates/conclave-node/src/store.rs: a mismatch makes `StateStore::open` fail on
// every input, which this target reports as a crash (update the definitions here).
const PEERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("peers");
const COORD: TableDefinition<&[u8], &[u8]> = TableDefinition::new("coordination");
const RLN_REMOVED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("rln_removed");
const RLN_COUNTER: TableDefinition<&str, &[u8]> = TableDefinition::new("rln_counter");
const DELIVERED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("delivered");

fn write_rows(path: &std::path::Path, input: &[u8]) -> Result<(), redb::Error> {
    let mut builder = Database::builder();
    builder.set_cache_size(1 << 20);
    // The default region (up to 4 GiB of pages) makes every open compute allocator state for a
    // million pages: ~0.5 s per input under the fuzzer's instrumentation. The file records its
    // layout, so the store's own open uses this one too. (redb offers this only to fuzzers.)
    #[cfg(fuzzing)]
    builder.set_region_size(1 << 20);
    let db = builder.create(path)?;
    let tx = db.begin_write()?;
    {
        let mut peers = tx.open_table(PEERS)?;
        let mut coord = tx.open_table(COORD)?;
        let mut removed = tx.open_table(RLN_REMOVED)?;
        let mut counter = tx.open_table(RLN_COUNTER)?;
        let mut delivered = tx.open_table(DELIVERED)?;
        for (tag, key, value) in records(input) {
            match tag % 5 {
                0 => peers.insert(key, value)?,
                1 => coord.insert(key, value)?,
                2 => removed.insert(key, value)?,
                3 => counter.insert(String::from_utf8_lossy(key).as_ref(), value)?,
                _ => delivered.insert(key, value)?,
            };
        }
    }
    tx.commit()?;
    Ok(())
}

fuzz_target!(|input: &[u8]| {
    let dir = scratch_file("state");
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("scratch state folder: {e}");
    }
    if let Err(e) = write_rows(&dir.join("conclave.redb"), input) {
        panic!("writing rows with redb: {e}");
    }
    let store = match StateStore::open(&dir) {
        Ok(s) => s,
        Err(e) => panic!("the store does not open a database of its own tables: {e}"),
    };
    if let Ok(addresses) = store.peer_addresses() {
        for (peer, addr) in addresses.iter().take(16) {
            if let Err(e) = store.record_addresses(*peer, std::slice::from_ref(addr)) {
                panic!("re-recording a stored address: {e}");
            }
        }
    }
    let _ = store.windows(16);
    let _ = store.rln_removed();
    let _ = store.delivered_since(0);
    let _ = store.allocate_rln_message_id(7, 2);
    let _ = store.allocate_rln_message_id(0, u32::MAX);
});
