//! Replays what the fuzzers found (`fixtures/fuzz-regressions/TARGET/*`, each a minimized input
//! that once crashed or broke an invariant, since fixed) and the hand-made seeds
//! (`fuzz/seeds/TARGET/*`) through the fuzz targets' own checks, which this file includes from
//! `fuzz/src/` so the test and the fuzzers can never disagree. `scripts/fuzz` runs the fuzzers.

use std::fs;

use crate::util::repo_path;

#[path = "../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod harness;

/// Every file under `dir/TARGET/`, run through TARGET; the count run.
fn replay(dir: &str) -> usize {
    let root = repo_path(dir);
    let mut run = 0;
    let Ok(targets) = fs::read_dir(&root) else {
        return 0;
    };
    let mut targets: Vec<_> = targets.flatten().map(|e| e.path()).collect();
    targets.sort();
    for target in targets {
        let name = target
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let mut files: Vec<_> = fs::read_dir(&target)
            .unwrap_or_else(|e| panic!("{}: {e}", target.display()))
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for file in files {
            let data = fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            println!("{dir}: {name}: {}", file.display());
            assert!(
                harness::run(&name, &data),
                "{}: no fuzz target named {name}",
                file.display()
            );
            run += 1;
        }
    }
    run
}

#[test]
fn fuzz_regressions_replay() {
    let n = replay("fixtures/fuzz-regressions");
    println!("replayed {n} fuzz regression inputs");
}

#[test]
fn fuzz_seeds_pass_their_targets() {
    let n = replay("fuzz/seeds");
    assert!(n > 0, "no seeds under fuzz/seeds");
}
