//! The fuzz corpora (`fuzz/corpus/<target>/`, minimised by `cargo fuzz cmin`) replayed as
//! ordinary tests on stable: every input the fuzzer kept runs through the same entry point
//! as the fuzz target, which panics when the property it checks is broken. See docs/fuzzing.md.

use std::path::PathBuf;

/// Every file of `fuzz/corpus/<target>/` (and `fuzz/regressions/<target>/` when present),
/// sorted.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
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
fn replay(target: &str, run: fn(&[u8])) {
    for (path, bytes) in corpus(target) {
        if std::panic::catch_unwind(|| run(&bytes)).is_err() {
            panic!("{} fails its fuzz property", path.display());
        }
    }
}

#[test]
fn scada_adu_corpus() {
    replay("scada_adu", heatctl::fuzzing::scada_adu);
}

#[test]
fn platform_command_corpus() {
    replay("platform_command", heatctl::fuzzing::platform_command);
}
