//! What outputs get: one shared packet each, the catch-up, the
//! slow-subscriber policy, byte bounds, pausing and switching kinds off and
//! on, and the headers missed meanwhile.

use std::sync::Arc;

use bytes::Bytes;

use super::*;

#[test]
fn every_output_gets_each_packet_shared_not_copied() {
    let (stream, _, _) = new_stream(true);
    assert!(stream.attach_input(INPUT, None));
    let a = stream.subscribe(spec(10, roomy())).queue;
    let b = stream.subscribe(spec(11, roomy())).queue;
    for n in 0..5 {
        assert!(stream.publish(INPUT, video(n, n == 0, 100)));
    }
    let (a, b) = (media(&drain(&a)), media(&drain(&b)));
    assert_eq!(
        a.iter().map(|p| number(p)).collect::<Vec<_>>(),
        (0..5).map(Some).collect::<Vec<_>>()
    );
    for (x, y) in a.iter().zip(&b) {
        assert!(Arc::ptr_eq(x, y), "one packet for every output");
    }
}

#[test]
fn a_late_output_catches_up_with_metadata_headers_then_the_cached_gop() {
    let (stream, _, _) = new_stream(true);
    stream.attach_input(INPUT, None);
    stream.set_metadata(INPUT, metadata(320.0));
    stream.publish(INPUT, avc_header(1));
    stream.publish(INPUT, aac_header());
    for n in 0..30 {
        stream.publish(INPUT, video(n, n % 10 == 0, 100));
        stream.publish(INPUT, aac(n));
    }
    stream.set_metadata(INPUT, metadata(640.0));
    let joined = stream.subscribe(spec(10, roomy()));
    let catch_up = &joined.catch_up;
    assert_eq!(catch_up[0].kind, PacketKind::Data);
    assert!(catch_up[0].payload.windows(3).any(|_| true));
    let width = amf0::decode_all(&catch_up[0].payload).unwrap()[1]
        .get("width")
        .and_then(Value::as_number);
    assert_eq!(width, Some(640.0), "the newest metadata");
    assert!(catch_up[1].sequence_header && catch_up[1].kind == PacketKind::Video);
    assert!(catch_up[2].sequence_header && catch_up[2].kind == PacketKind::Audio);
    assert!(catch_up[3].keyframe);
    assert_eq!(
        number(&catch_up[3]),
        Some(20),
        "the GOP since the last keyframe"
    );
    // Headers are retimed to the GOP's start: nothing goes backwards.
    assert!(
        catch_up[..3]
            .iter()
            .all(|p| p.timestamp <= catch_up[3].timestamp)
    );
    let video_numbers: Vec<_> = catch_up.iter().filter_map(|p| number(p)).collect();
    assert_eq!(video_numbers, (20..30).collect::<Vec<_>>());
    // Then live media, with no gap and nothing twice.
    stream.publish(INPUT, video(30, false, 100));
    let live = media(&drain(&joined.queue));
    assert_eq!(
        live.iter().filter_map(|p| number(p)).collect::<Vec<_>>(),
        [30]
    );
}

#[test]
fn without_a_gop_cache_a_late_output_starts_at_the_next_keyframe() {
    let (stream, _, _) = new_stream(false);
    stream.attach_input(INPUT, None);
    stream.publish(INPUT, avc_header(1));
    stream.publish(INPUT, video(0, true, 100));
    stream.publish(INPUT, video(1, false, 100));
    let joined = stream.subscribe(spec(10, roomy()));
    assert_eq!(joined.catch_up.len(), 1, "only the sequence header");
    stream.publish(INPUT, video(2, false, 100));
    stream.publish(INPUT, video(3, true, 100));
    stream.publish(INPUT, video(4, false, 100));
    let got: Vec<_> = media(&drain(&joined.queue))
        .iter()
        .filter_map(|p| number(p))
        .collect();
    assert_eq!(got, [3, 4]);
}

#[test]
fn a_slow_output_skips_to_the_next_keyframe_while_others_get_everything() {
    let (stream, metrics, _) = new_stream(true);
    stream.attach_input(INPUT, None);
    let slow = stream
        .subscribe(spec(10, options(4, 1 << 20, SlowSubscriberPolicy::Skip)))
        .queue;
    let fast = stream.subscribe(spec(11, roomy())).queue;
    for n in 0..10 {
        stream.publish(INPUT, video(n, n == 0, 100));
    }
    // The slow one took 4 and then dropped the rest of the GOP...
    let got: Vec<_> = media(&drain(&slow))
        .iter()
        .filter_map(|p| number(p))
        .collect();
    assert_eq!(got, [0, 1, 2, 3]);
    // ...and does not resume on an inter frame, only on a keyframe.
    stream.publish(INPUT, video(10, false, 100));
    stream.publish(INPUT, video(11, true, 100));
    stream.publish(INPUT, video(12, false, 100));
    let got: Vec<_> = media(&drain(&slow))
        .iter()
        .filter_map(|p| number(p))
        .collect();
    assert_eq!(got, [11, 12]);
    let all: Vec<_> = media(&drain(&fast))
        .iter()
        .filter_map(|p| number(p))
        .collect();
    assert_eq!(all, (0..13).collect::<Vec<_>>());
    let stats = stream.player_stats();
    let slow_stats = stats.iter().find(|s| s.id == 10).unwrap();
    assert_eq!(
        (slow_stats.skip_events, slow_stats.dropped_messages),
        (1, 7)
    );
    assert_eq!(metrics::get(&metrics.slow_skips), 1);
}

#[test]
fn headers_missed_while_skipping_are_resent_before_the_keyframe() {
    let (stream, _, _) = new_stream(true);
    stream.attach_input(INPUT, None);
    stream.publish(INPUT, avc_header(1));
    let slow = stream
        .subscribe(spec(10, options(2, 1 << 20, SlowSubscriberPolicy::Skip)))
        .queue;
    for n in 0..4 {
        stream.publish(INPUT, video(n, n == 0, 100));
    }
    // While it skips, the encoder changes its configuration.
    stream.publish(INPUT, avc_header(2));
    drain(&slow);
    stream.publish(INPUT, video(4, true, 100));
    let got = media(&drain(&slow));
    assert!(got[0].sequence_header, "the new header first");
    assert_eq!(got[0].payload.last(), Some(&2));
    assert_eq!(number(&got[1]), Some(4));
}

#[test]
fn queue_byte_bounds_count_the_payloads_held() {
    let (stream, _, _) = new_stream(true);
    stream.attach_input(INPUT, None);
    let queue = stream
        .subscribe(spec(10, options(1000, 10_000, SlowSubscriberPolicy::Skip)))
        .queue;
    // One message larger than the bound is still taken by an empty queue.
    stream.publish(INPUT, video(0, true, 50_000));
    assert_eq!(queue.shared().stats().queued_bytes, 50_000);
    drain(&queue);
    stream.publish(INPUT, video(1, true, 3000));
    for n in 2..10 {
        stream.publish(INPUT, video(n, false, 3000));
        assert!(queue.shared().stats().queued_bytes <= 10_000);
    }
    let got: Vec<_> = media(&drain(&queue))
        .iter()
        .filter_map(|p| number(p))
        .collect();
    assert_eq!(got, [1, 2, 3]);
    assert_eq!(queue.shared().stats().queued_bytes, 0);
}

#[test]
fn the_disconnect_policy_drops_the_output_and_wakes_it() {
    let (stream, _, events) = new_stream(true);
    let watcher = events.subscribe("test", 64);
    stream.attach_input(INPUT, None);
    let woken = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&woken);
    let queue = stream
        .subscribe(OutputSpec {
            on_drop: Some(Box::new(move || flag.store(true, Ordering::SeqCst))),
            doorbell: None,
            ..spec(10, options(2, 1 << 20, SlowSubscriberPolicy::Disconnect))
        })
        .queue;
    for n in 0..3 {
        stream.publish(INPUT, video(n, n == 0, 100));
    }
    assert!(woken.load(Ordering::SeqCst));
    assert_eq!(stream.player_count(), 0);
    assert_eq!(drain(&queue).len(), 2, "what it had queued");
    assert_eq!(queue.try_recv().unwrap_err(), Released);
    let names: Vec<_> = watcher.try_iter().map(|e| e.name()).collect();
    assert!(
        names.ends_with(&["play_stop", "subscriber_count", "last_player_left"]),
        "{names:?}"
    );
}

#[test]
fn a_paused_output_gets_a_new_sequence_header_before_its_next_frame() {
    let (stream, _, _) = new_stream(true);
    stream.attach_input(INPUT, None);
    stream.publish(INPUT, avc_header(1));
    let queue = stream.subscribe(spec(10, roomy())).queue;
    stream.publish(INPUT, video(0, true, 100));
    drain(&queue);
    queue.shared().set_paused(true);
    stream.publish(INPUT, video(1, false, 100));
    stream.publish(INPUT, avc_header(2));
    stream.publish(INPUT, video(2, true, 100));
    assert!(drain(&queue).is_empty(), "nothing while paused");
    queue.shared().set_paused(false);
    stream.publish(INPUT, video(3, false, 100));
    stream.publish(INPUT, video(4, true, 100));
    let got = media(&drain(&queue));
    assert!(
        got[0].sequence_header && got[0].payload.last() == Some(&2),
        "{got:?}"
    );
    assert_eq!(number(&got[1]), Some(4), "resumes on a keyframe");
}

#[test]
fn receive_video_false_then_true_gets_the_new_header_before_video() {
    let (stream, _, _) = new_stream(true);
    stream.attach_input(INPUT, None);
    stream.publish(INPUT, avc_header(1));
    let queue = stream.subscribe(spec(10, roomy())).queue;
    queue.shared().set_receive(PacketKind::Video, false);
    stream.publish(INPUT, avc_header(2));
    stream.publish(INPUT, video(0, true, 100));
    stream.publish(INPUT, aac(0));
    let got = media(&drain(&queue));
    assert!(
        got.iter().all(|p| p.kind == PacketKind::Audio),
        "audio only"
    );
    queue.shared().set_receive(PacketKind::Video, true);
    stream.publish(INPUT, video(1, true, 100));
    let got = media(&drain(&queue));
    assert!(got[0].sequence_header && got[0].payload.last() == Some(&2));
    assert_eq!(number(&got[1]), Some(1));
}

#[test]
fn an_output_with_a_full_queue_is_still_told_the_stream_ended() {
    let (stream, _, _) = new_stream(true);
    stream.attach_input(INPUT, None);
    let queue = stream
        .subscribe(spec(10, options(4, 1 << 20, SlowSubscriberPolicy::Skip)))
        .queue;
    for n in 0..10 {
        stream.publish(INPUT, video(n, n == 0, 100));
    }
    stream.end_session(EndReason::PublisherClosed);
    let items = drain(&queue);
    assert!(matches!(items.last(), Some(Outbound::PublishEnded)));
}

#[test]
fn an_output_without_video_resumes_on_audio() {
    let (stream, _, _) = new_stream(true);
    stream.attach_input(INPUT, None);
    stream.publish(INPUT, aac_header());
    let queue = stream.subscribe(spec(10, roomy())).queue;
    queue.shared().set_receive(PacketKind::Video, false);
    stream.publish(INPUT, video(0, true, 100));
    stream.publish(INPUT, aac(0));
    queue.shared().set_paused(true);
    stream.publish(INPUT, aac(1));
    queue.shared().set_paused(false);
    for n in 2..5 {
        stream.publish(INPUT, video(n, false, 100));
        stream.publish(INPUT, aac(n));
    }
    let got = media(&drain(&queue));
    let audio: Vec<u8> = got
        .iter()
        .filter_map(|p| p.payload.get(2).copied())
        .collect();
    assert!(got.iter().all(|p| p.kind == PacketKind::Audio));
    assert_eq!(
        audio,
        [0, 2, 3, 4],
        "audio resumes at once, without a keyframe"
    );
}

#[test]
fn switching_one_kind_back_on_does_not_disturb_the_other() {
    let (stream, _, _) = new_stream(true);
    stream.attach_input(INPUT, None);
    stream.publish(INPUT, aac_header());
    stream.publish(INPUT, video(0, true, 100));
    let queue = stream.subscribe(spec(10, roomy())).queue;
    queue.shared().set_receive(PacketKind::Audio, false);
    stream.publish(INPUT, aac(1));
    queue.shared().set_receive(PacketKind::Audio, true);
    stream.publish(INPUT, video(1, false, 100));
    stream.publish(INPUT, aac(2));
    let got = media(&drain(&queue));
    assert_eq!(number(&got[0]), Some(1), "video goes on: {got:?}");
    assert_eq!(got[1].payload.get(2), Some(&2), "audio comes back");
    // Video switched back on waits for a keyframe; audio is not held.
    queue.shared().set_receive(PacketKind::Video, false);
    queue.shared().set_receive(PacketKind::Video, true);
    stream.publish(INPUT, video(2, false, 100));
    stream.publish(INPUT, aac(3));
    stream.publish(INPUT, video(3, true, 100));
    let got = media(&drain(&queue));
    assert_eq!(got[0].payload.get(2), Some(&3));
    assert_eq!(number(&got[1]), Some(3));
}

#[test]
fn a_header_missed_while_its_kind_was_off_is_resent_when_it_comes_back() {
    let (stream, _, _) = new_stream(true);
    stream.attach_input(INPUT, None);
    stream.publish(INPUT, aac_header());
    stream.publish(INPUT, avc_header(1));
    let queue = stream.subscribe(spec(10, roomy())).queue;
    queue.shared().set_receive(PacketKind::Audio, false);
    // A new AAC configuration arrives while audio is off.
    let new_aac = Packet::new(
        PacketKind::Audio,
        0,
        Bytes::from_static(&[0xaf, 0, 0x11, 0x90]),
    );
    stream.publish(INPUT, new_aac);
    // A pause and resume on video meanwhile.
    queue.shared().set_paused(true);
    queue.shared().set_paused(false);
    stream.publish(INPUT, video(1, true, 100));
    drain(&queue);
    queue.shared().set_receive(PacketKind::Audio, true);
    stream.publish(INPUT, aac(2));
    let got = media(&drain(&queue));
    assert!(got[0].sequence_header, "{got:?}");
    assert_eq!(&got[0].payload[..], &[0xaf, 0, 0x11, 0x90]);
    assert_eq!(got[1].payload.get(2), Some(&2));
}

#[test]
fn an_output_whose_consumer_is_gone_is_dropped() {
    let (stream, _, _) = new_stream(true);
    stream.attach_input(INPUT, None);
    let queue = stream.subscribe(spec(10, roomy())).queue;
    drop(queue);
    stream.publish(INPUT, video(0, true, 100));
    assert_eq!(stream.output_count(), 0);
}

#[test]
fn each_kind_of_output_counts_its_drops_where_its_kind_belongs() {
    let (stream, metrics, _) = new_stream(true);
    stream.attach_input(INPUT, None);
    let lagging = |id, kind| {
        let options = OutputOptions {
            kind,
            counts_as_player: kind == OutputKind::RtmpPlayer,
            ..options(2, 1 << 20, SlowSubscriberPolicy::Skip)
        };
        stream.subscribe(spec(id, options)).queue
    };
    let _player = lagging(10, OutputKind::RtmpPlayer);
    let relay = lagging(11, OutputKind::Relay);
    let _recorder = lagging(12, OutputKind::Recorder);
    for n in 0..5 {
        stream.publish(INPUT, video(n, n == 0, 100));
    }
    // Each dropped 3 and started skipping once; only the player's count as
    // a player's, only the relay's as a relay's.
    assert_eq!(metrics::get(&metrics.subscriber_drops), 3);
    assert_eq!(metrics::get(&metrics.slow_skips), 1);
    assert_eq!(metrics::get(&metrics.relay_messages_dropped), 3);
    let sent = media(&drain(&relay));
    relay.record_sent(sent.len(), 200, None);
    assert_eq!(metrics::get(&metrics.relay_messages_sent), 2);
    assert_eq!(metrics::get(&metrics.relay_bytes_sent), 200);
}
