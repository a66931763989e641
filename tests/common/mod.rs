//! Helpers shared by the integration tests: running the `mosaic` binary (with builders for the
//! command lines every test repeats), scratch folders, and comparing whole stores file by file.

#![allow(dead_code)] // each test file uses a different subset

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run the `mosaic` binary from the package root (so `./bands.toml` is found).
pub fn mosaic(args: &[&str]) -> Output {
    Mosaic::new(args).run()
}

/// A `mosaic` command line, built argument by argument, run from the package root.
#[derive(Clone, Debug)]
pub struct Mosaic(Vec<OsString>);

impl Mosaic {
    /// `mosaic ARGS...`.
    pub fn new<A: AsRef<OsStr>>(args: impl IntoIterator<Item = A>) -> Self {
        Mosaic(args.into_iter().map(|a| a.as_ref().to_owned()).collect())
    }

    /// One more argument (a flag, a value or a path).
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.0.push(arg.as_ref().to_owned());
        self
    }

    /// More arguments.
    pub fn args<A: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = A>) -> Self {
        self.0
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// The process to spawn (for runs in parallel, with a deadline or other stdio).
    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mosaic"));
        c.args(&self.0).current_dir(env!("CARGO_MANIFEST_DIR"));
        c
    }

    /// Run it to the end, whatever the exit code.
    pub fn run(&self) -> Output {
        self.command().output().unwrap()
    }

    /// Run it and assert that it succeeded (showing the command, stdout and stderr if not).
    pub fn run_ok(&self) -> Output {
        let out = self.run();
        assert!(out.status.success(), "{}", self.report(&out));
        out
    }

    /// Run it, assert that it succeeded, and return its stdout.
    pub fn ok(&self) -> String {
        stdout(&self.run_ok())
    }

    /// Run it and assert that it exited with `code` (showing the command, stdout and stderr if
    /// not).
    pub fn exits(&self, code: i32) -> Output {
        let out = self.run();
        assert_eq!(out.status.code(), Some(code), "{}", self.report(&out));
        out
    }

    /// Run it, assert that it exited with `code` and that stderr contains `message`; return
    /// stderr.
    pub fn fails(&self, code: i32, message: &str) -> String {
        let err = stderr(&self.exits(code));
        assert!(err.contains(message), "stderr lacks `{message}`: {err}");
        err
    }

    fn report(&self, out: &Output) -> String {
        format!(
            "mosaic {:?}: {}\nstdout:\n{}\nstderr:\n{}",
            self.0,
            out.status,
            stdout(out),
            stderr(out)
        )
    }
}

/// `mosaic synth --out OUT --tiles TILES --years YEARS` (tiles and years comma-separated).
pub fn synth(out: impl AsRef<Path>, tiles: &str, years: &str) -> Mosaic {
    Mosaic::new(["synth", "--out"])
        .arg(out.as_ref())
        .args(["--tiles", tiles, "--years", years])
}

/// `mosaic build --input INPUT --out STORE --band BAND`.
pub fn build(input: impl AsRef<Path>, store: impl AsRef<Path>, band: &str) -> Mosaic {
    input_store_band("build", input.as_ref(), "--out", store.as_ref(), band)
}

/// `mosaic verify --input INPUT --store STORE --band BAND`.
pub fn verify(input: impl AsRef<Path>, store: impl AsRef<Path>, band: &str) -> Mosaic {
    input_store_band("verify", input.as_ref(), "--store", store.as_ref(), band)
}

fn input_store_band(command: &str, input: &Path, flag: &str, store: &Path, band: &str) -> Mosaic {
    Mosaic::new([command, "--input"])
        .arg(input)
        .arg(flag)
        .arg(store)
        .args(["--band", band])
}

/// `mosaic status --store STORE`.
pub fn status(store: impl AsRef<Path>) -> Mosaic {
    Mosaic::new(["status", "--store"]).arg(store.as_ref())
}

/// Run a build with `--report REPORT` and assert that it exits 1 (some tiles failed); return its
/// stderr and the report.
pub fn build_with_failures(build: Mosaic, report: &Path) -> (String, serde_json::Value) {
    let out = build.arg("--report").arg(report).exits(1);
    (stderr(&out), read_json(report))
}

/// A JSON file, parsed.
pub fn read_json(path: impl AsRef<Path>) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A sharded array's shard shape and inner chunk shape, from its `zarr.json` (parsed here, not
/// by the crate, for the read-log tests).
pub fn shard_and_inner_shape(meta: &serde_json::Value) -> (Vec<u64>, Vec<u64>) {
    let shape = |v: &serde_json::Value| -> Vec<u64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect()
    };
    (
        shape(&meta["chunk_grid"]["configuration"]["chunk_shape"]),
        shape(&meta["codecs"][0]["configuration"]["chunk_shape"]),
    )
}

/// A shard's index, read from the object's end: (offset, nbytes) per inner chunk in C order
/// (offset u64::MAX when the chunk is not stored), and the byte range of the index itself
/// (entries and their crc32c).
pub fn shard_index(shard: &Path, chunks: u64) -> (Vec<(u64, u64)>, (u64, u64)) {
    let bytes = std::fs::read(shard).unwrap();
    let size = bytes.len() as u64;
    let index_start = size - (chunks * 16 + 4);
    let entries = bytes[index_start as usize..size as usize - 4]
        .chunks(16)
        .map(|e| {
            let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap());
            (word(&e[..8]), word(&e[8..]))
        })
        .collect();
    (entries, (index_start, size))
}

/// Assert that a finished run succeeded (showing stdout and stderr if not); return its stdout.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// The space-separated words that follow the first `marker` in `text` (up to the next
/// `marker`), as in `words_after("80-90: 3 tiles written", "80-90: ")` -> "3", "tiles", ...
pub fn words_after<'a>(text: &'a str, marker: &str) -> std::str::Split<'a, char> {
    text.split(marker).nth(1).unwrap().split(' ')
}

/// Cut a file to `keep(its length)` bytes.
pub fn truncate(path: &Path, keep: impl FnOnce(u64) -> u64) {
    let len = std::fs::metadata(path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(keep(len))
        .unwrap();
}

/// A run's stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A run's stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// An empty scratch folder `{tag}-{pid}` under Cargo's temporary folder for tests, removed
/// when the guard drops after a passing test (a failing test keeps it to look at). The suite
/// writes gigabytes; left behind, they starve the servers the later tests start.
pub fn scratch_dir(tag: &str) -> Scratch {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

/// A scratch folder, removed on drop unless the thread is panicking.
pub struct Scratch(PathBuf);

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
        if std::thread::panicking() {
            eprintln!("kept for a look: {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Every file below `dir` with its bytes, by path relative to `dir`.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(d: &Path, root: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, root, out)
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Assert that two snapshots hold the same files with the same bytes.
pub fn assert_same_snapshots(a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "same files"
    );
    for (k, v) in a {
        assert!(v == &b[k], "{k} differs");
    }
}

/// Assert that two folders hold the same files with the same bytes.
pub fn assert_same_files(a: &Path, b: &Path) {
    assert_same_snapshots(&snapshot(a), &snapshot(b));
}

/// Copy a folder and everything below it.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).unwrap();
        }
    }
}

/// Run `mosaic build` command lines at the same time, one process each, and assert that they
/// built at the same time: each process's build (from its exit back over the seconds it
/// reports, "... in S s") overlaps every other's. Returns each run's output, in order.
pub fn build_concurrently(builds: &[Mosaic]) -> Vec<Output> {
    use std::time::Instant;
    let runs: Vec<(Output, Instant)> = std::thread::scope(|scope| {
        let handles: Vec<_> = builds
            .iter()
            .map(|b| {
                scope.spawn(move || {
                    let out = b.command().output().unwrap();
                    (out, Instant::now())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Each build's interval, in seconds before the last exit.
    let last = runs.iter().map(|(_, t)| *t).max().unwrap();
    let intervals: Vec<(f64, f64)> = runs
        .iter()
        .map(|(out, exit)| {
            let text = stdout(out);
            let seconds: f64 = text
                .split(" in ")
                .nth(1)
                .and_then(|t| t.split(" s ").next())
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("no build time in {text}{}", stderr(out)));
            let end = (last - *exit).as_secs_f64();
            (end + seconds, end)
        })
        .collect();
    for (i, a) in intervals.iter().enumerate() {
        for b in &intervals[i + 1..] {
            // Intervals in seconds before the last exit: (start, end), start > end.
            assert!(
                a.1 < b.0 && b.1 < a.0,
                "the builds did not run at the same time: {intervals:?} (s before the last exit)"
            );
        }
    }
    runs.into_iter().map(|(out, _)| out).collect()
}
