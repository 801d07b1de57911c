use super::*;

fn op(b: u8) -> OperatorId {
    OperatorId([b; 20])
}

fn auth(o: OperatorId, scopes: &[&str], expiry: Option<Expiry>) -> NodeAuthorization {
    NodeAuthorization {
        operator: o,
        scopes: scopes.iter().map(|s| s.parse().unwrap()).collect(),
        valid_from_block: None,
        expiry,
        addresses: vec![],
    }
}

const NOW: Moment = Moment {
    unix_secs: 1000,
    block: None,
};

#[test]
fn authorization_honours_expiry_and_scope() {
    let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
    let mut vb = ViewBuilder::new(ViewSource::Empty);
    vb.operator(op(1)).unwrap();
    vb.node(a, auth(op(1), &["signers"], None)).unwrap();
    vb.node(b, auth(op(1), &["signers"], Some(Expiry::UnixSecs(1000))))
        .unwrap();
    vb.node(c, auth(op(1), &["signers"], Some(Expiry::Block(50))))
        .unwrap();
    let v = vb.build();
    let signers: TopicName = "signers".parse().unwrap();
    let other: TopicName = "other".parse().unwrap();

    assert!(v.may_publish(&a, &signers, NOW).is_ok());
    assert_eq!(
        v.may_publish(&a, &other, NOW).unwrap_err(),
        Unauthorized::OutOfScope(other)
    );
    // Expiry is exclusive: valid strictly before the bound.
    assert!(v
        .authorization(
            &b,
            Moment {
                unix_secs: 999,
                block: None
            }
        )
        .is_ok());
    assert_eq!(
        v.authorization(&b, NOW).unwrap_err(),
        Unauthorized::Expired(Expiry::UnixSecs(1000))
    );
    // Block-limited keys fail closed without a known height.
    assert!(v.authorization(&c, NOW).is_err());
    assert!(v
        .authorization(
            &c,
            Moment {
                unix_secs: 1000,
                block: Some(49)
            }
        )
        .is_ok());
    assert_eq!(
        v.authorization(&PeerId::random(), NOW).unwrap_err(),
        Unauthorized::Unknown
    );
    assert_eq!(v.members_at(NOW).count(), 1);
}

#[test]
fn a_delegation_starting_later_fails_closed_until_its_block() {
    let p = PeerId::random();
    let mut vb = ViewBuilder::new(ViewSource::Empty);
    vb.operator(op(1)).unwrap();
    let mut a = auth(op(1), &["signers"], Some(Expiry::Block(20)));
    a.valid_from_block = Some(10);
    vb.node(p, a).unwrap();
    let v = vb.build();
    let at = |block| Moment {
        unix_secs: 0,
        block,
    };
    assert_eq!(
        v.authorization(&p, at(None)).unwrap_err(),
        Unauthorized::NotYetValid(10)
    );
    assert_eq!(
        v.authorization(&p, at(Some(9))).unwrap_err(),
        Unauthorized::NotYetValid(10)
    );
    assert!(v.authorization(&p, at(Some(10))).is_ok());
    assert!(v.authorization(&p, at(Some(19))).is_ok());
    assert!(v.authorization(&p, at(Some(20))).is_err());
    assert_eq!(v.members_at(at(Some(15))).count(), 1);
    assert_eq!(v.members_at(at(Some(5))).count(), 0);
}

#[test]
fn builder_refuses_contradictions() {
    let a = PeerId::random();
    let mut vb = ViewBuilder::new(ViewSource::Empty);
    vb.operator(op(1)).unwrap();
    vb.operator(op(2)).unwrap();
    assert_eq!(vb.operator(op(1)), Err(ViewError::DuplicateOperator(op(1))));
    vb.node(a, auth(op(1), &[], None)).unwrap();
    assert!(matches!(
        vb.node(a, auth(op(2), &[], None)),
        Err(ViewError::DuplicateNode { .. })
    ));
    let g = GroupId([9; 20]);
    assert_eq!(
        vb.group(Group {
            id: g,
            seats: vec![]
        }),
        Err(ViewError::EmptyGroup(g))
    );
    assert!(matches!(
        vb.group(Group {
            id: g,
            seats: vec![op(3)]
        }),
        Err(ViewError::UnknownSeat { .. })
    ));
    vb.group(Group {
        id: g,
        seats: vec![op(1), op(2), op(1)],
    })
    .unwrap();
    assert_eq!(
        vb.group(Group {
            id: g,
            seats: vec![op(1)]
        }),
        Err(ViewError::DuplicateGroup(g))
    );
}

#[test]
fn rln_members_are_checked() {
    let mut vb = ViewBuilder::new(ViewSource::Empty);
    vb.operator(op(1)).unwrap();
    let m = RlnMember {
        operator: op(1),
        index: 4,
        rate_commitment: [7; 32],
        limit: 3,
        validator: None,
    };
    vb.rln_member(m).unwrap();
    assert_eq!(
        vb.rln_member(m),
        Err(ViewError::DuplicateRlnIndex { index: 4 })
    );
    assert!(matches!(
        vb_err(RlnMember {
            operator: op(2),
            index: 5,
            ..m
        }),
        ViewError::UnknownRlnOperator { index: 5, .. }
    ));
    assert!(vb_err(RlnMember {
        index: 1 << 20,
        ..m
    })
    .to_string()
    .contains("depth-20"));
    assert!(vb_err(RlnMember { limit: 0, ..m })
        .to_string()
        .contains("at least 1"));
    assert!(vb_err(RlnMember {
        limit: RLN_MAX_LIMIT + 1,
        ..m
    })
    .to_string()
    .contains("largest allowed"));
    // By default a second membership of the same operator is refused: it would double its quota.
    let second = vb.rln_member(RlnMember { index: 9, ..m }).unwrap_err();
    assert_eq!(
        second,
        ViewError::RlnCapReached {
            index: 9,
            operator: op(1),
            cap: 1,
            held: vec![4]
        }
    );
    assert!(
        second
            .to_string()
            .contains("already holds leaf 4 (its cap of 1)"),
        "{second}"
    );
    // The modulus itself is not a field element; one below it is.
    let mut r = BN254_R;
    assert!(vb_err(RlnMember {
        rate_commitment: r,
        ..m
    })
    .to_string()
    .contains("modulus"));
    r[31] -= 1;
    let mut ok = ViewBuilder::new(ViewSource::Empty);
    ok.operator(op(1)).unwrap();
    ok.rln_member(RlnMember {
        rate_commitment: r,
        ..m
    })
    .unwrap();
    assert_eq!(ok.build().rln_members().count(), 1);
    assert_eq!(
        vb.build()
            .rln_members()
            .map(|m| m.index)
            .collect::<Vec<_>>(),
        vec![4]
    );
}

#[test]
fn an_operator_holds_rln_memberships_up_to_its_cap() {
    let mut vb = ViewBuilder::new(ViewSource::Empty);
    vb.operator(op(1)).unwrap();
    vb.operator(op(2)).unwrap();
    vb.rln_cap(op(1), 3).unwrap();
    let m = |operator, index| RlnMember {
        operator,
        index,
        rate_commitment: [index as u8; 32],
        limit: 1,
        validator: None,
    };
    for index in [2, 5, 7] {
        vb.rln_member(m(op(1), index)).unwrap();
    }
    let fourth = vb.rln_member(m(op(1), 8)).unwrap_err();
    assert_eq!(
        fourth,
        ViewError::RlnCapReached {
            index: 8,
            operator: op(1),
            cap: 3,
            held: vec![2, 5, 7]
        }
    );
    assert!(
        fourth
            .to_string()
            .contains("already holds leaves 2, 5, 7 (its cap of 3)"),
        "{fourth}"
    );
    // Another operator's cap is its own: still one.
    vb.rln_member(m(op(2), 9)).unwrap();
    assert!(matches!(
        vb.rln_member(m(op(2), 10)),
        Err(ViewError::RlnCapReached { cap: 1, .. })
    ));
    // A cap arriving after the operator's leaves could not be checked against them.
    assert!(vb
        .rln_cap(op(2), 2)
        .unwrap_err()
        .to_string()
        .contains("after the operator's first membership"));
    assert_eq!(vb.build().rln_members().count(), 4);
}

#[test]
fn an_rln_cap_is_bounded() {
    let mut vb = ViewBuilder::new(ViewSource::Empty);
    vb.operator(op(1)).unwrap();
    let err = |vb: &mut ViewBuilder, cap| vb.rln_cap(op(1), cap).unwrap_err();
    assert_eq!(
        err(&mut vb, 0),
        ViewError::InvalidRlnCap {
            operator: op(1),
            cap: 0,
            problem: "must be at least 1"
        }
    );
    assert!(err(&mut vb, RLN_MAX_MEMBERSHIPS + 1)
        .to_string()
        .contains("cap 17 is above the largest allowed (16)"));
    vb.rln_cap(op(1), RLN_MAX_MEMBERSHIPS).unwrap();
}

fn vb_err(m: RlnMember) -> ViewError {
    let mut vb = ViewBuilder::new(ViewSource::Empty);
    vb.operator(op(1)).unwrap();
    vb.rln_member(m).unwrap_err()
}
