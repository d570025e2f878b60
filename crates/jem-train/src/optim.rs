//! Adam and SGD written on tensors, so that their state (moments, momentum buffers, step count)
//! can be checkpointed and restored exactly — `tch::nn::Optimizer` keeps it out of reach.
//!
//! Both follow PyTorch's semantics: weight decay is L2 added to the gradient
//! (`g ← g + λ θ`), SGD momentum uses dampening 0 (a zero-initialised buffer gives PyTorch's
//! `buf = g` on the first step), Adam is the textbook update with bias correction
//! `θ ← θ − lr · m̂ / (√v̂ + ε)`, `m̂ = m / (1 − β1^t)`, `v̂ = v / (1 − β2^t)`.

use std::collections::BTreeMap;

use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::config::{OptimizerKind, TrainConfig};
use crate::error::{Result, TrainError};

/// Hyper-parameters of [`Optimizer`] (taken from [`TrainConfig`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimizerSettings {
    /// Adam or SGD.
    pub kind: OptimizerKind,
    /// Adam β1.
    pub beta1: f64,
    /// Adam β2.
    pub beta2: f64,
    /// Adam ε.
    pub eps: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// Nesterov momentum (SGD).
    pub nesterov: bool,
    /// L2 weight decay.
    pub weight_decay: f64,
}

impl From<&TrainConfig> for OptimizerSettings {
    fn from(c: &TrainConfig) -> Self {
        Self {
            kind: c.optimizer,
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            momentum: c.momentum,
            nesterov: c.nesterov,
            weight_decay: c.weight_decay,
        }
    }
}

/// A first-order optimiser over the trainable variables of a [`VarStore`].
#[derive(Debug)]
pub struct Optimizer {
    settings: OptimizerSettings,
    names: Vec<String>,
    params: Vec<Tensor>,
    /// Adam: first moments; SGD: momentum buffers.
    first: Vec<Tensor>,
    /// Adam: second moments; unused (empty) for SGD.
    second: Vec<Tensor>,
    steps: u64,
}

impl Optimizer {
    /// An optimiser over every trainable variable of `vs` (sorted by name), with zero state.
    pub fn new(vs: &VarStore, settings: OptimizerSettings) -> Result<Self> {
        let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
        let mut names = Vec::new();
        let mut params = Vec::new();
        for (name, t) in vars {
            if t.requires_grad() {
                names.push(name);
                params.push(t);
            }
        }
        let zeros = |p: &Tensor| p.f_zeros_like().map_err(TrainError::from);
        let first = params.iter().map(zeros).collect::<Result<Vec<_>>>()?;
        let second = match settings.kind {
            OptimizerKind::Adam => params.iter().map(zeros).collect::<Result<Vec<_>>>()?,
            OptimizerKind::Sgd => Vec::new(),
        };
        Ok(Self {
            settings,
            names,
            params,
            first,
            second,
            steps: 0,
        })
    }

    /// Number of steps taken (Adam's `t`).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The settings.
    pub fn settings(&self) -> &OptimizerSettings {
        &self.settings
    }

    /// Names of the optimised variables, sorted.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Zeroes the gradients of every parameter.
    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.zero_grad();
        }
    }

    /// Global L2 norm of the parameter gradients (missing gradients count as zero).
    pub fn grad_norm(&self) -> Result<f64> {
        tch::no_grad(|| {
            let mut total = 0f64;
            for p in &self.params {
                let g = p.grad();
                if g.defined() {
                    let n = g.f_norm()?.f_double_value(&[])?;
                    total += n * n;
                }
            }
            Ok(total.sqrt())
        })
    }

    /// Scales the gradients so their global norm is at most `max_norm`; returns the norm before.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> Result<f64> {
        let norm = self.grad_norm()?;
        if norm.is_finite() && norm > max_norm {
            let scale = max_norm / (norm + 1e-6);
            tch::no_grad(|| -> Result<()> {
                for p in &self.params {
                    let mut g = p.grad();
                    if g.defined() {
                        let _ = g.f_mul_scalar_(scale)?;
                    }
                }
                Ok(())
            })?;
        }
        Ok(norm)
    }

    /// One update with learning rate `lr` from the current gradients.
    pub fn step(&mut self, lr: f64) -> Result<()> {
        self.steps += 1;
        let s = self.settings;
        let t = self.steps as i32;
        tch::no_grad(|| -> Result<()> {
            for i in 0..self.params.len() {
                let p = &mut self.params[i];
                let grad = p.grad();
                if !grad.defined() {
                    continue;
                }
                let g = if s.weight_decay != 0.0 {
                    grad.f_add(&p.f_mul_scalar(s.weight_decay)?)?
                } else {
                    grad
                };
                match s.kind {
                    OptimizerKind::Adam => {
                        let m = &mut self.first[i];
                        let _ = m.f_mul_scalar_(s.beta1)?;
                        let _ = m.f_add_(&g.f_mul_scalar(1.0 - s.beta1)?)?;
                        let v = &mut self.second[i];
                        let _ = v.f_mul_scalar_(s.beta2)?;
                        let _ = v.f_add_(&g.f_mul(&g)?.f_mul_scalar(1.0 - s.beta2)?)?;
                        let bc1 = 1.0 - s.beta1.powi(t);
                        let bc2 = 1.0 - s.beta2.powi(t);
                        let denom = v.f_sqrt()?.f_div_scalar(bc2.sqrt())?.f_add_scalar(s.eps)?;
                        let update = self.first[i].f_div(&denom)?.f_mul_scalar(lr / bc1)?;
                        let _ = p.f_sub_(&update)?;
                    }
                    OptimizerKind::Sgd => {
                        let direction = if s.momentum > 0.0 {
                            let buf = &mut self.first[i];
                            let _ = buf.f_mul_scalar_(s.momentum)?;
                            let _ = buf.f_add_(&g)?;
                            if s.nesterov {
                                g.f_add(&buf.f_mul_scalar(s.momentum)?)?
                            } else {
                                buf.shallow_clone()
                            }
                        } else {
                            g
                        };
                        let _ = p.f_sub_(&direction.f_mul_scalar(lr)?)?;
                    }
                }
            }
            Ok(())
        })
    }

    /// The state as named tensors (`{prefix}first.{name}`, `{prefix}second.{name}`), deep copies.
    pub fn state_tensors(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for (i, name) in self.names.iter().enumerate() {
            out.push((
                format!("{prefix}first.{name}"),
                self.first[i].f_detach_copy()?,
            ));
            if let Some(v) = self.second.get(i) {
                out.push((format!("{prefix}second.{name}"), v.f_detach_copy()?));
            }
        }
        Ok(out)
    }

    /// Restores the state written by [`Optimizer::state_tensors`] and the step count.
    /// Every expected tensor must be present with the right shape.
    pub fn load_state(
        &mut self,
        named: &BTreeMap<String, Tensor>,
        prefix: &str,
        steps: u64,
    ) -> Result<()> {
        let fetch = |key: String, like: &Tensor| -> Result<Tensor> {
            let t = named.get(&key).ok_or_else(|| {
                TrainError::DataMismatch(format!("optimiser state `{key}` is missing"))
            })?;
            if t.size() != like.size() {
                return Err(TrainError::DataMismatch(format!(
                    "optimiser state `{key}` has shape {:?}, expected {:?}",
                    t.size(),
                    like.size()
                )));
            }
            Ok(t.f_to_kind(like.kind())?.f_to_device(like.device())?)
        };
        let mut first = Vec::with_capacity(self.names.len());
        let mut second = Vec::new();
        for (i, name) in self.names.iter().enumerate() {
            first.push(fetch(format!("{prefix}first.{name}"), &self.params[i])?);
            if !self.second.is_empty() {
                second.push(fetch(format!("{prefix}second.{name}"), &self.params[i])?);
            }
        }
        self.first = first;
        self.second = second;
        self.steps = steps;
        Ok(())
    }

    /// True when every parameter is finite.
    pub fn params_finite(&self) -> Result<bool> {
        tch::no_grad(|| {
            for p in &self.params {
                if p.f_isfinite()?.f_all()?.f_int64_value(&[])? == 0 {
                    return Ok(false);
                }
            }
            Ok(true)
        })
    }
}

/// Copies every variable of `vs` (deep copies, sorted by name).
pub fn copy_variables(vs: &VarStore) -> Result<Vec<(String, Tensor)>> {
    let mut vars: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| Ok((n, t.f_detach_copy()?)))
        .collect::<Result<_>>()?;
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(vars)
}

/// Writes `values` (name → tensor, as from [`copy_variables`]) into the variables of `vs`;
/// every variable must be present with its shape.
pub fn restore_variables(vs: &VarStore, values: &BTreeMap<String, Tensor>) -> Result<()> {
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            let src = values.get(&name).ok_or_else(|| {
                TrainError::DataMismatch(format!("model variable `{name}` is missing"))
            })?;
            if src.size() != var.size() {
                return Err(TrainError::DataMismatch(format!(
                    "model variable `{name}` has shape {:?}, expected {:?}",
                    src.size(),
                    var.size()
                )));
            }
            var.f_copy_(&src.f_to_kind(Kind::Float)?)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn two_param_problem(settings: OptimizerSettings) -> (VarStore, Optimizer, Tensor) {
        let vs = VarStore::new(Device::Cpu);
        let p = vs
            .root()
            .var_copy("p", &Tensor::from_slice(&[1.0f32, -2.0]));
        let opt = Optimizer::new(&vs, settings).unwrap();
        (vs, opt, p)
    }

    fn adam() -> OptimizerSettings {
        OptimizerSettings {
            kind: OptimizerKind::Adam,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }

    /// Loss L(p) = 3 p0² + p0 p1 + p1⁴ / 4, gradient (6 p0 + p1, p0 + p1³).
    fn loss(p: &Tensor) -> Tensor {
        let p0 = p.get(0);
        let p1 = p.get(1);
        &p0 * &p0 * 3.0 + &p0 * &p1 + p1.pow_tensor_scalar(4.0) / 4.0
    }

    fn grad_hand(p: [f64; 2]) -> [f64; 2] {
        [6.0 * p[0] + p[1], p[0] + p[1].powi(3)]
    }

    #[test]
    fn adam_matches_the_textbook_update() {
        let s = OptimizerSettings {
            weight_decay: 0.01,
            ..adam()
        };
        let (_vs, mut opt, p) = two_param_problem(s);
        let lrs = [0.1, 0.05, 0.2, 0.1];
        // Hand computation in f64 (Kingma & Ba, Algorithm 1, L2 decay added to the gradient).
        let mut q = [1.0f64, -2.0];
        let (mut m, mut v) = ([0.0f64; 2], [0.0f64; 2]);
        for (t, &lr) in lrs.iter().enumerate() {
            opt.zero_grad();
            loss(&p).backward();
            opt.step(lr).unwrap();

            let g = grad_hand(q);
            let t = (t + 1) as i32;
            for i in 0..2 {
                let gi = g[i] + 0.01 * q[i];
                m[i] = 0.9 * m[i] + 0.1 * gi;
                v[i] = 0.999 * v[i] + 0.001 * gi * gi;
                let mhat = m[i] / (1.0 - 0.9f64.powi(t));
                let vhat = v[i] / (1.0 - 0.999f64.powi(t));
                q[i] -= lr * mhat / (vhat.sqrt() + 1e-8);
            }
            let got = Vec::<f32>::try_from(&p.detach()).unwrap();
            for i in 0..2 {
                assert!(
                    (got[i] as f64 - q[i]).abs() < 1e-5,
                    "step {t}: param {i} = {}, textbook {}",
                    got[i],
                    q[i]
                );
            }
        }
        assert_eq!(opt.steps(), 4);
        // The first Adam step moves every coordinate by ~lr (sign of the gradient).
        assert!((q[0] - 1.0).abs() > 0.3);
    }

    #[test]
    fn sgd_momentum_and_nesterov_match_pytorch_semantics() {
        for nesterov in [false, true] {
            let s = OptimizerSettings {
                kind: OptimizerKind::Sgd,
                momentum: 0.9,
                nesterov,
                ..adam()
            };
            let (_vs, mut opt, p) = two_param_problem(s);
            let mut q = [1.0f64, -2.0];
            let mut buf = [0.0f64; 2];
            for step in 0..3 {
                opt.zero_grad();
                loss(&p).backward();
                opt.step(0.01).unwrap();
                let g = grad_hand(q);
                for i in 0..2 {
                    buf[i] = if step == 0 { g[i] } else { 0.9 * buf[i] + g[i] };
                    let d = if nesterov {
                        g[i] + 0.9 * buf[i]
                    } else {
                        buf[i]
                    };
                    q[i] -= 0.01 * d;
                }
            }
            let got = Vec::<f32>::try_from(&p.detach()).unwrap();
            for i in 0..2 {
                assert!(
                    (got[i] as f64 - q[i]).abs() < 1e-5,
                    "{nesterov}: {got:?} vs {q:?}"
                );
            }
        }
    }

    #[test]
    fn state_round_trip_continues_identically() {
        let (_vs_a, mut a, pa) = two_param_problem(adam());
        for _ in 0..3 {
            a.zero_grad();
            loss(&pa).backward();
            a.step(0.1).unwrap();
        }
        let state: BTreeMap<String, Tensor> =
            a.state_tensors("opt.").unwrap().into_iter().collect();
        assert_eq!(state.len(), 2);
        let (vs_b, mut b, pb) = two_param_problem(adam());
        tch::no_grad(|| pb.detach().copy_(&pa));
        b.load_state(&state, "opt.", a.steps()).unwrap();
        for _ in 0..2 {
            for (opt, p) in [(&mut a, &pa), (&mut b, &pb)] {
                opt.zero_grad();
                loss(p).backward();
                opt.step(0.1).unwrap();
            }
        }
        assert_eq!(
            Vec::<f32>::try_from(&pa.detach()).unwrap(),
            Vec::<f32>::try_from(&pb.detach()).unwrap()
        );
        let missing = BTreeMap::new();
        let e = b.load_state(&missing, "opt.", 1).unwrap_err().to_string();
        assert!(e.contains("opt.first.p"), "{e}");
        drop(vs_b);
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let (_vs, mut opt, p) = two_param_problem(adam());
        loss(&p).backward();
        let before = opt.clip_grad_norm(1.0).unwrap();
        assert!((before - 65f64.sqrt()).abs() < 1e-4, "{before}");
        assert!((opt.grad_norm().unwrap() - 1.0).abs() < 1e-4);
        assert!(opt.params_finite().unwrap());
    }
}
