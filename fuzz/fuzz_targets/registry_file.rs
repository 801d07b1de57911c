//! The registry file (TOML, read from disk on every poll): `RegistryDocument::parse` and its
//! validation into a view, `RegistryDocument::into_view`. Input that is not UTF-8 is skipped
//! (the file registry refuses it before parsing).
//!
//! Properties: nothing panics; every refusal names the file; a document that validates,
//! written back as TOML, parses and validates to the same view.
#![no_main]

use conclave_core::ViewSource;
use conclave_registry::RegistryDocument;
use libfuzzer_sys::fuzz_target;

const FILE: &str = "fuzz.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let doc = match RegistryDocument::parse(FILE, text) {
        Ok(doc) => doc,
        Err(e) => {
            assert!(e.to_string().contains(FILE), "{e}");
            return;
        }
    };
    let view = match doc.clone().into_view(FILE, ViewSource::Empty) {
        Ok(view) => view,
        Err(e) => {
            assert!(e.to_string().contains(FILE), "{e}");
            return;
        }
    };
    // Operators' tools write documents with the same serializer.
    let Ok(written) = toml::to_string(&doc) else {
        return;
    };
    let reparsed =
        RegistryDocument::parse(FILE, &written).and_then(|d| d.into_view(FILE, ViewSource::Empty));
    match reparsed {
        Ok(again) => assert_eq!(again, view, "registry round trip through\n{written}"),
        Err(e) => panic!("a valid document written back is refused: {e}\n{written}"),
    }
});
