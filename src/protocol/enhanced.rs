//! Enhanced RTMP v2 connect negotiation: a client that declares what it
//! supports (`fourCcList`, `videoFourCcInfoMap`, `audioFourCcInfoMap`,
//! `capsEx` in its `connect` object) is told in the `_result` what the
//! server accepts. The server forwards media without decoding it, so it
//! accepts every codec for forwarding (the `"*"` wildcard with
//! `CanForward`); `capsEx` names none of the extended capabilities
//! (reconnect requests, multitrack) until the server handles them.

use super::amf0::Value;

/// `FourCcInfoMask.CanForward`: the codec is passed on untouched.
pub const CAN_FORWARD: f64 = 4.0;
/// The `capsEx` the server announces (`CapsExMask` bits).
pub const CAPS_EX: f64 = 0.0;

/// Whether a `connect` object comes from an Enhanced RTMP client.
pub fn is_enhanced(connect: &Value) -> bool {
    [
        "fourCcList",
        "videoFourCcInfoMap",
        "audioFourCcInfoMap",
        "capsEx",
    ]
    .iter()
    .any(|key| connect.get(key).is_some())
}

/// What the server adds to the `connect` `_result`'s properties for an
/// Enhanced RTMP client: the original list form and the v2 maps.
pub fn server_properties() -> Vec<(String, Value)> {
    let forward_all = || Value::object([("*", Value::Number(CAN_FORWARD))]);
    vec![
        (
            "fourCcList".into(),
            Value::StrictArray(vec![Value::string("*")]),
        ),
        ("videoFourCcInfoMap".into(), forward_all()),
        ("audioFourCcInfoMap".into(), forward_all()),
        ("capsEx".into(), Value::Number(CAPS_EX)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::amf0;

    #[test]
    fn recognizes_enhanced_clients_by_any_of_their_properties() {
        // As ffmpeg 6.1+ sends it.
        let ffmpeg = Value::object([
            ("app", Value::string("live")),
            (
                "fourCcList",
                Value::StrictArray(vec![Value::string("hvc1"), Value::string("av01")]),
            ),
        ]);
        assert!(is_enhanced(&ffmpeg));
        let v2 = Value::object([("capsEx", Value::Number(3.0))]);
        assert!(is_enhanced(&v2));
        let legacy = Value::object([
            ("app", Value::string("live")),
            ("flashVer", Value::string("FMLE/3.0")),
        ]);
        assert!(!is_enhanced(&legacy));
        assert!(!is_enhanced(&Value::Null));
    }

    #[test]
    fn announces_forwarding_of_every_codec_and_survives_amf() {
        let props = Value::Object(server_properties());
        let bytes = amf0::encode_all(std::slice::from_ref(&props));
        let decoded = amf0::decode_all(&bytes).unwrap();
        let back = &decoded[0];
        assert_eq!(
            back.get("videoFourCcInfoMap").and_then(|m| m.get("*")),
            Some(&Value::Number(4.0))
        );
        assert_eq!(
            back.get("audioFourCcInfoMap").and_then(|m| m.get("*")),
            Some(&Value::Number(4.0))
        );
        assert_eq!(
            back.get("fourCcList"),
            Some(&Value::StrictArray(vec![Value::string("*")]))
        );
        assert_eq!(back.get("capsEx"), Some(&Value::Number(0.0)));
    }
}
