use std::cmp::Ordering;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{compare, decode, encode};
use crate::key::order::compare_seq;

fn arb_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-2000i64..2000).prop_map(Value::from),
        // Integers around 2^53 and 2^63, where f64 stops being exact.
        (0u64..4096).prop_map(|d| Value::from((1u64 << 53) - 2048 + d)),
        (0u64..4096).prop_map(|d| Value::from(u64::MAX - d)),
        (0u64..4096).prop_map(|d| Value::from(i64::MIN + d as i64)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        (-100.0f64..100.0).prop_map(Value::from),
        prop_oneof![
            Just(0.5),
            Just(-0.0),
            Just(9007199254740993.0),
            Just(1e300),
            Just(-1e300)
        ]
        .prop_map(Value::from),
    ]
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        arb_number(),
        "[a-c\u{0}\u{e9}\u{1f980}]{0,4}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(("[ab\u{0}]{0,2}", inner), 0..3)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn tuple() -> impl Strategy<Value = Vec<Value>> {
    proptest::collection::vec(arb_value(), 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn byte_order_equals_value_order(a in tuple(), b in tuple()) {
        let by_bytes = encode(&a).cmp(&encode(&b));
        let by_value = compare_seq(a.iter(), b.iter());
        prop_assert_eq!(by_bytes, by_value, "{:?} vs {:?}", a, b);
    }

    #[test]
    fn numbers_sort_numerically(a in arb_number(), b in arb_number()) {
        let by_bytes = encode(std::slice::from_ref(&a)).cmp(&encode(std::slice::from_ref(&b)));
        prop_assert_eq!(by_bytes, compare(&a, &b), "{} vs {}", a, b);
    }

    #[test]
    fn keys_decode_to_equal_values(a in tuple()) {
        let back = decode(&encode(&a)).unwrap();
        prop_assert_eq!(compare_seq(back.iter(), a.iter()), Ordering::Equal);
    }

    #[test]
    fn tuple_prefix_is_a_byte_prefix(a in tuple(), b in arb_value()) {
        let mut longer = a.clone();
        longer.push(b);
        prop_assert!(encode(&longer).starts_with(&encode(&a)));
    }
}

#[test]
fn the_documented_order_holds() {
    let ordered = [
        json!(null),
        json!(false),
        json!(true),
        json!(-1e300),
        json!(i64::MIN),
        json!(-1.5),
        json!(-1),
        json!(0),
        json!(0.25),
        json!(1),
        json!(9007199254740992u64),
        json!(9007199254740993u64),
        json!(u64::MAX),
        json!(1e300),
        json!(""),
        json!("\u{0}"),
        json!("a"),
        json!("a\u{0}"),
        json!("ab"),
        json!("é"),
        json!([]),
        json!([null]),
        json!([1, 2]),
        json!([1, 2, 3]),
        json!([2]),
        json!({}),
        json!({"a": 1}),
    ];
    for w in ordered.windows(2) {
        assert!(encode(&w[..1]) < encode(&w[1..]), "{} < {}", w[0], w[1]);
        assert_eq!(compare(&w[0], &w[1]), Ordering::Less, "{} < {}", w[0], w[1]);
    }
    assert_eq!(
        encode(&[json!(-0.0)]),
        encode(&[json!(0)]),
        "-0.0 and 0 are the same key"
    );
    assert_eq!(
        encode(&[json!(2.0)]),
        encode(&[json!(2)]),
        "2.0 and 2 are the same key"
    );
}

#[test]
fn malformed_keys_are_errors() {
    for bad in [
        &[0x09u8][..],
        &[0x05, b'a'],
        &[0x05, 0x00, 0x07],
        &[0x04, 1, 2],
        &[0x06, 0x01],
    ] {
        assert!(decode(bad).is_err(), "{bad:?}");
    }
}
