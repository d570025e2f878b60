//! Features and class probabilities of image sets for the Inception Score and the FID
//! (feature `torch`), and the paper's selection of generated samples (Appendix B).
//!
//! A [`FeatureExtractor`] maps images `[N, C, H, W]` in the model range `[-1, 1]` to pool
//! features `N × D` and, when it has a class head, probabilities `N × K`. Two are provided:
//!
//! * [`TorchScriptInception`]: a TorchScript file you supply (a pytorch-fid / clean-fid style
//!   Inception network exported with `torch.jit.script` or `torch.jit.trace`). This is the only
//!   way to get numbers comparable to published IS/FID values; jem ships no Inception weights.
//! * [`ClassifierFeatures`]: a trained Wide-ResNet's penultimate features and its softmax, for
//!   data sets or machines without an Inception network. Its [`name`](FeatureExtractor::name)
//!   is [`CLASSIFIER_FEATURES_LABEL`], which says the numbers are *not* Inception numbers.
//!
//! [`generative_metrics`] runs an extractor over generated and reference images and computes
//! the crate's [`inception_score`] (on the generated set) and [`frechet_distance`] (generated
//! vs. reference). [`top_percentile_by_confidence`] keeps the generated samples with the
//! highest `max_y p(y|x)`, per class for class-conditional samples, as the paper does before
//! reporting its scores.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use jem_model::WideResNet;
use ndarray::{Array2, ArrayView1, ArrayView2, Axis};
use serde::Serialize;
use tch::{CModule, Device, IValue, Kind, Tensor};

use crate::error::{EvalError, Result};
use crate::frechet::frechet_distance;
use crate::inception::inception_score;
use crate::input::{argmax, check_probs, Real};

/// The [`FeatureExtractor::name`] of [`ClassifierFeatures`]; every report that uses those
/// features should carry it.
pub const CLASSIFIER_FEATURES_LABEL: &str =
    "classifier-features (not Inception: numbers are not comparable to published IS/FID)";

/// Side of the square input of Inception-v3, and the default resize of [`TorchScriptInception`].
pub const INCEPTION_SIZE: i64 = 299;

/// What a [`FeatureExtractor`] computed for `N` images.
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    /// Pool features, `N × D`.
    pub features: Array2<f32>,
    /// Class probabilities `p(y|x)`, `N × K`; `None` when the network gives features only
    /// (then no Inception Score can be computed).
    pub probs: Option<Array2<f32>>,
}

impl Extracted {
    /// Number of images N.
    pub fn n(&self) -> usize {
        self.features.nrows()
    }

    /// Feature dimension D.
    pub fn dim(&self) -> usize {
        self.features.ncols()
    }

    /// Number of classes K, 0 when [`probs`](Self::probs) is `None`.
    pub fn num_classes(&self) -> usize {
        self.probs.as_ref().map_or(0, |p| p.ncols())
    }
}

/// Maps image sets to features (for the FID) and class probabilities (for the IS).
pub trait FeatureExtractor {
    /// What the features are, as it should appear in every report that uses them.
    fn name(&self) -> &str;

    /// Features and probabilities of `images`, a float `[N, C, H, W]` tensor (N ≥ 1) in the
    /// model range `[-1, 1]`, on any device. Implementations batch internally.
    fn extract(&self, images: &Tensor) -> Result<Extracted>;
}

fn torch_err(context: impl fmt::Display) -> impl Fn(tch::TchError) -> EvalError {
    move |e| EvalError::Model(format!("{context}: {e}"))
}

pub(crate) fn positive(arg: &'static str, value: usize) -> Result<()> {
    if value == 0 {
        return Err(EvalError::InvalidParameter {
            arg,
            value: "0".into(),
            reason: "must be at least 1",
        });
    }
    Ok(())
}

/// Checks `images` is a non-empty `[N, C, H, W]` float tensor; returns N.
pub(crate) fn check_images(images: &Tensor) -> Result<i64> {
    let size = images.size();
    if size.len() != 4 || size.iter().any(|&d| d < 1) {
        return Err(EvalError::InvalidParameter {
            arg: "images",
            value: format!("shape {size:?}"),
            reason: "expected a non-empty [N, C, H, W] batch",
        });
    }
    if !matches!(
        images.kind(),
        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
    ) {
        return Err(EvalError::InvalidParameter {
            arg: "images",
            value: format!("kind {:?}", images.kind()),
            reason: "expected floating-point pixels in [-1, 1]",
        });
    }
    Ok(size[0])
}

/// The values of a `[rows, cols]` tensor, row-major (appended to `out`).
fn matrix_values(t: &Tensor, what: &str, out: &mut Vec<f32>) -> Result<()> {
    let values = Vec::<f32>::try_from(
        t.to_kind(Kind::Float)
            .to_device(Device::Cpu)
            .contiguous()
            .flatten(0, -1),
    )
    .map_err(torch_err(format!("reading {what}")))?;
    out.extend(values);
    Ok(())
}

/// Row-major values of `rows × cols` as a matrix (the tensor-to-ndarray edge).
fn to_array(values: Vec<f32>, rows: usize, cols: usize, what: &str) -> Result<Array2<f32>> {
    Array2::from_shape_vec((rows, cols), values)
        .map_err(|e| EvalError::Model(format!("{what}: {e} (expected {rows} x {cols} values)")))
}

/// Runs `batch` over consecutive slices of at most `batch_size` images and concatenates the
/// results, checking that every batch gives the same widths.
fn extract_batched(
    images: &Tensor,
    batch_size: usize,
    mut batch: impl FnMut(&Tensor) -> Result<(Tensor, Option<Tensor>)>,
) -> Result<Extracted> {
    positive("batch_size", batch_size)?;
    let n = check_images(images)?;
    let (mut features, mut probs) = (Vec::new(), None::<Vec<f32>>);
    let (mut dim, mut num_classes) = (0, 0);
    let mut start = 0;
    while start < n {
        let len = (batch_size as i64).min(n - start);
        let x = images
            .f_narrow(0, start, len)
            .map_err(torch_err("slicing a batch"))?;
        let (batch_features, batch_probs) = tch::no_grad(|| batch(&x))?;
        let widths = (
            batch_features.size()[1] as usize,
            batch_probs.as_ref().map_or(0, |p| p.size()[1] as usize),
        );
        if start == 0 {
            (dim, num_classes) = widths;
            probs = batch_probs.as_ref().map(|_| Vec::new());
        } else if widths != (dim, num_classes) {
            return Err(EvalError::Model(format!(
                "batch at image {start} gave {} features and {} classes, the first batch \
                 {dim} and {num_classes}",
                widths.0, widths.1
            )));
        }
        matrix_values(&batch_features, "features", &mut features)?;
        if let (Some(all), Some(p)) = (probs.as_mut(), batch_probs) {
            matrix_values(&p, "probabilities", all)?;
        }
        start += len;
    }
    let n = n as usize;
    Ok(Extracted {
        features: to_array(features, n, dim, "features")?,
        probs: match probs {
            Some(p) => Some(to_array(p, n, num_classes, "probabilities")?),
            None => None,
        },
    })
}

/// The value range a TorchScript network expects its input pixels in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputRange {
    /// `[-1, 1]`, jem's model range: pixels are passed unchanged.
    MinusOneToOne,
    /// `[0, 1]`, as pytorch-fid's `InceptionV3` (which normalises to `[-1, 1]` itself).
    #[default]
    ZeroToOne,
    /// `[0, 255]` floats, as clean-fid's and StyleGAN's `inception-2015-12-05` detectors.
    ZeroTo255,
}

impl InputRange {
    /// Maps pixels from `[-1, 1]` to this range.
    fn map(self, x: &Tensor) -> Tensor {
        match self {
            InputRange::MinusOneToOne => x.shallow_clone(),
            InputRange::ZeroToOne => (x + 1.0) / 2.0,
            InputRange::ZeroTo255 => (x + 1.0) * 127.5,
        }
    }

    /// The name used on the command line: `-1,1`, `0,1` or `0,255`.
    pub fn name(self) -> &'static str {
        match self {
            InputRange::MinusOneToOne => "-1,1",
            InputRange::ZeroToOne => "0,1",
            InputRange::ZeroTo255 => "0,255",
        }
    }
}

impl FromStr for InputRange {
    type Err = EvalError;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().replace(' ', "").as_str() {
            "-1,1" | "[-1,1]" => Ok(InputRange::MinusOneToOne),
            "0,1" | "[0,1]" => Ok(InputRange::ZeroToOne),
            "0,255" | "[0,255]" => Ok(InputRange::ZeroTo255),
            other => Err(EvalError::InvalidParameter {
                arg: "input_range",
                value: other.to_string(),
                reason: "expected -1,1 or 0,1 or 0,255",
            }),
        }
    }
}

/// What the second output of a TorchScript network holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassOutput {
    /// Unnormalised logits (softmax is applied here).
    #[default]
    Logits,
    /// Probabilities already (rows must sum to 1).
    Probabilities,
}

/// How [`TorchScriptInception`] feeds its network.
#[derive(Debug, Clone, PartialEq)]
pub struct TorchScriptOptions {
    /// The input range the network expects (default `[0, 1]`, pytorch-fid's).
    pub input_range: InputRange,
    /// Resize every image to `(height, width)` with `upsample_bilinear2d`
    /// (`align_corners = false`, as `F.interpolate(mode="bilinear")`) before the network;
    /// `None` if the network resizes itself. Default `(299, 299)`.
    pub resize: Option<(i64, i64)>,
    /// Whether the second output is logits or probabilities.
    pub class_output: ClassOutput,
    /// Images per forward pass.
    pub batch_size: usize,
    /// Where the module is loaded and run.
    pub device: Device,
}

impl Default for TorchScriptOptions {
    fn default() -> Self {
        Self {
            input_range: InputRange::default(),
            resize: Some((INCEPTION_SIZE, INCEPTION_SIZE)),
            class_output: ClassOutput::default(),
            batch_size: 50,
            device: Device::Cpu,
        }
    }
}

/// An Inception network (or any feature network) from a TorchScript file.
///
/// # The contract of the file
///
/// The module's `forward` takes one float tensor `[N, 3, H, W]` and returns either
///
/// * a tuple (or list) of two tensors `(features [N, D], logits [N, K])` — pool features
///   (`D = 2048` for Inception-v3) and class logits (`K = 1008` for the TF-slim Inception of
///   the original IS/FID code, 1000 for torchvision's); with
///   [`ClassOutput::Probabilities`] the second tensor holds probabilities instead, or
/// * the features tensor alone, in which case only the FID can be computed.
///
/// Features of shape `[N, D, 1, 1]` (pytorch-fid's pool3 map) are flattened. Anything else
/// (another number of outputs, non-tensors, a batch size that differs from N) is an error
/// that names the file.
///
/// Before the call, the `[-1, 1]` images are mapped to [`TorchScriptOptions::input_range`],
/// grey images are repeated to 3 channels (other channel counts than 1 and 3 are errors) and,
/// unless [`TorchScriptOptions::resize`] is `None`, resized bilinearly (default 299 × 299).
/// The module is put in evaluation mode and run without gradients.
pub struct TorchScriptInception {
    module: CModule,
    path: PathBuf,
    name: String,
    options: TorchScriptOptions,
}

impl fmt::Debug for TorchScriptInception {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TorchScriptInception")
            .field("path", &self.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A short description of a TorchScript return value, for error messages.
fn describe(value: &IValue) -> String {
    match value {
        IValue::Tensor(t) => format!("a tensor of shape {:?}", t.size()),
        IValue::Tuple(v) => format!("a tuple of {} values", v.len()),
        IValue::GenericList(v) => format!("a list of {} values", v.len()),
        IValue::TensorList(v) => format!("a list of {} tensors", v.len()),
        IValue::None => "None".into(),
        IValue::Double(_) => "a float".into(),
        IValue::Int(_) => "an int".into(),
        IValue::Bool(_) => "a bool".into(),
        IValue::String(_) => "a string".into(),
        IValue::GenericDict(_) => "a dict".into(),
        _ => "a value that is not a tensor".into(),
    }
}

impl TorchScriptInception {
    /// Loads the TorchScript module at `path` onto `options.device`.
    ///
    /// Errors (naming the file) when it does not exist or is not a TorchScript archive, or
    /// when the options are invalid (zero batch size or resize side).
    pub fn load(path: &Path, options: TorchScriptOptions) -> Result<Self> {
        positive("batch_size", options.batch_size)?;
        if let Some((h, w)) = options.resize {
            if h < 1 || w < 1 {
                return Err(EvalError::InvalidParameter {
                    arg: "resize",
                    value: format!("{h}x{w}"),
                    reason: "both sides must be at least 1",
                });
            }
        }
        if !path.is_file() {
            return Err(EvalError::Model(format!(
                "TorchScript feature network {}: no such file",
                path.display()
            )));
        }
        let mut module = CModule::load_on_device(path, options.device).map_err(|e| {
            EvalError::Model(format!(
                "cannot load {} as a TorchScript module (expected a file saved by \
                 torch.jit.script(...).save or torch.jit.trace(...).save): {e}",
                path.display()
            ))
        })?;
        module.f_set_eval().map_err(torch_err(format!(
            "setting {} to evaluation mode",
            path.display()
        )))?;
        Ok(Self {
            module,
            name: format!("torchscript:{}", path.display()),
            path: path.to_path_buf(),
            options,
        })
    }

    /// The file the module was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options it was loaded with.
    pub fn options(&self) -> &TorchScriptOptions {
        &self.options
    }

    /// The network input for a batch of `[-1, 1]` images (see the type's documentation).
    pub fn prepare(&self, x: &Tensor) -> Result<Tensor> {
        let channels = x.size().get(1).copied().unwrap_or(0);
        let x = self
            .options
            .input_range
            .map(&x.to_kind(Kind::Float).to_device(self.options.device));
        let x = match channels {
            3 => x,
            1 => x.repeat([1, 3, 1, 1]),
            c => {
                return Err(EvalError::InvalidParameter {
                    arg: "images",
                    value: format!("{c} channels"),
                    reason: "an Inception network takes 1 (repeated to 3) or 3 channels",
                })
            }
        };
        match self.options.resize {
            Some((h, w)) => x
                .f_upsample_bilinear2d([h, w], false, None, None)
                .map_err(torch_err("resizing")),
            None => Ok(x),
        }
    }

    fn contract_error(&self, what: String) -> EvalError {
        EvalError::Model(format!(
            "{}: forward returned {what}; expected features [N, D] (or [N, D, 1, 1]), or a \
             tuple (features [N, D], logits [N, K])",
            self.path.display()
        ))
    }

    fn run_batch(&self, x: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
        let n = x.size()[0];
        let input = self.prepare(x)?;
        let output = self
            .module
            .forward_is(&[IValue::Tensor(input)])
            .map_err(|e| {
                EvalError::Model(format!(
                    "{}: forward failed on a batch of shape {:?}: {e}",
                    self.path.display(),
                    x.size()
                ))
            })?;
        let (features, second) = match output {
            IValue::Tensor(t) => (t, None),
            IValue::Tuple(v) | IValue::GenericList(v) if v.len() == 2 => {
                match <[IValue; 2]>::try_from(v) {
                    Ok([IValue::Tensor(a), IValue::Tensor(b)]) => (a, Some(b)),
                    _ => return Err(self.contract_error("a pair that is not two tensors".into())),
                }
            }
            IValue::TensorList(v) if v.len() == 2 => match <[Tensor; 2]>::try_from(v) {
                Ok([a, b]) => (a, Some(b)),
                Err(v) => return Err(self.contract_error(format!("{} tensors", v.len()))),
            },
            other => return Err(self.contract_error(describe(&other))),
        };
        let features = match features.size()[..] {
            [rows, _] if rows == n => features,
            [rows, _, 1, 1] if rows == n => features.flatten(1, -1),
            ref other => {
                return Err(self.contract_error(format!(
                    "features of shape {other:?} for a batch of {n} images"
                )))
            }
        };
        let probs = match second {
            None => None,
            Some(t) => match t.size()[..] {
                [rows, k] if rows == n && k >= 1 => Some(match self.options.class_output {
                    ClassOutput::Logits => t.to_kind(Kind::Float).softmax(1, Kind::Float),
                    ClassOutput::Probabilities => t,
                }),
                ref other => {
                    return Err(self.contract_error(format!(
                        "logits of shape {other:?} for a batch of {n} images"
                    )))
                }
            },
        };
        Ok((features, probs))
    }
}

impl FeatureExtractor for TorchScriptInception {
    fn name(&self) -> &str {
        &self.name
    }

    fn extract(&self, images: &Tensor) -> Result<Extracted> {
        extract_batched(images, self.options.batch_size, |x| self.run_batch(x))
    }
}

/// A trained classifier's penultimate features ([`WideResNet::f_features`], `D = 64·k`) and
/// its softmax `p(y|x)` (`K` = its classes).
///
/// For set-ups without an Inception network (the cpu preset). Its name is
/// [`CLASSIFIER_FEATURES_LABEL`]: these IS/FID values rank models scored by the *same*
/// classifier, but are not comparable to published Inception numbers. Each batch is run
/// through the network twice (features, then logits), since the class head is internal to
/// [`WideResNet`].
#[derive(Debug)]
pub struct ClassifierFeatures<'a> {
    model: &'a WideResNet,
    batch_size: usize,
    device: Device,
}

impl<'a> ClassifierFeatures<'a> {
    /// Features of `model`, whose variables live on `device`; 250 images per pass.
    pub fn new(model: &'a WideResNet, device: Device) -> Self {
        Self {
            model,
            batch_size: 250,
            device,
        }
    }

    /// Sets the number of images per forward pass (at least 1, checked when extracting).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }
}

impl FeatureExtractor for ClassifierFeatures<'_> {
    fn name(&self) -> &str {
        CLASSIFIER_FEATURES_LABEL
    }

    fn extract(&self, images: &Tensor) -> Result<Extracted> {
        let model_err = |e: jem_model::ModelError| EvalError::Model(format!("classifier: {e}"));
        extract_batched(images, self.batch_size, |x| {
            let x = x.to_kind(Kind::Float).to_device(self.device);
            let features = self.model.f_features(&x, false).map_err(model_err)?;
            let logits = self.model.f_forward_t(&x, false).map_err(model_err)?;
            Ok((features, Some(logits.softmax(1, Kind::Float))))
        })
    }
}

/// Inception Score and FID of a generated set against a reference set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenerativeMetrics {
    /// Mean Inception Score over the splits of the generated set (`None` when the extractor
    /// gives features only).
    pub is_mean: Option<f64>,
    /// Population standard deviation of the per-split scores.
    pub is_std: Option<f64>,
    /// Number of IS splits.
    pub is_splits: usize,
    /// Fréchet distance between the generated and reference features.
    pub fid: f64,
    /// [`FeatureExtractor::name`] of the features: which network the numbers come from.
    pub extractor: String,
    /// Number of generated images.
    pub n_generated: usize,
    /// Number of reference images.
    pub n_reference: usize,
    /// Feature dimension D.
    pub feature_dim: usize,
    /// Number of classes K of the probabilities (0 without a class head).
    pub num_classes: usize,
}

/// IS of `generated` (in `splits` chunks, [`inception_score`]) and FID between `generated` and
/// `reference` ([`frechet_distance`]), with the features of `extractor`.
///
/// The IS splits are chunks of the samples in the fixed random order [`is_split_order`], not in
/// the order given: sample order can carry class structure (a class-conditional replay buffer
/// and conditional samples are sorted by class), and a split holding one class scores 1
/// whatever the samples. The FID does not depend on the order.
///
/// Both image sets are float `[N, C, H, W]` in `[-1, 1]`. `splits` must lie in
/// `1..=n_generated` (checked before any image is processed); the FID needs at least two
/// images in each set.
pub fn generative_metrics(
    extractor: &dyn FeatureExtractor,
    generated: &Tensor,
    reference: &Tensor,
    splits: usize,
) -> Result<GenerativeMetrics> {
    let n_generated = check_images(generated)? as usize;
    check_images(reference)?;
    if splits == 0 || splits > n_generated {
        return Err(EvalError::InvalidParameter {
            arg: "splits",
            value: splits.to_string(),
            reason: "must be at least 1 and at most the number of generated images",
        });
    }
    let gen = extractor.extract(generated)?;
    let reference = extractor.extract(reference)?;
    if gen.dim() != reference.dim() {
        return Err(EvalError::LengthMismatch {
            arg_a: "generated features",
            len_a: gen.dim(),
            arg_b: "reference features",
            len_b: reference.dim(),
        });
    }
    let fid = frechet_distance(gen.features.view(), reference.features.view())?;
    let is = match &gen.probs {
        Some(p) => {
            let shuffled = p.select(Axis(0), &is_split_order(p.nrows()));
            Some(inception_score(shuffled.view(), splits)?)
        }
        None => None,
    };
    Ok(GenerativeMetrics {
        is_mean: is.as_ref().map(|s| s.mean),
        is_std: is.as_ref().map(|s| s.std),
        is_splits: splits,
        fid,
        extractor: extractor.name().to_string(),
        n_generated: gen.n(),
        n_reference: reference.n(),
        feature_dim: gen.dim(),
        num_classes: gen.num_classes(),
    })
}

/// The order [`generative_metrics`] puts `n` samples in before cutting them into IS splits: a
/// permutation of `0..n` drawn with a fixed seed, so the IS is reproducible and does not depend
/// on how the samples were sorted.
pub fn is_split_order(n: usize) -> Vec<usize> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rand_pcg::Pcg64::seed_from_u64(0x15_5EED));
    order
}

/// The paper's sample selection (Appendix B): the indices of the samples whose confidence
/// `max_y p(y|x)` is in the top `percentile` percent, in ascending order.
///
/// With `groups` (one group id per sample, e.g. the class each conditional sample was drawn
/// for) the top `percentile` percent of *each group* is kept; without, of all samples
/// (unconditional samples). A group of `m` samples keeps `⌈m · percentile / 100⌉` of them
/// (at least one); ties in confidence go to the lower index.
///
/// Errors if `probs` (`n × K`) is not a matrix of probability rows, `percentile` is not in
/// `(0, 100]` or `groups` has the wrong length.
///
/// # Examples
///
/// ```
/// use jem_eval::features::top_percentile_by_confidence;
/// use ndarray::array;
///
/// let probs = array![[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.5, 0.5]];
/// // The most confident half overall: rows 0 (0.9) and 2 (0.8).
/// assert_eq!(top_percentile_by_confidence(probs.view(), None, 50.0)?, [0, 2]);
/// // The most confident half of each group {0, 1} and {2, 3}.
/// let groups = array![0, 0, 1, 1];
/// assert_eq!(top_percentile_by_confidence(probs.view(), Some(groups.view()), 50.0)?, [0, 2]);
/// # Ok::<(), jem_eval::EvalError>(())
/// ```
pub fn top_percentile_by_confidence<T: Real>(
    probs: ArrayView2<'_, T>,
    groups: Option<ArrayView1<'_, usize>>,
    percentile: f64,
) -> Result<Vec<usize>> {
    if !(percentile > 0.0 && percentile <= 100.0) {
        return Err(EvalError::InvalidParameter {
            arg: "percentile",
            value: percentile.to_string(),
            reason: "must lie in (0, 100]",
        });
    }
    check_probs(probs)?;
    let n = probs.nrows();
    let groups: Vec<usize> = match groups {
        Some(g) if g.len() != n => {
            return Err(EvalError::LengthMismatch {
                arg_a: "groups",
                len_a: g.len(),
                arg_b: "probs (rows)",
                len_b: n,
            })
        }
        Some(g) => g.to_vec(),
        None => vec![0; n],
    };
    let confidence: Vec<f64> = probs.rows().into_iter().map(|r| argmax(r).1).collect();
    let mut order: Vec<usize> = (0..n).collect();
    // By group, then by decreasing confidence, then by index (a stable sort keeps the index
    // order among equal keys).
    order.sort_by(|&a, &b| {
        groups[a]
            .cmp(&groups[b])
            .then_with(|| confidence[b].total_cmp(&confidence[a]))
    });
    let mut kept = Vec::new();
    for run in order.chunk_by(|&a, &b| groups[a] == groups[b]) {
        // The small epsilon keeps e.g. 30 · 10 / 100 = 3 from rounding up to 4.
        let keep =
            ((run.len() as f64 * percentile / 100.0 - 1e-9).ceil() as usize).clamp(1, run.len());
        kept.extend_from_slice(&run[..keep]);
    }
    kept.sort_unstable();
    Ok(kept)
}
