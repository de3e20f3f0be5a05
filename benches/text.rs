//! X's weighted tweet length on hostile text, 1 KB to 1 MB: the time per KB must stay flat
//! (counting is linear). Run with `cargo bench --bench text` (figures in BENCHMARKS.md).
//!
//! The patterns are the worst ones for the URL scan (every position may start a URL and domain
//! labels run on), and long emoji and Arabic runs.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tracardi_twitter::twitter::text::weighted_length;

/// `pattern` repeated to at least `bytes` bytes.
fn repeated(pattern: &str, bytes: usize) -> String {
    pattern.repeat(bytes.div_ceil(pattern.len()))
}

/// Two halves around a dot, so that the whole text is one run of domain labels.
fn around_a_dot(pattern: &str, bytes: usize) -> String {
    let half = repeated(pattern, bytes / 2);
    format!("{half}a.{half}")
}

fn patterns(bytes: usize) -> [(&'static str, String); 5] {
    [
        ("a.", repeated("a.", bytes)),
        ("cjk-dot", around_a_dot("中", bytes)),
        ("a-a-", around_a_dot("a-", bytes)),
        ("emoji-zwj", repeated("👍\u{200d}", bytes)),
        ("arabic", repeated("مثال.", bytes)),
    ]
}

fn hostile(c: &mut Criterion) {
    let mut group = c.benchmark_group("weighted_length");
    for kb in [1, 10, 100, 1024] {
        for (name, text) in patterns(kb * 1024) {
            group.throughput(Throughput::Bytes(text.len() as u64));
            group.bench_with_input(
                BenchmarkId::new(name, format!("{kb}KB")),
                &text,
                |b, text| b.iter(|| weighted_length(black_box(text))),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, hostile);
criterion_main!(benches);
