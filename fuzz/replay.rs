//! The corpus replay shared by the `fuzz_corpus` tests of heatctl-node, heatctl-core and heatctl
//! (each includes this file with `#[path]`): every input the fuzzer kept, and every regression
//! input, runs through the fuzz target's entry point, which panics when its property breaks.

use std::path::{Path, PathBuf};

/// Every file of `<fuzz>/corpus/<target>/` and `<fuzz>/regressions/<target>/`, sorted; at
/// least three, or the committed corpus is missing.
pub(crate) fn corpus(fuzz: &Path, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        for e in entries {
            let path = e.expect("corpus entry").path();
            let bytes = std::fs::read(&path).expect("corpus file");
            files.push((path, bytes));
        }
    }
    files.sort();
    assert!(
        files.len() >= 3,
        "fuzz/corpus/{target}/ holds {} files; the committed corpus is missing",
        files.len()
    );
    files
}

/// Run every corpus file of `target` through `run`, naming the file that fails.
pub(crate) fn replay(fuzz: &Path, target: &str, run: fn(&[u8])) {
    for (path, bytes) in corpus(fuzz, target) {
        if std::panic::catch_unwind(|| run(&bytes)).is_err() {
            panic!("{} fails its fuzz property", path.display());
        }
    }
}
