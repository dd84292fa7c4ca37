//! A stream's life: inputs attaching and leaving, its owner keeping it open
//! or ending it, what inputs ingest, and the events it emits.

use std::sync::Arc;

use bytes::Bytes;

use super::*;

#[test]
fn outputs_that_are_not_players_are_fed_but_not_counted_as_players() {
    let (stream, _, events) = new_stream(true);
    let watcher = events.subscribe("test", 64);
    stream.attach_input(INPUT, None);
    let recorder = stream.subscribe(spec(
        10,
        OutputOptions {
            kind: OutputKind::Recorder,
            counts_as_player: false,
            ..roomy()
        },
    ));
    stream.publish(INPUT, video(0, true, 100));
    assert_eq!(media(&drain(&recorder.queue)).len(), 1);
    assert_eq!((stream.player_count(), stream.output_count()), (0, 1));
    assert!(stream.status().players.is_empty());
    assert!(
        watcher
            .try_iter()
            .all(|e| !matches!(e, Event::PlayStarted { .. }))
    );
}

#[test]
fn a_stream_outlives_its_input_until_its_owner_ends_it() {
    let (stream, _, _) = new_stream(true);
    let queue = stream.subscribe(spec(10, roomy())).queue;
    assert!(stream.attach_input(1, None));
    assert!(matches!(drain(&queue)[..], [Outbound::PublishStarted]));
    stream.publish(1, avc_header(1));
    stream.publish(1, video(0, true, 100));
    assert!(stream.detach_input(1));
    assert!(
        !stream.publish(1, video(1, false, 100)),
        "a detached input is refused"
    );
    assert!(stream.is_live(), "the session stays open");
    // Another input takes over: the output is not told anything ended.
    assert!(stream.attach_input(2, None));
    assert!(!stream.attach_input(3, None), "one input at a time");
    stream.publish(2, video(2, true, 100));
    let items = drain(&queue);
    assert!(
        items.iter().all(|i| matches!(i, Outbound::Media(_))),
        "{items:?}"
    );
    assert_eq!(
        media(&items)
            .iter()
            .filter_map(|p| number(p))
            .collect::<Vec<_>>(),
        [0, 2]
    );
    let record = stream.end_session(EndReason::PublisherClosed).unwrap();
    assert_eq!(record.key, "live/cam");
    assert!(matches!(drain(&queue)[..], [Outbound::PublishEnded]));
    assert!(!stream.is_live());
}

#[test]
fn a_stream_emits_its_lifecycle_in_order() {
    let (stream, _, events) = new_stream(true);
    let watcher = events.subscribe("test", 64);
    stream.attach_input(INPUT, None);
    let queue = stream.subscribe(spec(10, roomy())).queue;
    stream.publish(INPUT, avc_header(1));
    stream.publish(INPUT, aac_header());
    stream.unsubscribe(10);
    stream.end_session(EndReason::PublisherClosed);
    drop(queue);
    let names: Vec<_> = watcher.try_iter().map(|e| e.name()).collect();
    assert_eq!(
        names,
        [
            "publish_start",
            "input_attached",
            "play_start",
            "subscriber_count",
            "first_player_joined",
            "codec_detected",
            "codec_detected",
            "play_stop",
            "subscriber_count",
            "last_player_left",
            "input_detached",
            "publish_stop"
        ]
    );
}

#[test]
fn a_source_keeps_its_stream_open_when_an_input_leaves() {
    let metrics = Arc::new(Metrics::default());
    let events = Arc::new(Events::new(Arc::clone(&metrics)));
    let config = crate::config::Config::default();
    let registry = crate::hub::registry::Registry::new(&config, metrics, events);
    let key = crate::hub::stream_key::StreamKey::new("live", "show").unwrap();
    use crate::hub::registry::PublishRefused;
    let addr = "127.0.0.1:1".parse().unwrap();
    let main = registry.set_owned(&key, true);
    assert!(
        matches!(
            registry.publish(&key, 9, addr),
            Err(PublishRefused::FedBySource)
        ),
        "publishers are refused"
    );
    assert!(main.attach_input(1, Some(addr)));
    let queue = main.subscribe(spec(10, roomy())).queue;
    drain(&queue);
    registry.input_ended(&main, 1, EndReason::PublisherClosed);
    assert!(main.is_live(), "kept open");
    assert!(drain(&queue).is_empty(), "outputs not told");
    assert!(main.attach_input(2, Some(addr)));
    registry.set_owned(&key, false);
    registry.input_ended(&main, 2, EndReason::PublisherClosed);
    assert!(matches!(drain(&queue)[..], [Outbound::PublishEnded]));
    assert_eq!(registry.history().newest_first().len(), 1, "one session");
}

#[test]
fn an_input_ingests_metadata_media_and_aggregates() {
    let (stream, _, _) = new_stream(true);
    let stream = Arc::new(stream);
    stream.attach_input(INPUT, None);
    let queue = stream.subscribe(spec(10, roomy())).queue;
    let input = Input::new(Arc::clone(&stream), INPUT);
    let set_data_frame = Message::Data(vec![
        Value::string("@setDataFrame"),
        Value::string("onMetaData"),
        Value::EcmaArray(vec![("width".into(), Value::Number(1280.0))]),
    ])
    .encode(0, 1);
    input.ingest(&set_data_frame).unwrap();
    let parts = [avc_header(1), video(0, true, 300)].map(|p| RawMessage {
        type_id: type_id::VIDEO,
        timestamp: p.timestamp,
        stream_id: 1,
        payload: p.payload,
    });
    let aggregate = RawMessage {
        type_id: type_id::AGGREGATE,
        timestamp: 1000,
        stream_id: 1,
        payload: crate::protocol::aggregate::join(&parts),
    };
    input.ingest(&aggregate).unwrap();
    let got = media(&drain(&queue));
    let values = amf0::decode_all(&got[0].payload).unwrap();
    assert_eq!(
        values[0].as_str(),
        Some("onMetaData"),
        "without @setDataFrame"
    );
    assert!(got[1].sequence_header);
    assert!(got[2].keyframe);
    assert_eq!(got[2].timestamp, 1000);
    let status = stream.status();
    assert_eq!(status.media.width, Some(1280.0));
    assert_eq!(
        status.media.video_codec.map(|c| c.name()),
        Some("H264".into())
    );
}

#[test]
fn empty_data_and_oversized_aggregate_data_are_not_taken() {
    let (stream, _, _) = new_stream(true);
    let stream = Arc::new(stream);
    stream.attach_input(INPUT, None);
    let queue = stream.subscribe(spec(10, roomy())).queue;
    let input = Input::new(Arc::clone(&stream), INPUT);
    let empty = RawMessage {
        type_id: type_id::DATA_AMF0,
        timestamp: 0,
        stream_id: 1,
        payload: Bytes::new(),
    };
    for _ in 0..100 {
        input.ingest(&empty).unwrap();
    }
    assert!(
        drain(&queue).is_empty(),
        "a zero-length message costs outputs nothing"
    );
    let big = RawMessage {
        payload: Bytes::from(vec![
            0x05;
            crate::protocol::chunk_decoder::MAX_COMMAND_MESSAGE + 1
        ]),
        ..empty
    };
    let aggregate = RawMessage {
        type_id: type_id::AGGREGATE,
        timestamp: 0,
        stream_id: 1,
        payload: crate::protocol::aggregate::join(&[big]),
    };
    assert!(matches!(
        input.ingest(&aggregate),
        Err(crate::hub::input::IngestError::PartTooLarge { .. })
    ));
}
