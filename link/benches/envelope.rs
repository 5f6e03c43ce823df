//! Seal and open throughput at 100 B, 4 KiB and 64 KiB payloads.
//!
//! `cargo bench -p flowmesh-link --bench envelope`; criterion prints time per message and MiB/s
//! (messages/s = 1 / time).

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flowmesh_link::{Identity, IdentityKind, Opener, Sealer};
use std::hint::black_box;

const SUBJECT: &str = "flowmesh.flows.bench-sensor";

fn bench(c: &mut Criterion) {
    let id = Identity::generate(IdentityKind::User);
    let sealer = Sealer::new(&id, id.public());
    let opener = Opener::new(&id);
    for size in [100usize, 4096, 65536] {
        let payload = vec![0x5au8; size];
        let mut group = c.benchmark_group(format!("envelope/{size}B"));
        group.throughput(Throughput::Bytes(size as u64));
        let mut out = Vec::with_capacity(size + 256);
        group.bench_function("seal", |b| {
            b.iter(|| {
                sealer
                    .seal_into(SUBJECT, black_box(&payload), &mut out)
                    .unwrap()
            })
        });
        group.bench_function("open", |b| {
            // Each message opens once (the replay window refuses a second time), so seal a
            // fresh one per iteration outside the timed part.
            b.iter_batched(
                || sealer.seal(SUBJECT, &payload).unwrap(),
                |m| opener.open(SUBJECT, black_box(&m)).unwrap(),
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
