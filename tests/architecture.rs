//! The tree's shape, as docs/architecture.md promises it, read from the source text itself so
//! that moving code in a way that breaks a promise fails here:
//! - the imports between the library's top-level modules are exactly the edges the document's
//!   table lists (grouped `use crate::{a, b}` imports included), with no cycle;
//! - the store is a leaf that imports nothing else of the crate;
//! - every command of `main.rs` has a row in the document's command table, whose CLI file
//!   exists and calls the library entry point the row names;
//! - `main.rs` only parses and dispatches, and no source file outgrows a reading.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn src() -> PathBuf {
    root().join("src")
}

fn architecture_doc() -> String {
    std::fs::read_to_string(root().join("docs/architecture.md")).unwrap()
}

/// The library's top-level module of a file under src/ (`None` for the binary's files).
fn module_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    let name = first.trim_end_matches(".rs").to_string();
    (!matches!(name.as_str(), "main" | "lib" | "cli")).then_some(name)
}

/// Source text without comments (so a doc comment naming a module is not an import).
fn code_of(text: &str) -> String {
    text.lines()
        .map(|line| match line.trim_start().starts_with("//") {
            true => "",
            false => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn identifier(text: &str) -> String {
    text.trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The top-level modules a piece of code names as `crate::X` or in `crate::{X, Y::Z, ...}`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The group's items at depth 0, each starting with a module name.
            let mut depth = 0;
            let mut item_start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        names.insert(identifier(&group[j..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            names.insert(identifier(rest));
        }
    }
    names.remove("");
    names
}

/// Top-level modules each module imports.
fn imports() -> Graph {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut graph = Graph::new();
    for file in files {
        let Some(module) = module_of(&file) else {
            continue;
        };
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        let deps = graph.entry(module.clone()).or_default();
        deps.extend(crate_paths(&code).into_iter().filter(|d| *d != module));
    }
    graph
}

/// The rows of the first Markdown table after `heading` whose first cell is code: (first
/// cell without backticks, the other cells).
fn table_after(doc: &str, heading: &str) -> Vec<(String, Vec<String>)> {
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("docs/architecture.md has no `{heading}`"));
    doc[start..]
        .lines()
        .skip(1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect();
            let first = cells[0].strip_prefix('`')?.strip_suffix('`')?.to_string();
            Some((first, cells[1..].to_vec()))
        })
        .collect()
}

/// The import edges docs/architecture.md lists: module -> the modules it imports.
fn documented_imports() -> Graph {
    table_after(&architecture_doc(), "## Which way imports point")
        .into_iter()
        .map(|(module, cells)| {
            let deps = cells[0]
                .split(',')
                .map(|d| d.trim().trim_matches('`').to_string())
                .filter(|d| !d.is_empty() && d != "nothing")
                .collect();
            (module, deps)
        })
        .collect()
}

#[test]
fn grouped_imports_are_read() {
    let code = "use crate::{grid::{BBox, Cell}, zarr::MosaicStore};\nuse crate::store;\n// crate::plan\nfn f() { crate::hash::x(); }";
    let found = crate_paths(&code_of(code));
    let want: BTreeSet<String> = ["grid", "zarr", "store", "hash"].map(String::from).into();
    assert_eq!(found, want);
}

#[test]
fn imports_are_the_documented_edges() {
    let (actual, documented) = (imports(), documented_imports());
    let modules: BTreeSet<&String> = actual.keys().chain(documented.keys()).collect();
    let mut wrong = Vec::new();
    for m in modules {
        let (a, d) = (actual.get(m), documented.get(m));
        if a != d {
            wrong.push(format!(
                "{m}: imports {:?}, docs/architecture.md says {:?}",
                a.map(|s| s.iter().collect::<Vec<_>>()),
                d.map(|s| s.iter().collect::<Vec<_>>())
            ));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn the_store_is_a_leaf() {
    let graph = imports();
    assert!(graph.contains_key("store"), "{graph:?}");
    assert_eq!(
        graph["store"],
        BTreeSet::new(),
        "store imports {:?}",
        graph["store"]
    );
}

#[test]
fn top_level_modules_import_without_cycles() {
    let graph = imports();
    for deps in graph.values() {
        for d in deps {
            assert!(
                graph.contains_key(d),
                "crate::{d} is not a module: {graph:?}"
            );
        }
    }
    // Peel off modules with no remaining imports; whatever is left is a cycle.
    let mut left = graph.clone();
    while let Some(leaf) = left
        .iter()
        .find(|(_, deps)| deps.iter().all(|d| !left.contains_key(d)))
        .map(|(m, _)| m.clone())
    {
        left.remove(&leaf);
    }
    assert!(left.is_empty(), "import cycle among {:?}", left);
}

#[test]
fn every_command_is_in_the_command_table() {
    let main = std::fs::read_to_string(src().join("main.rs")).unwrap();
    let commands: BTreeSet<String> = main
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Command::"))
        .map(|rest| identifier(rest).to_lowercase())
        .collect();
    assert!(commands.len() >= 10, "{commands:?}");
    let rows = table_after(&architecture_doc(), "## Where each command lives");
    let documented: BTreeSet<String> = rows
        .iter()
        .map(|(c, _)| c.trim_start_matches("mosaic ").to_string())
        .collect();
    assert_eq!(commands, documented, "commands of main.rs vs the table");
    for (command, cells) in rows {
        let cli_file = root().join(cells[0].trim_matches('`'));
        let text = std::fs::read_to_string(&cli_file)
            .unwrap_or_else(|e| panic!("{command}: {}: {e}", cli_file.display()));
        let entry = cells[1].trim_matches('`');
        let function = entry.rsplit("::").next().unwrap();
        assert!(
            text.contains(function),
            "{command}: {} does not call {entry}",
            cli_file.display()
        );
        let (module, _) = entry.split_once("::").unwrap();
        assert!(
            src().join(format!("{module}.rs")).exists() || src().join(module).is_dir(),
            "{command}: no library module {module}"
        );
    }
}

#[test]
fn main_is_thin_and_no_file_is_too_long() {
    let main = std::fs::read_to_string(src().join("main.rs")).unwrap();
    assert!(
        main.lines().count() <= 200,
        "main.rs has {} lines",
        main.lines().count()
    );
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    for file in files {
        let lines = std::fs::read_to_string(&file).unwrap().lines().count();
        assert!(lines <= 800, "{} has {lines} lines", file.display());
    }
}
