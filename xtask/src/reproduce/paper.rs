//! The paper's numbers (Grathwohl et al., ICLR 2020), read from
//! /work/shared/paper/jem-iclr2020.txt, beside which our numbers are shown. They are never used
//! to choose anything we run.

/// Table 1 (CIFAR-10 hybrid modelling): accuracy (%), Inception Score, FID.
#[derive(Clone, Copy, Debug)]
pub struct HybridRow {
    /// Model as the table names it.
    pub model: &'static str,
    /// Test accuracy, percent.
    pub accuracy: Option<f64>,
    /// Inception Score.
    pub is: Option<f64>,
    /// FID.
    pub fid: Option<f64>,
}

/// Table 1, every row.
pub const TABLE1: [HybridRow; 8] = [
    HybridRow {
        model: "Residual Flow",
        accuracy: Some(70.3),
        is: Some(3.6),
        fid: Some(46.4),
    },
    HybridRow {
        model: "Glow",
        accuracy: Some(67.6),
        is: Some(3.92),
        fid: Some(48.9),
    },
    HybridRow {
        model: "IGEBM",
        accuracy: Some(49.1),
        is: Some(8.3),
        fid: Some(37.9),
    },
    HybridRow {
        model: "JEM p(x|y) factored",
        accuracy: Some(30.1),
        is: Some(6.36),
        fid: Some(61.8),
    },
    HybridRow {
        model: "JEM (Ours)",
        accuracy: Some(92.9),
        is: Some(8.76),
        fid: Some(38.4),
    },
    HybridRow {
        model: "Wide-Resnet",
        accuracy: Some(95.8),
        is: None,
        fid: None,
    },
    HybridRow {
        model: "SNGAN",
        accuracy: None,
        is: Some(8.59),
        fid: Some(25.5),
    },
    HybridRow {
        model: "NCSN",
        accuracy: None,
        is: Some(8.91),
        fid: Some(25.32),
    },
];

/// Table 1: JEM's row.
pub const T1_JEM: HybridRow = TABLE1[4];
/// Table 1: the factored ablation's row.
pub const T1_FACTORED: HybridRow = TABLE1[3];
/// Table 1: the Wide-ResNet classifier (WRN-28-10 with batch norm, 4.2% error).
pub const T1_WRN_ACCURACY: f64 = 95.8;
/// Table 1: the best IS of the other hybrid models (IGEBM).
pub const T1_BEST_OTHER_HYBRID_IS: f64 = 8.3;
/// Sec. 5.1: removing batch norm raises WRN-28-10's CIFAR-10 error from 4.2% to 6.4%.
pub const WRN_NO_NORM_ACCURACY: f64 = 93.6;
/// Sec. 5.1: JEM's accuracy on SVHN and CIFAR-100.
pub const JEM_SVHN_ACCURACY: f64 = 96.7;
/// Sec. 5.1 / 5.2: JEM's accuracy on CIFAR-100.
pub const JEM_CIFAR100_ACCURACY: f64 = 72.2;
/// Sec. 5.2: the CIFAR-100 baseline's accuracy (Fig 4).
pub const BASELINE_CIFAR100_ACCURACY: f64 = 74.2;
/// Appendix E.2: accuracy with 4000 labels, baseline and (semi-supervised) JEM.
pub const LABELS_4K_ACCURACY: (f64, f64) = (78.0, 74.9);

/// Table 3 (OOD detection, AUROC; columns SVHN, CIFAR10 Interp, CIFAR100, CelebA): the rows of
/// the two models we train.
pub const TABLE3_COLUMNS: [&str; 4] = ["svhn", "interp", "cifar100", "celeba"];
/// Table 3 rows: (model, score, values).
pub const TABLE3: [(&str, &str, [f64; 4]); 4] = [
    ("JEM (paper)", "px", [0.67, 0.65, 0.67, 0.75]),
    ("JEM (paper)", "py", [0.89, 0.75, 0.87, 0.79]),
    ("JEM (paper)", "pxgrad", [0.83, 0.78, 0.82, 0.79]),
    ("Wide-ResNet (paper)", "py", [0.93, 0.77, 0.85, 0.62]),
];

/// Table 7 (OOD, AUROC, all columns): SVHN, Uniform, Constant, CIFAR10 Interp, CIFAR100, CelebA.
pub const TABLE7_COLUMNS: [&str; 6] = [
    "svhn", "uniform", "constant", "interp", "cifar100", "celeba",
];
/// Table 7 rows of JEM and the WRN baseline: (model, score, values).
pub const TABLE7: [(&str, &str, [f64; 6]); 4] = [
    ("JEM (paper)", "px", [0.67, 1.0, 0.51, 0.65, 0.67, 0.75]),
    (
        "WRN-baseline (paper)",
        "py",
        [0.93, 0.97, 0.99, 0.77, 0.85, 0.62],
    ),
    ("JEM (paper)", "py", [0.89, 0.41, 0.84, 0.75, 0.87, 0.79]),
    ("JEM (paper)", "pxgrad", [0.83, 1.0, 0.75, 0.78, 0.82, 0.79]),
];

/// Table 5 (Inception Scores of JEM): conditional (top 10% by p(y|x)) single / ensemble,
/// unconditional single / ensemble. The text extraction holds three values (8.76, 8.3, X) for
/// the four conditional cells of JEM and IGEBM: JEM's conditional ensemble is not given.
pub const TABLE5_JEM: [Option<f64>; 4] = [Some(8.76), None, Some(7.82), Some(7.79)];
/// Table 5: IGEBM (D&M) row, same columns.
pub const TABLE5_IGEBM: [Option<f64>; 4] = [Some(8.3), None, Some(6.02), Some(6.78)];
