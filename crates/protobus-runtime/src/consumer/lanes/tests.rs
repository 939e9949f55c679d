//! The lanes as plain data: runs, orders, pauses, commit positions and
//! revokes, record by record.

use super::*;

#[derive(Debug, PartialEq)]
struct R(i64, &'static str);

impl Record for R {
    fn offset(&self) -> i64 {
        self.0
    }

    fn key(&self) -> Option<&[u8]> {
        Some(self.1.as_bytes())
    }

    /// The offset's tens: a new leader every ten records.
    fn leader_epoch(&self) -> i32 {
        (self.0 / 10) as i32
    }
}

/// Where the partitions' commit positions moved, as (partition, offset, epoch).
fn moved(lanes: &mut Lanes<R>) -> Vec<(i32, i64, i32)> {
    lanes
        .take_moved()
        .into_iter()
        .map(|(id, p)| (id.partition, p.offset, p.leader_epoch))
        .collect()
}

const P0: PartitionId = PartitionId {
    topic: 0,
    partition: 0,
};
const P1: PartitionId = PartitionId {
    topic: 0,
    partition: 1,
};

fn started(accepted: Accepted<R>) -> (R, Ticket) {
    match accepted {
        Accepted::Start(r, t) => (r, t),
        Accepted::Waiting => panic!("waiting"),
        Accepted::Dropped(r) => panic!("dropped {r:?}"),
    }
}

/// Finishes `record`, a run of one, and returns the lane's next run.
fn done(lanes: &mut Lanes<R>, ticket: Ticket, record: &R) -> Option<Run<R>> {
    assert!(lanes.finish(ticket, [record]), "a live partition");
    lanes.end_run(ticket, VecDeque::new(), false)
}

fn run(first: R, rest: impl IntoIterator<Item = R>) -> Run<R> {
    Run {
        first,
        rest: rest.into_iter().collect(),
    }
}

#[test]
fn partition_order_runs_one_record_per_partition() {
    let mut lanes = Lanes::new(vec![TopicLanes::new(ProcessingOrder::Partition, 100)]);
    let (a, ta) = started(lanes.accept(P0, R(0, "a")));
    assert!(matches!(lanes.accept(P0, R(1, "b")), Accepted::Waiting));
    let (_, tc) = started(lanes.accept(P1, R(0, "c")));
    assert_eq!(lanes.in_flight(P0), 1);
    let next = done(&mut lanes, ta, &a);
    assert_eq!(next, Some(Run::one(R(1, "b"))), "the next of the partition");
    assert_eq!(moved(&mut lanes), [(0, 1, 0)]);
    assert_eq!(done(&mut lanes, tc, &R(0, "c")), None);
    assert_eq!(done(&mut lanes, ta, &R(1, "b")), None);
    assert_eq!(moved(&mut lanes), [(1, 1, 0), (0, 2, 0)]);
    assert_eq!(moved(&mut lanes), [], "taken");
    started(lanes.accept(P0, R(2, "d")));
}

#[test]
fn records_that_waited_for_their_lane_start_as_one_run() {
    let mut lanes = Lanes::new(vec![TopicLanes::new(ProcessingOrder::Partition, 100)]);
    let (a, t) = started(lanes.accept(P0, R(10, "a")));
    for o in 11..14 {
        assert!(matches!(lanes.accept(P0, R(o, "b")), Accepted::Waiting));
    }
    let next = done(&mut lanes, t, &a).expect("the records that waited");
    assert_eq!(next, run(R(11, "b"), [R(12, "b"), R(13, "b")]));
    assert_eq!(lanes.in_flight(P0), 3);
    // Read while the run runs: behind what it leaves.
    assert!(matches!(lanes.accept(P0, R(14, "c")), Accepted::Waiting));
    let Run { first, mut rest } = next;
    assert!(lanes.finish(t, [&first, &rest[0]]));
    assert_eq!(
        moved(&mut lanes),
        [(0, 13, 1)],
        "after the last one finished"
    );
    rest.pop_front();
    let next = lanes.end_run(t, rest, false);
    assert_eq!(
        next,
        Some(run(R(13, "b"), [R(14, "c")])),
        "the rest, then the new one"
    );
    assert_eq!(lanes.in_flight(P0), 2);
}

/// Partition order: 0 runs while 1 and 2 wait; 0 done, they start as one
/// run (1, then 2) under 0's ticket.
fn run_of_two_after_one() -> (Lanes<R>, Ticket, Run<R>) {
    let mut lanes = Lanes::new(vec![TopicLanes::new(ProcessingOrder::Partition, 100)]);
    let (a, t) = started(lanes.accept(P0, R(0, "a")));
    lanes.accept(P0, R(1, "b"));
    lanes.accept(P0, R(2, "c"));
    let run = done(&mut lanes, t, &a).unwrap();
    (lanes, t, run)
}

#[test]
fn a_record_set_aside_in_a_run_keeps_the_rest_behind_it() {
    let (mut lanes, t, Run { first, mut rest }) = run_of_two_after_one();
    assert_eq!(first, R(1, "b"));
    // 1 fails and waits for its retry; 2 was not tried.
    assert!(lanes.set_aside(t));
    assert_eq!(lanes.take_pauses(), [(P0, true)]);
    assert_eq!(
        lanes.end_run(t, rest.split_off(0), true),
        None,
        "1 holds the lane"
    );
    assert_eq!(lanes.in_flight(P0), 0);
    assert!(lanes.retry(t));
    assert_eq!(done(&mut lanes, t, &first), Some(Run::one(R(2, "c"))));
    assert_eq!(moved(&mut lanes), [(0, 2, 0)]);
}

#[test]
fn the_rest_of_a_run_of_a_revoked_partition_is_dropped() {
    let (mut lanes, t, Run { first, rest }) = run_of_two_after_one();
    assert_eq!(lanes.close(P0), vec![], "nothing waits: the run holds them");
    assert_eq!(lanes.in_flight(P0), 2, "the revoke waits for the run");
    assert!(lanes.finish(t, [&first]));
    assert_eq!(lanes.end_run(t, rest, false), None);
    assert_eq!(lanes.in_flight(P0), 0);
    assert_eq!(moved(&mut lanes), [(0, 2, 0)], "what finished is committed");
}

#[test]
fn key_order_runs_keys_of_one_partition_at_once() {
    let mut lanes = Lanes::new(vec![TopicLanes::new(ProcessingOrder::Key, 100)]);
    let (a, ta) = started(lanes.accept(P0, R(0, "a")));
    let (b, tb) = started(lanes.accept(P0, R(1, "b")));
    assert!(matches!(lanes.accept(P0, R(2, "a")), Accepted::Waiting));
    assert!(matches!(lanes.accept(P0, R(3, "a")), Accepted::Waiting));
    assert_eq!(done(&mut lanes, tb, &b), None);
    assert_eq!(moved(&mut lanes), [], "offset 0 is still in flight");
    let next = done(&mut lanes, ta, &a).expect("a's later records");
    assert_eq!(next, run(R(2, "a"), [R(3, "a")]));
    assert_eq!(
        moved(&mut lanes),
        [(0, 2, -1)],
        "0 and 1 are done, 2 waits; past 1, finished before, the epoch is not 0's to give"
    );
    assert!(lanes.finish(ta, [&next.first, &next.rest[0]]));
    assert_eq!(lanes.end_run(ta, VecDeque::new(), false), None);
    assert_eq!(moved(&mut lanes), [(0, 4, 0)]);
    started(lanes.accept(P0, R(4, "a")));
}

#[test]
fn unordered_starts_everything() {
    let mut lanes = Lanes::new(vec![TopicLanes::new(ProcessingOrder::Unordered, 100)]);
    for o in 0..5 {
        started(lanes.accept(P0, R(o, "same")));
    }
    assert_eq!(lanes.in_flight(P0), 5);
}

#[test]
fn a_full_partition_pauses_until_half_is_done() {
    let mut lanes = Lanes::new(vec![TopicLanes::new(ProcessingOrder::Key, 4)]);
    let mut started_records = Vec::new();
    for o in 0..4 {
        started_records.push(started(
            lanes.accept(P0, R(o, ["a", "b", "c", "d"][o as usize])),
        ));
        let expected = if o == 3 { vec![(P0, true)] } else { vec![] };
        assert_eq!(lanes.take_pauses(), expected, "after {o}");
    }
    let (r, t) = &started_records[0];
    done(&mut lanes, *t, r);
    assert_eq!(lanes.take_pauses(), [], "3 outstanding is over half");
    let (r, t) = &started_records[1];
    done(&mut lanes, *t, r);
    assert_eq!(lanes.take_pauses(), [(P0, false)], "2 is half");
}

#[test]
fn a_retry_in_partition_order_holds_the_partition_and_pauses_it() {
    let mut lanes = Lanes::new(vec![TopicLanes::new(ProcessingOrder::Partition, 100)]);
    let (a, ta) = started(lanes.accept(P0, R(0, "a")));
    assert!(lanes.set_aside(ta));
    assert_eq!(lanes.end_run(ta, VecDeque::new(), true), None);
    assert_eq!(lanes.take_pauses(), [(P0, true)]);
    assert!(matches!(lanes.accept(P0, R(1, "b")), Accepted::Waiting));
    assert!(lanes.retry(ta));
    assert_eq!(lanes.take_pauses(), [(P0, false)]);
    assert_eq!(done(&mut lanes, ta, &a), Some(Run::one(R(1, "b"))));
}

#[test]
fn a_forgotten_partitions_position_is_not_stored() {
    let mut lanes = Lanes::new(vec![TopicLanes::new(ProcessingOrder::Partition, 100)]);
    let (a, ta) = started(lanes.accept(P0, R(0, "a")));
    let (c, tc) = started(lanes.accept(P1, R(10, "c")));
    done(&mut lanes, ta, &a);
    done(&mut lanes, tc, &c);
    lanes.forget(P0);
    assert_eq!(moved(&mut lanes), [(1, 11, 1)]);
}

#[test]
fn results_of_a_revoked_partition_are_ignored_even_after_it_comes_back() {
    let mut lanes = Lanes::new(vec![TopicLanes::new(ProcessingOrder::Partition, 100)]);
    let (a, ta) = started(lanes.accept(P0, R(0, "a")));
    assert!(matches!(lanes.accept(P0, R(1, "b")), Accepted::Waiting));
    assert_eq!(lanes.close(P0), vec![R(1, "b")]);
    assert!(matches!(lanes.accept(P0, R(2, "c")), Accepted::Dropped(_)));
    lanes.forget(P0);
    // Assigned again, read again from the committed offset.
    let (_, again) = started(lanes.accept(P0, R(0, "a")));
    assert!(!lanes.finish(ta, [&a]), "the old result");
    assert_eq!(lanes.end_run(ta, VecDeque::new(), false), None);
    assert_eq!(lanes.in_flight(P0), 1);
    assert!(lanes.finish(again, [&a]));
}
