//! NetConnection and NetStream commands: typed requests parsed from AMF0
//! values, and the responses (`_result`, `_error`, `onStatus`,
//! `onFCPublish`) a server sends back. Client-side request builders are
//! here too, for the in-repo client.

use std::fmt;

use super::amf0::Value;
use super::enhanced as ertmp;

/// NetConnection / NetStream status codes.
pub mod status {
    pub const CONNECT_SUCCESS: &str = "NetConnection.Connect.Success";
    pub const CONNECT_REJECTED: &str = "NetConnection.Connect.Rejected";
    pub const PUBLISH_START: &str = "NetStream.Publish.Start";
    pub const PUBLISH_BAD_NAME: &str = "NetStream.Publish.BadName";
    pub const PUBLISH_UNAUTHORIZED: &str = "NetStream.Publish.Unauthorized";
    pub const PLAY_UNAUTHORIZED: &str = "NetStream.Play.Unauthorized";
    pub const UNPUBLISH_SUCCESS: &str = "NetStream.Unpublish.Success";
    pub const PLAY_RESET: &str = "NetStream.Play.Reset";
    pub const PLAY_START: &str = "NetStream.Play.Start";
    pub const PLAY_STOP: &str = "NetStream.Play.Stop";
    pub const PLAY_FAILED: &str = "NetStream.Play.Failed";
    pub const PLAY_PUBLISH_NOTIFY: &str = "NetStream.Play.PublishNotify";
    pub const PLAY_UNPUBLISH_NOTIFY: &str = "NetStream.Play.UnpublishNotify";
    pub const PAUSE_NOTIFY: &str = "NetStream.Pause.Notify";
    pub const UNPAUSE_NOTIFY: &str = "NetStream.Unpause.Notify";
    pub const STREAM_FAILED: &str = "NetStream.Failed";
}

/// Severity of an `onStatus` info object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Status,
    Error,
    Warning,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Status => "status",
            Level::Error => "error",
            Level::Warning => "warning",
        }
    }
}

/// A command message that is not even a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// The first value is not a string naming the command.
    MissingName,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::MissingName => write!(f, "command message without a command name"),
        }
    }
}

impl std::error::Error for CommandError {}

/// A command as a client sends it to a server.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Connect {
        transaction_id: f64,
        /// The `app` property; `None` when absent or not a string.
        app: Option<String>,
        tc_url: Option<String>,
        object_encoding: Option<f64>,
        /// It declared Enhanced RTMP support.
        enhanced: bool,
        /// Its `capsEx` says it reconnects when asked to.
        reconnect: bool,
    },
    CreateStream {
        transaction_id: f64,
    },
    ReleaseStream {
        transaction_id: f64,
        name: String,
    },
    FcPublish {
        transaction_id: f64,
        name: String,
    },
    FcUnpublish {
        transaction_id: f64,
        name: String,
    },
    /// Sent by rtmpdump (librtmp) before `play` of a live stream.
    FcSubscribe {
        transaction_id: f64,
        name: String,
    },
    FcUnsubscribe {
        transaction_id: f64,
    },
    Publish {
        transaction_id: f64,
        /// Stream name, possibly with a `?query`; `None` when missing.
        name: Option<String>,
        /// "live", "record" or "append".
        kind: String,
    },
    Play {
        transaction_id: f64,
        name: Option<String>,
    },
    DeleteStream {
        transaction_id: f64,
        stream_id: u32,
    },
    CloseStream {
        transaction_id: f64,
    },
    GetStreamLength {
        transaction_id: f64,
        name: String,
    },
    ReceiveAudio(bool),
    ReceiveVideo(bool),
    Pause {
        transaction_id: f64,
        paused: bool,
        position_ms: f64,
    },
    /// `_result`, `_error`, `onStatus`, `onBWDone`... sent by the peer.
    Response {
        name: String,
        transaction_id: f64,
        args: Vec<Value>,
    },
    Unknown {
        name: String,
        transaction_id: f64,
    },
}

fn string_arg(args: &[Value], index: usize) -> Option<String> {
    args.get(index).and_then(Value::as_str).map(str::to_owned)
}

impl Command {
    /// Interprets the values of a command message: name, transaction id,
    /// command object, then arguments.
    pub fn parse(values: &[Value]) -> Result<Command, CommandError> {
        let name = values
            .first()
            .and_then(Value::as_str)
            .ok_or(CommandError::MissingName)?;
        let transaction_id = values.get(1).and_then(Value::as_number).unwrap_or(0.0);
        let object = values.get(2).unwrap_or(&Value::Null);
        let args = values.get(3..).unwrap_or(&[]);
        let name_arg = || string_arg(args, 0).unwrap_or_default();
        Ok(match name {
            "connect" => Command::Connect {
                transaction_id,
                app: object.get("app").and_then(Value::as_str).map(str::to_owned),
                tc_url: object
                    .get("tcUrl")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                object_encoding: object.get("objectEncoding").and_then(Value::as_number),
                enhanced: ertmp::is_enhanced(object),
                reconnect: ertmp::accepts_reconnect(object),
            },
            "createStream" => Command::CreateStream { transaction_id },
            "releaseStream" => Command::ReleaseStream {
                transaction_id,
                name: name_arg(),
            },
            "FCPublish" => Command::FcPublish {
                transaction_id,
                name: name_arg(),
            },
            "FCUnpublish" => Command::FcUnpublish {
                transaction_id,
                name: name_arg(),
            },
            "FCSubscribe" => Command::FcSubscribe {
                transaction_id,
                name: name_arg(),
            },
            "FCUnsubscribe" => Command::FcUnsubscribe { transaction_id },
            "publish" => Command::Publish {
                transaction_id,
                name: string_arg(args, 0),
                kind: string_arg(args, 1).unwrap_or_else(|| "live".into()),
            },
            "play" => Command::Play {
                transaction_id,
                name: string_arg(args, 0),
            },
            "deleteStream" => Command::DeleteStream {
                transaction_id,
                stream_id: args.first().and_then(Value::as_number).unwrap_or(0.0) as u32,
            },
            "closeStream" => Command::CloseStream { transaction_id },
            "getStreamLength" => Command::GetStreamLength {
                transaction_id,
                name: name_arg(),
            },
            "receiveAudio" => {
                Command::ReceiveAudio(args.first().and_then(Value::as_bool).unwrap_or(true))
            }
            "receiveVideo" => {
                Command::ReceiveVideo(args.first().and_then(Value::as_bool).unwrap_or(true))
            }
            "pause" => Command::Pause {
                transaction_id,
                paused: args.first().and_then(Value::as_bool).unwrap_or(true),
                position_ms: args.get(1).and_then(Value::as_number).unwrap_or(0.0),
            },
            "_result" | "_error" | "onStatus" | "onBWDone" | "onFCPublish" | "onFCUnpublish"
            | "onFCSubscribe" => Command::Response {
                name: name.to_owned(),
                transaction_id,
                args: values.get(2..).unwrap_or(&[]).to_vec(),
            },
            other => Command::Unknown {
                name: other.to_owned(),
                transaction_id,
            },
        })
    }
}

fn info(level: Level, code: &str, description: &str) -> Value {
    Value::object([
        ("level", Value::string(level.as_str())),
        ("code", Value::string(code)),
        ("description", Value::string(description)),
    ])
}

/// `_result` for `connect`, announcing FMS capabilities (and, to an
/// Enhanced RTMP client, what the server accepts) and echoing the
/// client's object encoding.
pub fn connect_result(transaction_id: f64, object_encoding: f64, enhanced: bool) -> Vec<Value> {
    let mut information = info(
        Level::Status,
        status::CONNECT_SUCCESS,
        "Connection succeeded.",
    );
    if let Value::Object(props) = &mut information {
        props.push(("objectEncoding".into(), Value::Number(object_encoding)));
    }
    vec![
        Value::string("_result"),
        Value::Number(transaction_id),
        {
            let mut props = vec![
                ("fmsVer".into(), Value::string("FMS/3,5,7,7009")),
                ("capabilities".into(), Value::Number(31.0)),
                ("mode".into(), Value::Number(1.0)),
            ];
            if enhanced {
                props.extend(ertmp::server_properties());
            }
            Value::Object(props)
        },
        information,
    ]
}

/// `_error` for a `connect` the server cannot accept.
pub fn connect_rejected(transaction_id: f64, description: &str) -> Vec<Value> {
    vec![
        Value::string("_error"),
        Value::Number(transaction_id),
        Value::Null,
        info(Level::Error, status::CONNECT_REJECTED, description),
    ]
}

/// `_result` with a null command object and one value.
pub fn result(transaction_id: f64, value: Value) -> Vec<Value> {
    vec![
        Value::string("_result"),
        Value::Number(transaction_id),
        Value::Null,
        value,
    ]
}

/// `_error` for a command the server does not handle.
pub fn error(transaction_id: f64, code: &str, description: &str) -> Vec<Value> {
    vec![
        Value::string("_error"),
        Value::Number(transaction_id),
        Value::Null,
        info(Level::Error, code, description),
    ]
}

/// `onStatus` with transaction id 0 and a null command object; send it on
/// the NetStream's message stream id.
pub fn on_status(level: Level, code: &str, description: &str) -> Vec<Value> {
    vec![
        Value::string("onStatus"),
        Value::Number(0.0),
        Value::Null,
        info(level, code, description),
    ]
}

/// `onFCPublish`, which some encoders wait for after `FCPublish`.
pub fn on_fc_publish(name: &str) -> Vec<Value> {
    vec![
        Value::string("onFCPublish"),
        Value::Number(0.0),
        Value::Null,
        Value::object([
            ("code", Value::string(status::PUBLISH_START)),
            ("description", Value::string(name)),
        ]),
    ]
}

/// `onFCSubscribe`, the answer FMS and other servers give to `FCSubscribe`.
pub fn on_fc_subscribe(name: &str) -> Vec<Value> {
    vec![
        Value::string("onFCSubscribe"),
        Value::Number(0.0),
        Value::Null,
        Value::object([
            ("code", Value::string(status::PLAY_START)),
            ("description", Value::string(name)),
        ]),
    ]
}

/// Client-side requests.
pub mod request {
    use super::Value;

    pub fn connect(transaction_id: f64, app: &str, tc_url: &str) -> Vec<Value> {
        vec![
            Value::string("connect"),
            Value::Number(transaction_id),
            Value::object([
                ("app", Value::string(app)),
                ("type", Value::string("nonprivate")),
                (
                    "flashVer",
                    Value::string("FMLE/3.0 (compatible; rtmp-server)"),
                ),
                ("tcUrl", Value::string(tc_url)),
                ("objectEncoding", Value::Number(0.0)),
            ]),
        ]
    }

    /// A command with a null command object and the given arguments.
    pub fn call(name: &str, transaction_id: f64, args: Vec<Value>) -> Vec<Value> {
        let mut values = vec![
            Value::string(name),
            Value::Number(transaction_id),
            Value::Null,
        ];
        values.extend(args);
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_obs_style_sequence() {
        let connect = request::connect(1.0, "live", "rtmp://host/live");
        assert_eq!(
            Command::parse(&connect).unwrap(),
            Command::Connect {
                transaction_id: 1.0,
                app: Some("live".into()),
                tc_url: Some("rtmp://host/live".into()),
                object_encoding: Some(0.0),
                enhanced: false,
                reconnect: false,
            }
        );
        let release = request::call("releaseStream", 2.0, vec![Value::string("key")]);
        assert_eq!(
            Command::parse(&release).unwrap(),
            Command::ReleaseStream {
                transaction_id: 2.0,
                name: "key".into()
            }
        );
        let publish = request::call(
            "publish",
            5.0,
            vec![Value::string("key?token=x"), Value::string("live")],
        );
        assert_eq!(
            Command::parse(&publish).unwrap(),
            Command::Publish {
                transaction_id: 5.0,
                name: Some("key?token=x".into()),
                kind: "live".into()
            }
        );
    }

    #[test]
    fn missing_arguments_do_not_fail_parsing() {
        assert_eq!(
            Command::parse(&[Value::string("play")]).unwrap(),
            Command::Play {
                transaction_id: 0.0,
                name: None
            }
        );
        assert_eq!(
            Command::parse(&[Value::string("connect"), Value::Number(1.0)]).unwrap(),
            Command::Connect {
                transaction_id: 1.0,
                app: None,
                tc_url: None,
                object_encoding: None,
                enhanced: false,
                reconnect: false,
            }
        );
        assert_eq!(Command::parse(&[]), Err(CommandError::MissingName));
        assert_eq!(
            Command::parse(&[Value::Number(1.0)]),
            Err(CommandError::MissingName)
        );
    }

    #[test]
    fn fc_subscribe_is_known_and_answered_with_on_fc_subscribe() {
        let sub = request::call("FCSubscribe", 0.0, vec![Value::string("cam")]);
        assert_eq!(
            Command::parse(&sub).unwrap(),
            Command::FcSubscribe {
                transaction_id: 0.0,
                name: "cam".into()
            }
        );
        let reply = on_fc_subscribe("cam");
        assert_eq!(reply[0].as_str(), Some("onFCSubscribe"));
        assert_eq!(
            reply[3].get("code").and_then(Value::as_str),
            Some(status::PLAY_START)
        );
    }

    #[test]
    fn unknown_commands_keep_their_transaction_id() {
        assert_eq!(
            Command::parse(&request::call("fancyCall", 7.0, vec![])).unwrap(),
            Command::Unknown {
                name: "fancyCall".into(),
                transaction_id: 7.0
            }
        );
    }

    #[test]
    fn on_status_has_level_code_and_description() {
        let v = on_status(Level::Error, status::PUBLISH_BAD_NAME, "busy");
        assert_eq!(v[0].as_str(), Some("onStatus"));
        assert_eq!(v[1].as_number(), Some(0.0));
        assert_eq!(v[2], Value::Null);
        assert_eq!(v[3].get("level").and_then(Value::as_str), Some("error"));
        assert_eq!(
            v[3].get("code").and_then(Value::as_str),
            Some(status::PUBLISH_BAD_NAME)
        );
    }

    #[test]
    fn connect_result_echoes_object_encoding() {
        let v = connect_result(1.0, 3.0, false);
        assert_eq!(v[2].get("capsEx"), None, "not for a legacy client");
        let enhanced = connect_result(1.0, 0.0, true);
        assert!(enhanced[2].get("videoFourCcInfoMap").is_some());
        assert_eq!(
            v[2].get("fmsVer").and_then(Value::as_str),
            Some("FMS/3,5,7,7009")
        );
        assert_eq!(
            v[3].get("objectEncoding").and_then(Value::as_number),
            Some(3.0)
        );
        assert_eq!(
            v[3].get("code").and_then(Value::as_str),
            Some(status::CONNECT_SUCCESS)
        );
    }
}
