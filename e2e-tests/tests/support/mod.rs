//! What the tests that drive the `kwhost` binary share: the repository root, running
//! `kwhost` there, and a temporary directory removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn kwhost(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kwhost"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("cannot run kwhost")
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("kwhost-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
