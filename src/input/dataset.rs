//! Which rows of a TESSERA manifest to use, chosen as TESSERA's own client (geotessera 0.11's
//! `Registry`) chooses them: one dataset version and one variant. A manifest may hold several
//! (geotessera's `s3scan` writes every variant under a prefix into one file); the rows of the
//! chosen pair are the catalogue, the others are not looked at.
//!
//! geotessera's rules, reproduced here:
//! - a version is written `v1`, `1`, `1.0` or `v1.0` (all the same: `1.0`), `v1.1` or `1.1`;
//! - its default variant is the first published NPY variant: `vultr` for 1.0, `cambridge` for
//!   1.1, `2B-L~beta1` for 2.0, else `vultr`;
//! - a dataset directory in the `npy/` tree names its pair: `v1` is (1.0, vultr), `v1.1-cam` is
//!   (1.1, cambridge), `v2-2B-L~beta1` is (2.0, 2B-L~beta1), `vX.Y-NAME` is (X.Y, NAME);
//! - the default version is `v1.1`.
//!
//! When neither `--dataset-version` nor `--variant` is given and the input's last folder is a
//! dataset directory (`.../npy/v1`), its pair is used: that is the manifest geotessera would
//! fetch for it. A manifest without `version`/`variant` columns (or a row with them empty) is
//! taken as it is.

use serde::Serialize;

/// geotessera's default dataset version (`DEFAULT_VERSION`).
pub const DEFAULT_VERSION: &str = "1.1";

/// Published NPY datasets: (version, variant, npy directory), the default variant of each
/// version first (geotessera 0.11 `DATASETS`, NPY rows).
const NPY_DATASETS: [(&str, &str, &str); 4] = [
    ("1.0", "vultr", "v1"),
    ("1.1", "cambridge", "v1.1-cam"),
    ("2.0", "2B-L~beta1", "v2-2B-L~beta1"),
    ("2.0", "2B-L~beta2", "v2-2B-L~beta2"),
];

/// The (version, variant) whose rows are used, and how it was chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatasetChoice {
    /// Normalised version (`1.0`, `1.1`, `2.0`).
    pub version: String,
    /// Variant (`vultr`, `cambridge`, ...).
    pub variant: String,
    /// Where the choice came from, for the plan's output.
    pub why: String,
}

impl std::fmt::Display for DatasetChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "dataset version {}, variant {} ({})",
            self.version, self.variant, self.why
        )
    }
}

/// A version as geotessera normalises it: `v1`, `1`, `1.0` -> `1.0`; `v1.1` -> `1.1`.
pub fn normalise_version(spec: &str) -> String {
    let s = spec.trim();
    let s = s.strip_prefix('v').unwrap_or(s);
    let mut parts = s.split('.');
    let major = parts.next().unwrap_or_default();
    let minor = parts.next().unwrap_or("0");
    format!("{major}.{minor}")
}

/// The default NPY variant of a (normalised) version.
pub fn default_variant(version: &str) -> &'static str {
    NPY_DATASETS
        .iter()
        .find(|d| d.0 == version)
        .map_or("vultr", |d| d.1)
}

/// The (version, variant) a dataset directory of TESSERA's `npy/` tree names, if it is one
/// (geotessera's `dataset_from_path`).
pub fn dataset_from_dir(name: &str) -> Option<(String, String)> {
    if let Some(d) = NPY_DATASETS.iter().find(|d| d.2 == name) {
        return Some((d.0.to_string(), d.1.to_string()));
    }
    let rest = name.strip_prefix('v')?;
    let (numbers, suffix) = match rest.split_once('-') {
        Some((n, s)) if !s.is_empty() => (n, Some(s)),
        Some(_) => return None,
        None => (rest, None),
    };
    let (major, minor) = match numbers.split_once('.') {
        Some((a, b)) => (a, b),
        None => (numbers, "0"),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) {
        return None;
    }
    let version = format!("{major}.{minor}");
    let variant = suffix.map_or_else(|| default_variant(&version).to_string(), str::to_string);
    Some((version, variant))
}

/// `--dataset-version` and `--variant` as given (each `None`: the default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatasetRequest {
    /// The version asked for.
    pub version: Option<String>,
    /// The variant asked for.
    pub variant: Option<String>,
}

impl DatasetRequest {
    /// The pair to use for `input`.
    pub fn resolve(&self, input: &str) -> DatasetChoice {
        DatasetChoice::resolve(self.version.as_deref(), self.variant.as_deref(), input)
    }
}

impl DatasetChoice {
    /// The pair to use for `input` (a folder or URL) given `--dataset-version` and `--variant`.
    pub fn resolve(version: Option<&str>, variant: Option<&str>, input: &str) -> DatasetChoice {
        let dir = input
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        let from_dir = dataset_from_dir(dir);
        let (version, version_why) = match (version, &from_dir) {
            (Some(v), _) => (normalise_version(v), "--dataset-version".to_string()),
            (None, Some((v, _))) => (v.clone(), format!("the input folder `{dir}`")),
            (None, None) => (
                DEFAULT_VERSION.to_string(),
                "geotessera's default version".to_string(),
            ),
        };
        let (variant, why) = match (variant, &from_dir) {
            (Some(v), _) => (v.to_string(), format!("{version_why}, --variant")),
            (None, Some((v, var))) if *v == version => (var.clone(), version_why),
            (None, _) => (
                default_variant(&version).to_string(),
                format!("{version_why}; the version's default variant"),
            ),
        };
        DatasetChoice {
            version,
            variant,
            why,
        }
    }

    /// True when a row with this `version` and `variant` (either absent or empty: not said)
    /// belongs to the chosen dataset.
    pub fn matches(&self, version: Option<&str>, variant: Option<&str>) -> bool {
        fn said(v: Option<&str>) -> Option<&str> {
            v.map(str::trim).filter(|v| !v.is_empty())
        }
        said(version).is_none_or(|v| normalise_version(v) == self.version)
            && said(variant).is_none_or(|v| v == self.variant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_directories_as_geotessera_reads_them() {
        for v in ["v1", "1", "1.0", "v1.0"] {
            assert_eq!(normalise_version(v), "1.0");
        }
        assert_eq!(normalise_version("v1.1"), "1.1");
        assert_eq!(default_variant("1.0"), "vultr");
        assert_eq!(default_variant("1.1"), "cambridge");
        assert_eq!(default_variant("2.0"), "2B-L~beta1");
        assert_eq!(dataset_from_dir("v1"), Some(("1.0".into(), "vultr".into())));
        assert_eq!(
            dataset_from_dir("v1.1-cam"),
            Some(("1.1".into(), "cambridge".into()))
        );
        assert_eq!(
            dataset_from_dir("v3.2-foo"),
            Some(("3.2".into(), "foo".into()))
        );
        assert_eq!(dataset_from_dir("tiles"), None);
        assert_eq!(dataset_from_dir("v"), None);
    }

    #[test]
    fn choices() {
        let c = DatasetChoice::resolve(None, None, "s3://b/tessera/npy/v1/");
        assert_eq!((c.version.as_str(), c.variant.as_str()), ("1.0", "vultr"));
        let c = DatasetChoice::resolve(None, None, "/data/tessera");
        assert_eq!(
            (c.version.as_str(), c.variant.as_str()),
            ("1.1", "cambridge")
        );
        let c = DatasetChoice::resolve(Some("v1"), Some("legacy"), "/data/tessera");
        assert_eq!((c.version.as_str(), c.variant.as_str()), ("1.0", "legacy"));
        let c = DatasetChoice::resolve(Some("1.1"), None, "s3://b/npy/v1");
        assert_eq!(
            (c.version.as_str(), c.variant.as_str()),
            ("1.1", "cambridge")
        );
        assert!(c.matches(Some("1.1"), Some("cambridge")));
        assert!(c.matches(None, Some("")));
        assert!(!c.matches(Some("1.0"), Some("cambridge")));
        assert!(!c.matches(Some("v1.1"), Some("vultr")));
    }
}
