//! Parser throughput of `wtdiag logs`: a real Gunicorn error log (the 27.0.1 fixture, which is
//! traceback-heavy) repeated to 32 MiB, split into lines and parsed into events, in memory.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use wtdiag::analyze::timeline::Timeline;
use wtdiag::input::for_each_line;
use wtdiag::parse::gunicorn::GunicornLog;

fn corpus() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/gunicorn/gunicorn-27.0.1.log"
    );
    let one = std::fs::read(path).expect("fixture log");
    let mut data = Vec::with_capacity(32 << 20);
    while data.len() < 32 << 20 {
        data.extend_from_slice(&one);
    }
    data
}

fn parse_gunicorn(c: &mut Criterion) {
    let data = corpus();
    let mut group = c.benchmark_group("logs");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(10);
    group.bench_function("split_lines", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for_each_line(&data[..], |_| n += 1).unwrap();
            n
        })
    });
    group.bench_function("parse_to_timeline", |b| {
        b.iter(|| {
            let mut log = GunicornLog::new("bench.log");
            let mut timeline = Timeline::default();
            let mut sink = |e| timeline.push(e);
            for_each_line(&data[..], |line| log.push(line, &mut sink)).unwrap();
            log.finish(&mut sink);
            timeline.finish().incidents.len()
        })
    });
    group.finish();
}

criterion_group!(benches, parse_gunicorn);
criterion_main!(benches);
