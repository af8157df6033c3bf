//! Scratch directories in the system temp dir that tests remove when they are done, pass or
//! fail. One file for the workspace's tests, included with `#[path]`: by heatctl's integration
//! tests (`#[path = "peers/scratch.rs"] mod scratch;`, or through `peers/support.rs` and
//! `broker/mod.rs`, which re-export it), heatctl's unit tests (`crate::state_dir::scratch`),
//! heatctl-core's fuzz corpus test, heatctl-plant's tests and heatctl-hil's tests.
#![allow(dead_code, unreachable_pub)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};

/// A fresh, empty directory in the system temp dir, removed with everything in it when the
/// value is dropped: at the end of the scope that holds it, or while a failing test unwinds.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// `<temp dir>/<name>`, emptied first if a former run left it. Put the process id (and
    /// whatever else tells concurrent tests apart) into `name`.
    pub fn new(name: &str) -> Scratch {
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("scratch dir in the temp dir");
        Scratch(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Keep the directory until the test running on this thread has finished, and return its
    /// path. For helpers that return a plain path: the guard is parked in a thread-local list,
    /// dropped when the test's thread exits (the test harness runs each test on a thread of its
    /// own and joins it), so after the test's own values (child processes, brokers) are gone.
    pub fn until_test_ends(self) -> PathBuf {
        let path = self.0.clone();
        TEST_SCRATCH.with(|kept| kept.borrow_mut().push(self));
        path
    }
}

thread_local! {
    /// The directories handed over with [`Scratch::until_test_ends`] on this thread.
    static TEST_SCRATCH: RefCell<Vec<Scratch>> = const { RefCell::new(Vec::new()) };
}

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
