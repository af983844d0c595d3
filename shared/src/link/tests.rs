//! The link model over scripted sequences with explicit `now`: the windows, bogus acknowledgements, and
//! the RTT and delivery-rate estimates.

use super::*;
use crate::link::cc::LineEstimate;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn link(cfg: LinkConfig) -> (Link, Instant) {
    (Link::new(cfg), Instant::now())
}

#[test]
fn at_most_two_frames_in_flight() {
    let (mut l, t0) = link(LinkConfig::default());
    assert_eq!(l.poll_send_at(t0), SendAt::Now);
    let a = l.handle_sent(t0, 1000, false);
    let b = l.handle_sent(t0, 1000, false);
    assert_eq!((a, b), (0, 1));
    assert_eq!(l.poll_send_at(t0 + ms(5)), SendAt::OnAck);
    l.handle_ack(t0 + ms(10), a).expect("in order");
    assert_eq!(l.poll_send_at(t0 + ms(10)), SendAt::Now);
    l.handle_ack(t0 + ms(11), b).expect("in order");
    assert_eq!(l.in_flight(), 0);
    assert_eq!(l.estimate().bytes_in_flight, 0);
}

#[test]
fn next_seq_is_the_seq_handle_sent_gives() {
    let (mut l, t0) = link(LinkConfig::default());
    for _ in 0..5 {
        let promised = l.next_seq();
        let seq = l.handle_sent(t0, 10, false);
        assert_eq!(seq, promised);
        l.handle_ack(t0, seq).expect("in order");
    }
}

#[test]
fn bogus_or_reordered_acks_are_errors() {
    let (mut l, t0) = link(LinkConfig::default());
    assert_eq!(l.handle_ack(t0, 0), Err(UnexpectedAck { seq: 0 }), "nothing in flight");
    let a = l.handle_sent(t0, 100, false);
    let b = l.handle_sent(t0, 100, false);
    assert_eq!(l.handle_ack(t0, b), Err(UnexpectedAck { seq: b }), "out of order");
    assert_eq!(l.handle_ack(t0, 7), Err(UnexpectedAck { seq: 7 }), "never sent");
    assert_eq!(l.handle_ack(t0, u64::MAX), Err(UnexpectedAck { seq: u64::MAX }));
    l.handle_ack(t0 + ms(3), a).expect("in order");
    assert_eq!(l.handle_ack(t0 + ms(4), a), Err(UnexpectedAck { seq: a }), "twice");
}

#[test]
fn a_bogus_ack_changes_nothing() {
    let (mut l, t0) = link(LinkConfig::default());
    let a = l.handle_sent(t0, 100, false);
    l.handle_sent(t0, 100, false);
    l.handle_ack(t0 + ms(20), a).expect("in order");
    let before = l.estimate();
    assert!(l.handle_ack(t0 + ms(30), a).is_err());
    assert!(l.handle_ack(t0 + ms(30), 9).is_err());
    assert_eq!(l.estimate(), before);
    assert_eq!(l.poll_send_at(t0 + ms(30)), SendAt::Now);
}

#[test]
fn before_the_line_is_measured_a_lans_window() {
    let (mut l, t0) = link(LinkConfig::default());
    assert_eq!(l.budget(), usize::MAX, "no byte window");
    l.handle_sent(t0, 50_000_000, false);
    assert_eq!(l.budget(), usize::MAX);
    assert_eq!(l.poll_send_at(t0), SendAt::Now, "no pacing: only the frame window counts");
    assert_eq!(l.target_quality(), Quality::default());
    l.set_quality(Quality::Lossless.into());
    assert_eq!(l.target_quality(), Quality::Lossless);
}

/// A line of `mbit` Mbit/s and `rtt_ms` as the connection's controller reports it after its startup.
fn line(mbit: u64, rtt_ms: u64) -> LineEstimate {
    LineEstimate {
        bandwidth: Some(mbit * 1_000_000 / 8),
        min_rtt: Some(ms(rtt_ms)),
        queue_delay: ms(2),
        window: 0,
        startup: false,
    }
}

#[test]
fn a_startup_estimate_is_not_used() {
    let (mut l, _) = link(LinkConfig::default());
    l.handle_line(LineEstimate { startup: true, ..line(10, 40) });
    assert_eq!(l.budget(), usize::MAX);
    let report = l.report(ms(41));
    assert_eq!(report.bandwidth_bps, None, "still climbing: not an estimate of the line");
    assert_eq!((report.rtt_ms, report.path_rtt_ms, report.queue_ms), (41, Some(40), 2), "these are measured");
}

#[test]
fn the_window_follows_the_bandwidth_delay_product() {
    let (mut l, t0) = link(LinkConfig::default());
    l.handle_line(line(10, 40)); // 1.25 MB/s
                                 // Each update at most 20 ms of the line; the window the line's 40 ms + 20 ms.
    assert_eq!(l.budget(), 25_000);
    let mut now = t0;
    let mut sent = 0;
    while l.poll_send_at(now) == SendAt::Now {
        let b = l.budget() as u64;
        l.handle_sent(now, b, true);
        sent += b;
        now += ms(1);
    }
    assert_eq!(sent, 75_000, "three updates fill 60 ms of the line");
    assert!(l.in_flight() < LINE_MAX_FRAMES);
    // A faster line: more may be in flight, each update larger.
    l.handle_line(line(50, 40));
    assert_eq!(l.poll_send_at(now), SendAt::Now);
    assert_eq!(l.budget(), 125_000);
    // A very slow one: never less than a few tiles of text.
    let (mut slow, _) = link(LinkConfig::default());
    slow.handle_line(line(0, 40));
    assert_eq!(slow.budget(), usize::MAX, "a zero rate is no estimate");
    slow.handle_line(LineEstimate { bandwidth: Some(1_000), ..line(0, 40) });
    assert_eq!(slow.budget(), 20, "20 ms at 1 kB/s");
    assert_eq!(slow.report(ms(40)).bandwidth_bps, Some(8_000));
}

/// Send an update every 50 ms for `secs`, each stopping at its budget (`behind`) or not; acks at once.
fn run(l: &mut Link, from: Instant, secs: u64, behind: bool) -> Instant {
    let mut now = from;
    for _ in 0..secs * 20 {
        let seq = l.handle_sent(now, 1000, behind);
        l.handle_ack(now + ms(1), seq).expect("in order");
        now += ms(50);
    }
    now
}

#[test]
fn a_screen_that_outruns_the_line_lowers_the_rate_then_the_quality() {
    let (mut l, t0) = link(LinkConfig::default());
    l.handle_line(line(4, 40));
    let now = run(&mut l, t0, 1, false);
    assert_eq!(l.action(), SenderAction::FullRate);
    assert_eq!(l.target_quality(), Quality::Balanced { jpeg_quality: 80 });
    // Every update held back: fewer updates first, the quality unchanged.
    let now = run(&mut l, now, 1, true);
    assert_eq!(l.action(), SenderAction::ReducedRate);
    assert_eq!(l.target_quality(), Quality::Balanced { jpeg_quality: 80 });
    assert_eq!(l.report(ms(42)).action_text(), "reduced frame rate: link 4.0 Mbit/s");
    // Still outrun after STEP_AFTER: photos one step lower, then the next, down to the lowest.
    let now = run(&mut l, now, 2, true);
    assert_eq!(l.target_quality(), Quality::Balanced { jpeg_quality: 60 });
    let now = run(&mut l, now, 2, true);
    assert_eq!(l.target_quality(), Quality::Balanced { jpeg_quality: 45 });
    let now = run(&mut l, now, 10, true);
    assert_eq!(l.target_quality(), Quality::Balanced { jpeg_quality: 30 });
    // The load ends: after RECOVER_AFTER one step back up, and after twice that, everything.
    let now = run(&mut l, now, 4, false);
    assert_eq!(l.target_quality(), Quality::Balanced { jpeg_quality: 45 });
    run(&mut l, now, 3, false);
    assert_eq!(l.action(), SenderAction::FullRate);
    assert_eq!(l.target_quality(), Quality::Balanced { jpeg_quality: 80 });
}

#[test]
fn a_fixed_quality_is_never_lowered() {
    for q in [Quality::Lossless, Quality::Balanced { jpeg_quality: 90 }] {
        let (mut l, t0) = link(LinkConfig { quality: q.into(), ..LinkConfig::default() });
        l.handle_line(line(4, 40));
        run(&mut l, t0, 10, true);
        assert_eq!(l.action(), SenderAction::ReducedRate);
        assert_eq!(l.target_quality(), q);
    }
    // Choosing a fixed quality while it is lowered takes effect at once.
    let (mut l, t0) = link(LinkConfig::default());
    l.handle_line(line(4, 40));
    run(&mut l, t0, 5, true);
    assert!(matches!(l.action(), SenderAction::ReducedQuality { .. }));
    l.set_quality(Quality::Lossless.into());
    assert_eq!((l.action(), l.target_quality()), (SenderAction::ReducedRate, Quality::Lossless));
}

#[test]
fn an_occasional_held_back_update_changes_nothing() {
    let (mut l, t0) = link(LinkConfig::default());
    l.handle_line(line(4, 40));
    let mut now = t0;
    for i in 0..200 {
        let seq = l.handle_sent(now, 1000, i % 5 == 0);
        l.handle_ack(now + ms(1), seq).expect("in order");
        now += ms(50);
    }
    assert_eq!(l.action(), SenderAction::FullRate);
}

#[test]
fn the_byte_window_limits_the_budget_and_the_next_send() {
    let cfg = LinkConfig { max_frames: 10, max_bytes: Some(25_000), ..LinkConfig::default() };
    let (mut l, t0) = link(cfg);
    assert_eq!(l.budget(), 25_000);
    let a = l.handle_sent(t0, 10_000, false);
    assert_eq!((l.budget(), l.poll_send_at(t0)), (15_000, SendAt::Now));
    l.handle_sent(t0, 20_000, false);
    assert_eq!((l.budget(), l.poll_send_at(t0)), (0, SendAt::OnAck), "30 000 in flight");
    l.handle_ack(t0 + ms(40), a).expect("in order");
    assert_eq!((l.budget(), l.poll_send_at(t0 + ms(40))), (5_000, SendAt::Now));
    assert_eq!(l.estimate().bytes_in_flight, 20_000);
}

#[test]
fn pacing_spaces_frames_by_their_size() {
    let cfg = LinkConfig { max_frames: 10, pace_rate: Some(1_000_000), ..LinkConfig::default() };
    let (mut l, t0) = link(cfg);
    l.handle_sent(t0, 10_000, false); // 10 ms at 1 MB/s
    assert_eq!(l.poll_send_at(t0), SendAt::At(t0 + ms(10)));
    assert_eq!(l.poll_send_at(t0 + ms(9)), SendAt::At(t0 + ms(10)));
    assert_eq!(l.poll_send_at(t0 + ms(10)), SendAt::Now);
    // A full window comes first: pacing is asked again after the acknowledgement.
    let cfg = LinkConfig { max_frames: 1, pace_rate: Some(1_000_000), ..LinkConfig::default() };
    let (mut l, t0) = link(cfg);
    let a = l.handle_sent(t0, 10_000, false);
    assert_eq!(l.poll_send_at(t0), SendAt::OnAck);
    l.handle_ack(t0 + ms(2), a).expect("in order");
    assert_eq!(l.poll_send_at(t0 + ms(2)), SendAt::At(t0 + ms(10)));
}

#[test]
fn rtt_latest_min_and_smoothed_over_a_scripted_sequence() {
    let (mut l, t0) = link(LinkConfig::default());
    assert_eq!(l.estimate().latest_rtt, None);
    let mut t = t0;
    for rtt in [40, 60, 20] {
        let seq = l.handle_sent(t, 1000, false);
        t += ms(rtt);
        l.handle_ack(t, seq).expect("in order");
        t += ms(100);
    }
    let e = l.estimate();
    assert_eq!(e.latest_rtt, Some(ms(20)));
    assert_eq!(e.min_rtt, Some(ms(20)));
    // 40, then 7/8·40 + 1/8·60 = 42.5, then 7/8·42.5 + 1/8·20 = 39.6875.
    assert_eq!(e.smoothed_rtt, Some(Duration::from_micros(39_687) + Duration::from_nanos(500)));
}

#[test]
fn delivery_rate_of_two_frames_in_flight() {
    let (mut l, t0) = link(LinkConfig::default());
    let a = l.handle_sent(t0, 10_000, false);
    let b = l.handle_sent(t0 + ms(10), 10_000, false);
    l.handle_ack(t0 + ms(50), a).expect("in order");
    // 10 000 bytes acknowledged 50 ms after the send interval started.
    assert_eq!(l.estimate().latest_rate, Some(200_000));
    l.handle_ack(t0 + ms(60), b).expect("in order");
    // 20 000 bytes over the 60 ms from the interval's start to B's acknowledgement.
    let e = l.estimate();
    assert_eq!(e.latest_rate, Some(333_333));
    assert_eq!(e.delivery_rate, Some(333_333), "the largest recent sample");
    assert_eq!(e.latest_rtt, Some(ms(50)));
}

#[test]
fn delivery_rate_settles_on_the_steady_sending_rate() {
    // 10 000 bytes every 10 ms (1 MB/s), each acknowledged 50 ms after it was sent: five in flight.
    let cfg = LinkConfig { max_frames: 8, ..LinkConfig::default() };
    let (mut l, t0) = link(cfg);
    let mut acked = 0;
    for k in 0..40u64 {
        let now = t0 + ms(10 * k);
        // Acknowledgements due by now arrive before the next send.
        while acked + 5 <= k {
            l.handle_ack(t0 + ms(10 * acked + 50), acked).expect("in order");
            acked += 1;
        }
        assert_eq!(l.poll_send_at(now), SendAt::Now);
        assert_eq!(l.handle_sent(now, 10_000, false), k);
        assert!(l.in_flight() <= 5);
    }
    let e = l.estimate();
    assert_eq!(e.latest_rate, Some(1_000_000));
    assert_eq!(e.delivery_rate, Some(1_000_000));
    assert_eq!(e.min_rtt, Some(ms(50)));
    assert_eq!(e.bytes_in_flight, 50_000);
}

#[test]
fn an_idle_gap_does_not_count_as_delivery_time() {
    let (mut l, t0) = link(LinkConfig::default());
    let a = l.handle_sent(t0, 10_000, false);
    l.handle_ack(t0 + ms(10), a).expect("in order");
    // The screen did not change for ten seconds, then one frame.
    let b = l.handle_sent(t0 + ms(10_000), 10_000, false);
    l.handle_ack(t0 + ms(10_010), b).expect("in order");
    assert_eq!(l.estimate().latest_rate, Some(1_000_000), "10 000 bytes in 10 ms, not in 10 s");
}

#[test]
fn a_clock_that_goes_backwards_does_not_panic() {
    let (mut l, t0) = link(LinkConfig { pace_rate: Some(1), ..LinkConfig::default() });
    let a = l.handle_sent(t0 + ms(100), u64::MAX, false);
    l.handle_ack(t0, a).expect("in order");
    assert_eq!(l.estimate().latest_rtt, Some(Duration::ZERO));
    l.handle_sent(t0, u64::MAX, false);
    let _ = l.poll_send_at(t0);
}
