//! Framing in process: the producer's real path (`wire::frame_into`: a size
//! pass, the header and the encoding into the buffer it reuses) next to
//! prost's `encode_to_vec`, and unframe + decode next to a bare decode.
//! Nanoseconds per event, every round's figure and their median.

use std::hint::black_box;
use std::time::Instant;

use prost::Message as _;
use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus_runtime::{Event, wire};

use crate::{Bench, Row, Target, cost, kafka};

const SCHEMA_ID: u32 = 42;

/// Nanoseconds per event of `f` over `events`, repeated to last a while.
fn time<T>(events: &[T], repeat: usize, mut f: impl FnMut(&T)) -> f64 {
    let started = Instant::now();
    for _ in 0..repeat {
        for event in events {
            f(event);
        }
    }
    started.elapsed().as_nanos() as f64 / (events.len() * repeat) as f64
}

/// prost's decode, one copy for both sides of the decode pair: inlined into
/// each side, the two copies landed wherever the build put them, which moved
/// the 100 B pair between 1.02 and 1.08 across builds of unchanged decode
/// code. With one copy the pair measures what Protobus adds: the header read.
#[inline(never)]
fn decode(payload: &[u8]) -> OrderPlaced {
    OrderPlaced::decode(payload).unwrap()
}

/// Runs `f` `depth` frames of 64 bytes and more below the caller.
#[inline(never)]
fn below(depth: usize, f: &mut dyn FnMut() -> f64) -> f64 {
    let pad = black_box([0u8; 64]);
    if depth == 0 {
        f()
    } else {
        below(depth - 1, f) + f64::from(pad[0])
    }
}

fn pair(
    rows: &mut Vec<Row>,
    name: String,
    rounds: usize,
    max: f64,
    mut raw: impl FnMut(usize) -> f64,
    mut protobus: impl FnMut(usize) -> f64,
) {
    let (mut raws, mut ours) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Each round at a stack depth of its own, the same for both sides,
        // and the side that goes first taking turns. Addresses are randomised
        // per process, and that moved the decode pair of one build between
        // 0.87 and 1.24 from process to process (steady with randomisation
        // off); spreading rounds over stack depths evened it out.
        let depth = round * 5;
        if round % 2 == 0 {
            raws.push(below(depth, &mut || raw(round)));
            ours.push(below(depth, &mut || protobus(round)));
        } else {
            ours.push(below(depth, &mut || protobus(round)));
            raws.push(below(depth, &mut || raw(round)));
        }
    }
    rows.push(Row::time(
        name,
        "ns/event",
        ours,
        raws,
        Some(Target::RatioAtMost(max)),
    ));
}

/// Copies of the same events, each built after a spacer of another size, so
/// that their heap addresses differ; rounds take the copies in turn. With one
/// copy, one build's 100 B frame pair read 1.06 with `PROTOBUS_BENCH_ONLY`
/// set and 1.37 without, and what that changes before this section runs is
/// one small heap allocation (the variable's value).
fn event_sets(size: usize) -> (Vec<Vec<OrderPlaced>>, Vec<Vec<u8>>) {
    let mut spacers = Vec::new();
    let sets = (0..SETS)
        .map(|set| {
            spacers.push(vec![0u8; 24 + 40 * set]);
            (0..10_000).map(|i| kafka::event(i, size)).collect()
        })
        .collect();
    (sets, spacers)
}

/// How many copies [`event_sets`] makes.
const SETS: usize = 5;

pub(crate) fn run(bench: &Bench) -> Vec<Row> {
    let rounds = if bench.measuring { 15 } else { 1 };
    let repeat = if bench.measuring { 20 } else { 1 };
    let mut rows = Vec::new();
    for (size, label) in [(100, "100 B"), (1024, "1 KiB")] {
        let (sets, _spacers) = event_sets(size);
        let mut buf = Vec::new();
        pair(
            &mut rows,
            format!("frame (as the producer does) vs prost encode_to_vec, {label}"),
            rounds,
            1.10,
            |round| {
                time(&sets[round % SETS], repeat, |e| {
                    black_box(e.encode_to_vec());
                })
            },
            |round| {
                time(&sets[round % SETS], repeat, |e| {
                    wire::frame_into(&mut buf, SCHEMA_ID, OrderPlaced::MESSAGE_INDEXES, e);
                    black_box(&buf);
                })
            },
        );
        let frames: Vec<Vec<Vec<u8>>> = sets
            .iter()
            .map(|events| {
                events
                    .iter()
                    .map(|e| {
                        let mut frame = Vec::new();
                        wire::write_frame(&mut frame, SCHEMA_ID, OrderPlaced::MESSAGE_INDEXES, e);
                        frame
                    })
                    .collect()
            })
            .collect();
        pair(
            &mut rows,
            format!("unframe + decode vs prost decode, {label}"),
            rounds,
            1.05,
            |round| {
                time(&frames[round % SETS], repeat, |f| {
                    black_box(decode(&f[6..]));
                })
            },
            |round| {
                // As the consumer does: a frame that starts with the last
                // header read has its writer type, and its payload starts
                // right after; any other frame's header is parsed (and kept
                // as the last one). The header is gone before the decode.
                let mut last: Vec<u8> = Vec::new();
                time(&frames[round % SETS], repeat, |f| {
                    let offset = if !last.is_empty() && f.starts_with(&last) {
                        last.len()
                    } else {
                        let header = wire::read_header(f).unwrap();
                        black_box(header.schema_id);
                        last = f[..header.payload_offset].to_vec();
                        header.payload_offset
                    };
                    black_box(decode(&f[offset..]));
                })
            },
        );
        // The producer frames every event into the buffer it reuses
        // (librdkafka copies the frame): no allocation once it has grown.
        let before = cost::allocations();
        for event in &sets[0] {
            wire::frame_into(&mut buf, SCHEMA_ID, OrderPlaced::MESSAGE_INDEXES, event);
            black_box(&buf);
        }
        let per_event = (cost::allocations() - before) as f64 / sets[0].len() as f64;
        rows.push(Row::single(
            format!("heap allocations per framed event, {label}"),
            "allocs",
            vec![per_event],
            Some(Target::AtMost(0.0)),
        ));
    }
    rows
}
