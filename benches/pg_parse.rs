//! Throughput of `wtdiag pg`'s stages on a real PostgreSQL 15 log (the default-prefix fixture,
//! statement-heavy: log_min_duration_statement = 0) repeated to 32 MiB, in memory: the reader
//! alone (prefix, assembly, classification into events), the fingerprinting of its statements,
//! and the whole analysis.

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use wtdiag::analyze::pg::bursts::BurstRules;
use wtdiag::analyze::pg::fingerprint::Normalizer;
use wtdiag::analyze::pg::{PgAnalysis, PgOptions};
use wtdiag::input::for_each_line;
use wtdiag::parse::pg::{PgEvent, PgEventKind, PgLogReader};

fn corpus() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/pg/pg15-a-default.log"
    );
    let one = std::fs::read(path).expect("fixture log");
    let mut data = Vec::with_capacity(32 << 20);
    while data.len() < 32 << 20 {
        data.extend_from_slice(&one);
    }
    data
}

fn read(data: &[u8], sink: &mut dyn FnMut(&PgEvent<'_>)) {
    let mut reader = PgLogReader::new(None);
    for_each_line(data, |line| reader.push(line, sink)).unwrap();
    reader.finish(sink);
}

fn pg(c: &mut Criterion) {
    let data = corpus();
    let mut group = c.benchmark_group("pg");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(10);
    group.bench_function("read_events", |b| {
        b.iter(|| {
            let mut n = 0u64;
            read(&data, &mut |_| n += 1);
            n
        })
    });
    group.bench_function("read_and_fingerprint", |b| {
        b.iter(|| {
            let mut normalizer = Normalizer::default();
            let mut x = 0u64;
            read(&data, &mut |e| {
                if let PgEventKind::Statement { query: Some(q), .. } = e.kind {
                    x ^= normalizer.normalize(q).1;
                }
            });
            x
        })
    });
    group.bench_function("analyze", |b| {
        b.iter(|| {
            let path: Arc<str> = Arc::from("bench.log");
            let mut analysis = PgAnalysis::new(PgOptions {
                top: 10,
                event_min_ms: 1000.0,
                bursts: BurstRules {
                    min_repeats: 5,
                    min_total_ms: 50.0,
                    max_gap_ms: 1000.0,
                },
            });
            read(&data, &mut |e| analysis.observe(e, &path));
            analysis.finish(Vec::new()).findings.len()
        })
    });
    group.finish();
}

criterion_group!(benches, pg);
criterion_main!(benches);
