//! Enhanced RTMP v2 connect negotiation: a client that declares what it
//! supports (`fourCcList`, `videoFourCcInfoMap`, `audioFourCcInfoMap`,
//! `capsEx` in its `connect` object) is told in the `_result` what the
//! server accepts. The server forwards media without decoding it, so it
//! accepts every codec for forwarding (the `"*"` wildcard with
//! `CanForward`); `capsEx` says it may send reconnect requests. A client
//! whose own `capsEx` has the Reconnect bit can be asked to reconnect
//! (`NetConnection.Connect.ReconnectRequest`), before a restart say.

use super::amf0::Value;
use super::command::{self, Level};

/// `FourCcInfoMask.CanForward`: the codec is passed on untouched.
pub const CAN_FORWARD: f64 = 4.0;
/// `CapsExMask.Reconnect`.
pub const CAPS_EX_RECONNECT: u32 = 1;
/// The `capsEx` the server announces (`CapsExMask` bits).
pub const CAPS_EX: f64 = CAPS_EX_RECONNECT as f64;
/// The status a client is asked to reconnect with.
pub const RECONNECT_REQUEST: &str = "NetConnection.Connect.ReconnectRequest";

/// Whether a `connect` object's `capsEx` says the client reconnects when
/// asked to.
pub fn accepts_reconnect(connect: &Value) -> bool {
    connect
        .get("capsEx")
        .and_then(Value::as_number)
        .is_some_and(|caps| {
            caps.is_finite() && caps >= 0.0 && (caps as u32) & CAPS_EX_RECONNECT != 0
        })
}

/// The `onStatus` (on the NetConnection) that asks a client to reconnect,
/// to `tc_url` if given, else to where it is.
pub fn reconnect_request(tc_url: Option<&str>) -> Vec<Value> {
    let mut values = command::on_status(
        Level::Status,
        RECONNECT_REQUEST,
        "The server asks you to reconnect (it is about to restart).",
    );
    if let (Some(url), Some(Value::Object(info))) = (tc_url, values.get_mut(3)) {
        info.push(("tcUrl".into(), Value::string(url)));
    }
    values
}

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
        assert_eq!(back.get("capsEx"), Some(&Value::Number(1.0)), "Reconnect");
    }

    #[test]
    fn reconnect_requests_go_to_clients_that_accept_them() {
        let v2 = |caps: f64| Value::object([("capsEx", Value::Number(caps))]);
        assert!(accepts_reconnect(&v2(1.0)));
        assert!(accepts_reconnect(&v2(3.0)));
        assert!(!accepts_reconnect(&v2(2.0)), "multitrack only");
        assert!(!accepts_reconnect(&v2(-1.0)));
        assert!(!accepts_reconnect(&v2(f64::NAN)));
        assert!(!accepts_reconnect(&Value::object([(
            "app",
            Value::string("live")
        )])));
        let request = reconnect_request(Some("rtmp://other/live"));
        assert_eq!(request[0], Value::string("onStatus"));
        let info = &request[3];
        assert_eq!(info.get("code"), Some(&Value::string(RECONNECT_REQUEST)));
        assert_eq!(info.get("level"), Some(&Value::string("status")));
        assert_eq!(info.get("tcUrl"), Some(&Value::string("rtmp://other/live")));
        assert_eq!(reconnect_request(None)[3].get("tcUrl"), None);
    }
}
