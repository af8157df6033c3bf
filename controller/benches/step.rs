//! One `Controller::step` with 3,000 household nodes: a plain valve-loop step, and a step that
//! also runs the demand correction (validation, outlier rejection, percentile of all nodes).
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use heatctl::config::{self, Position, RoomNode};
use heatctl::control::{Controller, ProcessImage, Sample, Signal};
use std::hint::black_box;

const NODES: usize = 3000;

fn setup() -> (Controller, ProcessImage, f64) {
    let mut cfg = config::parse_str(config::EXAMPLE_TOML, None).unwrap();
    cfg.rooms.nodes = (0..NODES)
        .map(|i| RoomNode {
            building: format!("b{}", i / 300),
            position: [
                Position::Middle,
                Position::Top,
                Position::Ground,
                Position::End,
            ][i % 4],
            vacant: i % 50 == 0,
            ..RoomNode::new(format!("n{i}"), "bus1", 1)
        })
        .collect();
    // The image is the same every iteration: switch the stuck check off so every node stays in
    // the aggregation (the expensive path) instead of being rejected as stuck after a day.
    cfg.signals.room.stuck_after_s = Some(0.0);
    let mut im = ProcessImage::with_rooms(NODES);
    im.set(Signal::TOut, Some(Sample::fresh(-8.0)));
    im.set(Signal::T2Supply, Some(Sample::fresh(58.0)));
    im.set(Signal::T2Return, Some(Sample::fresh(42.0)));
    im.set(Signal::T1Return, Some(Sample::fresh(45.0)));
    im.set(Signal::Power1Kw, Some(Sample::fresh(2500.0)));
    for (i, r) in im.rooms.iter_mut().enumerate() {
        *r = Some(Sample::aged(18.0 + (i % 37) as f64 * 0.1, (i % 600) as f64));
    }
    let mut c = Controller::new(&cfg);
    let period = cfg.demand.period_s;
    c.step(0.0, &im);
    (c, im, period)
}

fn bench(cr: &mut Criterion) {
    let (mut c, im, _) = setup();
    let mut t = 1.0;
    cr.bench_function("step_3000_nodes_valve_loop_only", |b| {
        b.iter(|| {
            t += 0.001; // below the demand period: valve loop, limiters, supervisor
            black_box(c.step(t, black_box(&im)))
        });
    });
    let (mut c, im, period) = setup();
    let mut t = 0.0;
    cr.bench_function("step_3000_nodes_with_demand_correction", |b| {
        b.iter(|| {
            t += period; // every step runs the demand correction over all nodes
            black_box(c.step(t, black_box(&im)))
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
