//! The node's configuration file: `NodeConfig::load` (figment over TOML, the refusal of flat
//! key names) and `NodeConfig::validate`, on a file in a scratch folder (the loader takes a
//! path). Input that is not UTF-8 is still written: the loader must refuse it, not panic.
//!
//! Properties: nothing panics; a configuration that loads, written back as TOML, loads to an
//! equal configuration that validates the same way.
#![no_main]

use conclave_fuzz::{scratch_file, write_private};
use conclave_node::NodeConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = scratch_file("node.toml");
    write_private(&path, data);
    let Ok((config, base)) = NodeConfig::load(Some(&path), &[]) else {
        return;
    };
    let valid = config.validate(&base).is_ok();
    // NaN is a valid TOML float but never equal to itself: no round trip to compare.
    #[allow(clippy::eq_op)]
    if config != config {
        return;
    }
    let Ok(written) = toml::to_string(&config) else {
        return;
    };
    write_private(&path, written.as_bytes());
    match NodeConfig::load(Some(&path), &[]) {
        Ok((again, _)) => {
            assert_eq!(again, config, "config round trip through\n{written}");
            assert_eq!(
                again.validate(&base).is_ok(),
                valid,
                "validation of\n{written}"
            );
        }
        Err(e) => panic!("a loaded config written back is refused: {e}\n{written}"),
    }
});
