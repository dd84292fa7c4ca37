//! Data messages: stream metadata sent as `@setDataFrame onMetaData` by
//! encoders and forwarded to players as plain `onMetaData`, and the
//! `|RtmpSampleAccess` message players receive on play.

use super::amf0::Value;

const SET_DATA_FRAME: &str = "@setDataFrame";
const ON_METADATA: &str = "onMetaData";

/// If `values` carry stream metadata (`@setDataFrame onMetaData {...}` or
/// a bare `onMetaData {...}`), returns them as a player should receive
/// them: `onMetaData {...}`, without the `@setDataFrame` prefix.
pub fn metadata_for_players(values: &[Value]) -> Option<Vec<Value>> {
    let rest = match values.first().and_then(Value::as_str) {
        Some(SET_DATA_FRAME) => values.get(1..)?,
        Some(_) => values,
        None => return None,
    };
    (rest.first().and_then(Value::as_str) == Some(ON_METADATA)).then(|| rest.to_vec())
}

/// Metadata as a publisher sends it to another server: with the
/// `@setDataFrame` prefix put back.
pub fn metadata_for_publishing(player_form: &[Value]) -> Vec<Value> {
    let mut values = vec![Value::string(SET_DATA_FRAME)];
    values.extend_from_slice(player_form);
    values
}

/// `|RtmpSampleAccess`, allowing Flash players to read audio and video data.
pub fn sample_access() -> Vec<Value> {
    vec![
        Value::string("|RtmpSampleAccess"),
        Value::Boolean(true),
        Value::Boolean(true),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Value {
        Value::EcmaArray(vec![("width".into(), Value::Number(640.0))])
    }

    #[test]
    fn strips_set_data_frame() {
        let sent = vec![
            Value::string(SET_DATA_FRAME),
            Value::string(ON_METADATA),
            meta(),
        ];
        assert_eq!(
            metadata_for_players(&sent),
            Some(vec![Value::string(ON_METADATA), meta()])
        );
        assert_eq!(metadata_for_publishing(&sent[1..]), sent);
    }

    #[test]
    fn accepts_bare_on_metadata_and_ignores_other_data() {
        let bare = vec![Value::string(ON_METADATA), meta()];
        assert_eq!(metadata_for_players(&bare), Some(bare.clone()));
        assert_eq!(metadata_for_players(&[Value::string("onCuePoint")]), None);
        assert_eq!(
            metadata_for_players(&[Value::string(SET_DATA_FRAME), Value::string("onTextData")]),
            None
        );
        assert_eq!(metadata_for_players(&[Value::string(SET_DATA_FRAME)]), None);
        assert_eq!(metadata_for_players(&[]), None);
    }
}
