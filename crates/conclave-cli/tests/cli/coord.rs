//! `conclave coord`: the coordination helpers answer in JSON.

use super::*;

#[test]
fn coord_commands_answer_in_json() {
    let json = |args: &[&str]| -> serde_json::Value {
        let out = conclave(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let v = json(&[
        "coord",
        "seed",
        "--group",
        "0x1111111111111111111111111111111111111111",
        "--safe-block-hash",
        &"22".repeat(32),
    ]);
    let seed = v["seed"].as_str().unwrap().to_owned();
    assert_eq!(seed.len(), 64);

    // Addresses come back as given; repeats count once.
    let given = [
        "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
        "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    ];
    let v = json(&[
        "coord",
        "leader",
        "--seed",
        &seed,
        "--operators",
        &given.join(","),
    ]);
    let order: Vec<&str> = v["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    assert_eq!(order.len(), 3);
    assert_eq!(v["leader"], order[0]);
    assert!(order.iter().all(|o| given.contains(o)));

    let v = json(&["coord", "checklist", "--block", "3600", "--seed", &seed]);
    assert_eq!(v["index"], 4);
    assert_eq!(v["actions"][0], "Redemption");
    let v = json(&["coord", "checklist", "--block", "3601", "--seed", &seed]);
    assert!(v["index"].is_null() && v["actions"].is_null());

    let msg = r#"{"sender_id":3,"coordination_block":900,"wallet_public_key_hash":"0x1111111111111111111111111111111111111111","proposal":{"action":"Noop"}}"#;
    let hex = json(&["coord", "encode", msg])["hex"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        hex.ends_with("2200"),
        "a no-op is an empty, present proposal: {hex}"
    );
    let back = json(&["coord", "decode", &hex]);
    assert_eq!(
        back,
        serde_json::from_str::<serde_json::Value>(msg).unwrap()
    );
    let out = conclave(&["coord", "decode", "0803108407"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("walletPublicKeyHash has 0 bytes; expected 20"),
        "{}",
        stderr(&out)
    );
}
