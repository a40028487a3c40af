//! Every fuzz target on stable Rust, in `cargo test`: the committed corpus
//! (`fuzz/corpus/TARGET/`) and every input that ever failed
//! (`fuzz/regressions/TARGET/`), then a short deterministic mutation run of
//! each corpus file. This is not libFuzzer (no coverage guidance; that is
//! `fuzz/run.sh`, on nightly); it keeps what the fuzzer found fixed and
//! the properties checked on every change.

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<(PathBuf, Vec<u8>)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            (p, bytes)
        })
        .collect();
    out.sort();
    out
}

/// A small xorshift generator, so that the mutation run is the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// `input` with a few bytes flipped, inserted, removed or copied.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(4) {
            0 if at < out.len() => out[at] ^= 1 << rng.below(8),
            1 => out.insert(at, rng.next() as u8),
            2 if at < out.len() => {
                out.remove(at);
            }
            _ => {
                let from = rng.below(out.len());
                let len = rng.below(16).min(out.len() - from.min(out.len()));
                let chunk = out[from..from + len].to_vec();
                out.splice(at..at, chunk);
            }
        }
    }
    out
}

const MUTATIONS_PER_INPUT: usize = 2000;

#[test]
fn every_target_keeps_its_properties_on_its_corpus_its_regressions_and_their_mutations() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut runs = 0;
    let only = std::env::var("MCPOD_FUZZ_ONLY").ok();
    for (name, target) in mcpod_fuzz::TARGETS {
        if only.as_deref().is_some_and(|o| o != *name) {
            continue;
        }
        let corpus = inputs(&root.join("corpus").join(name));
        assert!(!corpus.is_empty(), "fuzz target {name} has no seed corpus in fuzz/corpus/{name}/");
        for (path, bytes) in corpus.iter().chain(inputs(&root.join("regressions").join(name)).iter()) {
            eprintln!("{name}: {}", path.display());
            target(bytes);
            runs += 1;
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
        for (path, bytes) in &corpus {
            for _ in 0..MUTATIONS_PER_INPUT {
                let input = mutate(&mut rng, bytes);
                let result = std::panic::catch_unwind(|| target(&input));
                if result.is_err() {
                    panic!(
                        "fuzz target {name} failed on a mutation of {} (bytes as hex: {})",
                        path.display(),
                        input.iter().map(|b| format!("{b:02x}")).collect::<String>()
                    );
                }
                runs += 1;
            }
        }
    }
    assert!(runs > MUTATIONS_PER_INPUT, "only {runs} inputs ran");
}

#[test]
fn cargo_fuzz_lists_every_target_the_library_has() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .unwrap_or_else(|e| panic!("cannot read fuzz/Cargo.toml: {e}"));
    for (name, _) in mcpod_fuzz::TARGETS {
        assert!(manifest.contains(&format!("name = \"{name}\"")), "fuzz/Cargo.toml has no [[bin]] {name}");
        let entry = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz_targets").join(format!("{name}.rs"));
        assert!(entry.exists(), "{} is missing", entry.display());
    }
}
